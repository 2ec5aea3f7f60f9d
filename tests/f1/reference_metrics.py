"""A straightforward recomputation of the F1 derived metrics (interfaces.md, F1 pipeline,
Definitions, metric_version v1), in plain Python, lap by lap and driver by driver, with
the same choices as activities/f1/derive*.py and neutralised.py (their docstrings). The
tests check the SQL against it; the pipeline's end-to-end test reuses it.

Input: plain lists of dicts, one per raw row, with the columns of the f1.* tables:
- laps: driver_number, lap_number, date_start (aware datetime | None),
  lap_duration (float | None), is_pit_out_lap;
- stints: driver_number, stint_number, lap_start, lap_end, compound, tyre_age_at_start;
- pits: driver_number, lap_number;
- race_control: date (datetime | None), message, flag, lap_number;
- results: driver_number, position, number_of_laps;
- drivers: driver_number, team_name;
- grid: driver_number, position (the starting grid: the race's qualifying session's rows).

Output (`reference_metrics`): {"lap_metrics": {(driver, lap): row},
"stint_metrics": {(driver, stint): row}, "pit_cycles": {(earlier, later, earlier_lap):
row}, "driver_metrics": {driver: row}}, each row a dict of the derived table's columns
(unrounded floats; no session_key or metric_version)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from activities.f1.params import MetricParams

Row = dict[str, Any]


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    return statistics.median(ordered) if ordered else None


def lap_end(lap: Row) -> datetime | None:
    """date_start + lap_duration, the duration rounded to whole microseconds."""
    if lap["date_start"] is None or lap["lap_duration"] is None:
        return None
    start: datetime = lap["date_start"]
    return start + timedelta(microseconds=round(lap["lap_duration"] * 1e6))


def starts(text: str | None, phrase: str) -> bool:
    return (text or "").upper().startswith(phrase)


@dataclass
class Period:
    label: str
    start: datetime
    end: datetime | None  # None: not ended


def fit(points: Sequence[tuple[float, float]]) -> tuple[float | None, float | None,
                                                        float | None]:
    """Least squares y = a + b x: (slope, intercept, r2) as Postgres' regr_* define
    them (null slope without spread in x; r2 = 1 without spread in y)."""
    if not points:
        return None, None, None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    if sxx == 0:
        return None, None, None
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else sxy * sxy / (sxx * syy)
    return slope, my - slope * mx, r2


def reference_metrics(*, laps: Sequence[Row], stints: Sequence[Row], pits: Sequence[Row],
                      race_control: Sequence[Row], results: Sequence[Row],
                      drivers: Sequence[Row], grid: Sequence[Row], is_race: bool = True,
                      params: MetricParams | None = None) -> dict[str, dict[Any, Row]]:
    p = params or MetricParams()
    by_driver: dict[int, dict[int, Row]] = defaultdict(dict)
    for lap in laps:
        by_driver[lap["driver_number"]][lap["lap_number"]] = lap

    # When each lap was completed: its end, else the start of the driver's next lap.
    completed: dict[tuple[int, int], datetime] = {}
    for d, own in by_driver.items():
        for n, lap in own.items():
            end = lap_end(lap)
            if end is None and n + 1 in own:
                end = own[n + 1]["date_start"]
            if end is not None:
                completed[d, n] = end

    # Race laps L.
    winners = sorted((r["driver_number"], r["number_of_laps"]) for r in results
                     if r["position"] == 1 and r["number_of_laps"] > 0)
    race_laps = winners[0][1] if winners else max((lap["lap_number"] for lap in laps),
                                                  default=None)

    # Stints: the raw ones, or inferred for a driver with laps and none.
    stints_of: dict[int, list[Row]] = defaultdict(list)
    for s in stints:
        stints_of[s["driver_number"]].append(dict(s, inferred=False))
    pit_laps: dict[int, set[int]] = defaultdict(set)
    for pit in pits:
        pit_laps[pit["driver_number"]].add(pit["lap_number"])
    stintless = sorted(d for d in by_driver if d not in stints_of)
    for d in stintless:
        ends = {n for n in pit_laps[d] if n >= 1}
        ends |= {n - 1 for n, lap in by_driver[d].items() if lap["is_pit_out_lap"] and n > 1}
        last = max(by_driver[d])
        if last > max(ends, default=0):
            ends.add(last)
        previous = 0
        for number, in_lap in enumerate(sorted(ends), start=1):
            stints_of[d].append({"driver_number": d, "stint_number": number,
                                 "lap_start": previous + 1, "lap_end": in_lap, "compound": None,
                                 "tyre_age_at_start": 0, "inferred": True})
            previous = in_lap

    # Neutralised periods.
    messages = sorted((m for m in race_control if m["date"] is not None),
                      key=lambda m: m["date"])
    leader_done: dict[int, datetime] = {}
    for (_, n), at in completed.items():
        if n not in leader_done or at < leader_done[n]:
            leader_done[n] = at

    def next_message(after: datetime, match: Any, before: datetime | None = None
                     ) -> Row | None:
        return next((m for m in messages if m["date"] > after
                     and (before is None or m["date"] < before) and match(m)), None)

    def lap_starts(n: int) -> list[datetime]:
        return [lap["date_start"] for lap in laps
                if lap["lap_number"] == n and lap["date_start"] is not None]

    periods: list[Period] = []
    for m in messages:
        text = m["message"]
        flag = (m["flag"] or "").upper()
        if starts(text, "SAFETY CAR DEPLOYED"):
            # Only this deployment's messages: those before the next one.
            redeployed = next_message(m["date"], lambda x: starts(x["message"],
                                                                  "SAFETY CAR DEPLOYED"))
            bound = redeployed["date"] if redeployed else None
            sc_in = next_message(m["date"], lambda x: starts(x["message"],
                                                             "SAFETY CAR IN THIS LAP"), bound)
            sc_end: datetime | None = None
            if sc_in is not None and sc_in["lap_number"] is not None:
                k = sc_in["lap_number"]
                sc_end = leader_done.get(k)
                if sc_end is None and lap_starts(k + 1):
                    sc_end = min(lap_starts(k + 1))
            if sc_end is None:
                clear = next_message(m["date"], lambda x: starts(x["message"], "TRACK CLEAR")
                                     or (x["flag"] or "").upper() == "GREEN", bound)
                sc_end = clear["date"] if clear else bound
            periods.append(Period("SC", m["date"], sc_end))
        elif starts(text, "VIRTUAL SAFETY CAR DEPLOYED"):
            ending = next_message(m["date"], lambda x: starts(x["message"],
                                                              "VIRTUAL SAFETY CAR ENDING"))
            periods.append(Period("VSC", m["date"], ending["date"] if ending else None))
        if (flag == "RED" or starts(text, "RED FLAG")) and not starts(text,
                                                                    "RED FLAG INFRINGEMENT"):
            restart = next_message(m["date"], lambda x: starts(x["message"], "SESSION STARTED"))
            periods.append(Period("RED", m["date"], restart["date"] if restart else None))

    instant = timedelta(seconds=p.neutralised_min_overlap_s)

    def overlapping(start: datetime | None, end: datetime | None) -> set[str]:
        """The kinds of the periods [start, end) overlaps by more than the instant."""
        if start is None or end is None:
            return set()
        found = set()
        for period in periods:
            until = end if period.end is None else min(end, period.end)
            if until - max(start, period.start) > instant:
                found.add(period.label)
        return found

    rc_missing = bool(laps) and not race_control
    inferred_sc: set[int] = set()
    if rc_missing and is_race:
        own_pace: dict[int, float] = {}
        for d, own in by_driver.items():
            pace = median(lap["lap_duration"] for lap in own.values()
                          if lap["lap_duration"] is not None)
            if pace is not None:
                own_pace[d] = pace
        timed_by_number: dict[int, list[Row]] = defaultdict(list)
        for lap in laps:
            if lap["lap_duration"] is not None:
                timed_by_number[lap["lap_number"]].append(lap)
        for n, timed in timed_by_number.items():
            slow = len([lap for lap in timed
                        if lap["lap_duration"] > p.inferred_sc_ratio
                        * own_pace[lap["driver_number"]]])
            if len(timed) >= p.inferred_sc_min_drivers and slow > p.inferred_sc_share * len(timed):
                inferred_sc.add(n)

    # Lap metrics but the validity's stint median and the deltas.
    out: dict[tuple[int, int], Row] = {}
    overlaps_sc: dict[tuple[int, int], bool] = {}
    for d, own in by_driver.items():
        for n, lap in own.items():
            holding = [s for s in stints_of[d]
                       if s["lap_start"] <= n <= max(s["lap_end"], s["lap_start"])]
            stint = max(holding, key=lambda s: s["stint_number"]) if holding else None
            kinds = overlapping(lap["date_start"], lap_end(lap))
            # The pace rule's previous lap: [date_start, completed_at).
            overlaps_sc[d, n] = "SC" in overlapping(lap["date_start"], completed.get((d, n)))
            if n in inferred_sc:
                kinds.add("SC")
                overlaps_sc[d, n] = True
            label = next((k for k in ("RED", "SC", "VSC") if k in kinds), None)
            fuel = None
            if is_race and race_laps:
                fuel = max(p.fuel_start_kg - (p.fuel_start_kg / race_laps) * (n - 0.5), 0)
            duration = lap["lap_duration"]
            out[d, n] = {
                "driver_number": d, "lap_number": n,
                "stint_number": stint["stint_number"] if stint else None,
                "compound": stint["compound"] if stint else None,
                "tyre_age": (stint["tyre_age_at_start"] + (n - stint["lap_start"]) + 1
                             if stint and stint["tyre_age_at_start"] is not None else None),
                "is_in_lap": n in pit_laps[d],
                "is_out_lap": bool(lap["is_pit_out_lap"]) or bool(
                    stint and stint["stint_number"] > 1 and n == stint["lap_start"]),
                "neutralised": label,
                "fuel_kg": fuel,
                "fuel_corrected_s": (None if duration is None
                                     else duration - p.fuel_s_per_kg * (fuel or 0)),
                "completeness": "partial" if (stint and stint["inferred"]) or rc_missing
                else "complete",
            }
    for (d, n), row in out.items():
        reason = None
        if n == 1:
            reason = "lap_1"
        elif row["is_in_lap"]:
            reason = "in_lap"
        elif row["is_out_lap"]:
            reason = "out_lap"
        elif row["neutralised"]:
            reason = "neutralised"
        elif overlaps_sc.get((d, n - 1), False):
            reason = "after_sc"
        elif by_driver[d][n]["lap_duration"] is None:
            reason = "no_duration"
        row["invalid_reason"] = reason
    stint_pace: dict[tuple[int, int | None], float | None] = {}
    group: dict[tuple[int, int | None], list[float]] = defaultdict(list)
    for (d, n), row in out.items():
        if row["invalid_reason"] is None:
            group[d, row["stint_number"]].append(by_driver[d][n]["lap_duration"])
    for key, durations in group.items():
        stint_pace[key] = median(durations)
    for (d, n), row in out.items():
        if row["invalid_reason"] is None and by_driver[d][n]["lap_duration"] > (
                p.pace_window * stint_pace[d, row["stint_number"]]):  # type: ignore[operator]
            row["invalid_reason"] = "slow"
        row["valid_for_pace"] = row["invalid_reason"] is None

    # Positions and gaps at the end of each lap.
    for row in out.values():
        row["position"] = row["gap_to_leader_s"] = None
    if is_race:
        finishers: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
        for (d, n), at in completed.items():
            finishers[n].append((at, d))
        for n, order in finishers.items():
            order.sort()
            first = order[0][0]
            for place, (at, d) in enumerate(order, start=1):
                out[d, n]["position"] = place
                out[d, n]["gap_to_leader_s"] = (at - first).total_seconds()

    # Pace deltas.
    team = {r["driver_number"]: r["team_name"] for r in drivers if r["team_name"] is not None}
    valid_fc: dict[int, dict[int, float]] = defaultdict(dict)  # lap -> driver -> fc
    for (d, n), row in out.items():
        if row["valid_for_pace"]:
            valid_fc[n][d] = row["fuel_corrected_s"]
    for (d, n), row in out.items():
        row["delta_field_s"] = row["delta_teammate_s"] = None
        if not (is_race and row["valid_for_pace"]):
            continue
        field = median(valid_fc[n].values())
        assert field is not None
        row["delta_field_s"] = row["fuel_corrected_s"] - field
        mates = [fc for other, fc in valid_fc[n].items()
                 if other != d and d in team and team.get(other) == team[d]]
        mates_pace = median(mates)
        if mates_pace is not None:
            row["delta_teammate_s"] = row["fuel_corrected_s"] - mates_pace

    # Stint metrics.
    stint_rows: dict[tuple[int, int], Row] = {}
    for d, own_stints in stints_of.items():
        for s in own_stints:
            number = s["stint_number"]
            mine = [row for (dd, _), row in out.items()
                    if dd == d and row["stint_number"] == number]
            if s["inferred"] and not mine:
                continue
            valid = [row for row in mine if row["valid_for_pace"]]
            slope = intercept = r2 = None
            if len(valid) >= p.min_degradation_laps:
                slope, intercept, r2 = fit([(row["tyre_age"], row["fuel_corrected_s"])
                                           for row in valid if row["tyre_age"] is not None])
            stint_rows[d, number] = {
                "driver_number": d, "stint_number": number, "compound": s["compound"],
                "laps": len(mine), "valid_laps": len(valid),
                "degradation_s_per_lap": slope, "intercept_s": intercept, "r2": r2,
                "median_pace_s": median(row["fuel_corrected_s"] for row in valid),
                "completeness": "partial" if s["inferred"] or rc_missing else "complete",
            }

    return {"lap_metrics": out, "stint_metrics": stint_rows,
            "pit_cycles": _pit_cycles(out, completed, pits, p) if is_race else {},
            "driver_metrics": _driver_metrics(out, by_driver, pits, results, drivers, grid, p)
            if is_race else {}}


def _pit_cycles(out: dict[tuple[int, int], Row], completed: dict[tuple[int, int], datetime],
                pits: Sequence[Row], p: MetricParams) -> dict[Any, Row]:
    stops = sorted((pit["driver_number"], pit["lap_number"]) for pit in pits)
    cycles: dict[Any, Row] = {}

    def position(d: int, n: int) -> int | None:
        row = out.get((d, n))
        return row["position"] if row else None

    for a, pa in stops:
        for b, pb in stops:
            if b == a or not pa < pb <= pa + p.pit_cycle_max_lap_gap:
                continue
            others = [(d, n) for d, n in stops if d in (a, b) and pa - 1 <= n <= pb + 2
                      and (d, n) not in ((a, pa), (b, pb))]
            if others:
                continue
            a0, b0 = position(a, pa - 1), position(b, pa - 1)
            a1, b1 = position(a, pb + 1), position(b, pb + 1)
            if a0 is None or b0 is None or a1 is None or b1 is None:
                continue
            behind_before = (completed[a, pa - 1] - completed[b, pa - 1]).total_seconds()
            behind_after = (completed[a, pb + 1] - completed[b, pb + 1]).total_seconds()
            if abs(a0 - b0) != 1 and abs(behind_before) > p.pit_cycle_max_gap_s:
                continue
            undercut = a0 > b0
            cycles[a, b, pa] = {
                "earlier_driver": a, "later_driver": b, "earlier_lap": pa, "later_lap": pb,
                "kind": "undercut" if undercut else "overcut",
                "succeeded": a1 < b1 if undercut else a1 > b1,
                "gain_s": behind_before - behind_after,
                "neutralised": any(out[d, n]["neutralised"] is not None
                                   for d in (a, b) for n in range(pa, pb + 2)
                                   if (d, n) in out),
            }
    return cycles


def _driver_metrics(out: dict[tuple[int, int], Row], by_driver: dict[int, dict[int, Row]],
                    pits: Sequence[Row], results: Sequence[Row], drivers: Sequence[Row],
                    grid: Sequence[Row], p: MetricParams) -> dict[Any, Row]:
    everyone = ({r["driver_number"] for r in drivers} | set(by_driver)
                | {r["driver_number"] for r in results})
    grid_at = {r["driver_number"]: r["position"] for r in grid}
    classified = {r["driver_number"]: r["position"] for r in results}
    metrics: dict[Any, Row] = {}
    for d in sorted(everyone):
        mine = [row for (dd, _), row in sorted(out.items()) if dd == d]
        losses = []
        for pit in pits:
            if pit["driver_number"] != d:
                continue
            n = pit["lap_number"]
            in_lap, out_lap = by_driver[d].get(n), by_driver[d].get(n + 1)
            if in_lap is None or out_lap is None:
                continue
            window = median(by_driver[d][k]["lap_duration"] for k in
                            range(n - p.pit_loss_window_laps, n + p.pit_loss_window_laps + 1)
                            if (d, k) in out and out[d, k]["valid_for_pace"])
            if in_lap["lap_duration"] is None or out_lap["lap_duration"] is None or window is None:
                continue
            losses.append(in_lap["lap_duration"] + out_lap["lap_duration"] - 2 * window)
        start, finish = grid_at.get(d), classified.get(d)
        metrics[d] = {
            "driver_number": d,
            "race_pace_delta_s": median(r["delta_field_s"] for r in mine
                                        if r["delta_field_s"] is not None),
            "teammate_delta_s": median(r["delta_teammate_s"] for r in mine
                                       if r["delta_teammate_s"] is not None),
            "laps_led": sum(1 for r in mine if r["position"] == 1),
            "positions_gained": start - finish if start is not None and finish is not None
            else None,
            "median_pit_loss_s": median(losses),
        }
    return metrics


def close(a: Any, b: Any, tolerance: float = 1e-6) -> bool:
    """Equal, or both numbers within `tolerance` (Decimal from SQL, float from here)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return bool(a == b)
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=tolerance)


def differences(sql: dict[Any, dict[str, Any]], ref: dict[Any, dict[str, Any]],
                columns: tuple[str, ...]) -> list[str]:
    """Every key or value where the SQL rows and the reference rows differ."""
    found = [f"only in SQL: {k}" for k in sorted(set(sql) - set(ref))]
    found += [f"only in reference: {k}" for k in sorted(set(ref) - set(sql))]
    for key in sorted(set(sql) & set(ref)):
        for column in columns:
            if not close(sql[key][column], ref[key][column]):
                found.append(f"{key} {column}: SQL {sql[key][column]!r}"
                             f" reference {ref[key][column]!r}")
    return found
