"""The derived tables as `merge_rows` writes them (columns in the order of the tuples the
derive queries return) and the order to undo them in."""

from __future__ import annotations

from pipeworks.merge import TableSpec

LAP_METRICS = TableSpec(
    "f1.lap_metrics", ("session_key", "driver_number", "lap_number"),
    ("session_key", "driver_number", "lap_number", "stint_number", "compound", "tyre_age",
     "is_in_lap", "is_out_lap", "neutralised", "fuel_kg", "fuel_corrected_s",
     "valid_for_pace", "invalid_reason", "position", "gap_to_leader_s", "delta_field_s",
     "delta_teammate_s", "metric_version", "completeness"))

STINT_METRICS = TableSpec(
    "f1.stint_metrics", ("session_key", "driver_number", "stint_number"),
    ("session_key", "driver_number", "stint_number", "compound", "laps", "valid_laps",
     "degradation_s_per_lap", "intercept_s", "r2", "median_pace_s", "metric_version",
     "completeness"))

PIT_CYCLES = TableSpec(
    "f1.pit_cycles", ("session_key", "earlier_driver", "later_driver", "earlier_lap"),
    ("session_key", "earlier_driver", "later_driver", "earlier_lap", "later_lap", "kind",
     "succeeded", "gain_s", "neutralised", "metric_version"))

DRIVER_SESSION_METRICS = TableSpec(
    "f1.driver_session_metrics", ("session_key", "driver_number"),
    ("session_key", "driver_number", "race_pace_delta_s", "teammate_delta_s", "laps_led",
     "positions_gained", "median_pit_loss_s", "metric_version"))

ANOMALIES = TableSpec(
    "f1.anomalies", ("session_key", "kind", "anomaly_key"),
    ("session_key", "kind", "anomaly_key", "driver_number", "lap_number", "detail",
     "metric_version"))

# recompute_session writes them in this order: each later one reads the earlier ones.
DERIVED_WRITE_ORDER = (LAP_METRICS, STINT_METRICS, PIT_CYCLES, DRIVER_SESSION_METRICS,
                       ANOMALIES)
# undo_changes takes specs in the reverse of the order they were written.
DERIVED_UNDO_ORDER = tuple(reversed(DERIVED_WRITE_ORDER))
