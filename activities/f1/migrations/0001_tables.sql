-- The F1 pipeline's tables (interfaces.md, "F1 pipeline"). Raw tables are keyed by the
-- upstream's natural keys (f1-api.md) and carry `load_id`: the load that last wrote the
-- row (row -> pipeline.loads -> pipeline.runs). Durations and gaps are seconds.
CREATE SCHEMA IF NOT EXISTS f1;

CREATE TABLE f1.meetings (
    meeting_key           int PRIMARY KEY,
    year                  int NOT NULL,
    meeting_name          text NOT NULL,
    meeting_official_name text,
    location              text,
    country_key           int,
    country_code          text,
    country_name          text,
    circuit_key           int,
    circuit_short_name    text,
    circuit_type          text,
    gmt_offset            text,
    date_start            timestamptz,
    date_end              timestamptz,
    is_cancelled          boolean NOT NULL DEFAULT false,
    load_id               text
);

CREATE TABLE f1.sessions (
    session_key        int PRIMARY KEY,
    meeting_key        int NOT NULL,
    year               int NOT NULL,
    session_name       text NOT NULL,
    session_type       text NOT NULL,
    date_start         timestamptz NOT NULL,
    date_end           timestamptz NOT NULL,
    gmt_offset         text,
    is_cancelled       boolean NOT NULL DEFAULT false,
    circuit_key        int,
    circuit_short_name text,
    country_key        int,
    country_code       text,
    country_name       text,
    location           text,
    load_id            text
);
CREATE INDEX sessions_year_idx ON f1.sessions (year, date_start);

CREATE TABLE f1.drivers (
    session_key    int NOT NULL,
    driver_number  int NOT NULL,
    meeting_key    int NOT NULL,
    broadcast_name text,
    full_name      text,
    first_name     text,
    last_name      text,
    name_acronym   text,
    team_name      text,
    team_colour    text,
    headshot_url   text,
    load_id        text,
    PRIMARY KEY (session_key, driver_number)
);

CREATE TABLE f1.laps (
    session_key        int NOT NULL,
    driver_number      int NOT NULL,
    lap_number         int NOT NULL,
    meeting_key        int NOT NULL,
    date_start         timestamptz,
    lap_duration       double precision,
    duration_sector_1  double precision,
    duration_sector_2  double precision,
    duration_sector_3  double precision,
    i1_speed           int,
    i2_speed           int,
    st_speed           int,
    is_pit_out_lap     boolean NOT NULL,
    load_id            text,
    PRIMARY KEY (session_key, driver_number, lap_number)
);

CREATE TABLE f1.stints (
    session_key       int NOT NULL,
    driver_number     int NOT NULL,
    stint_number      int NOT NULL,
    meeting_key       int NOT NULL,
    lap_start         int NOT NULL,
    lap_end           int NOT NULL,
    compound          text,
    tyre_age_at_start int,
    load_id           text,
    PRIMARY KEY (session_key, driver_number, stint_number)
);

CREATE TABLE f1.pit_stops (
    session_key   int NOT NULL,
    driver_number int NOT NULL,
    lap_number    int NOT NULL,
    meeting_key   int NOT NULL,
    date          timestamptz,
    lane_duration double precision,
    stop_duration double precision,
    load_id       text,
    PRIMARY KEY (session_key, driver_number, lap_number)
);

CREATE TABLE f1.weather (
    session_key       int NOT NULL,
    date              timestamptz NOT NULL,
    meeting_key       int NOT NULL,
    air_temperature   double precision,
    track_temperature double precision,
    humidity          double precision,
    pressure          double precision,
    rainfall          int,
    wind_direction    int,
    wind_speed        double precision,
    load_id           text,
    PRIMARY KEY (session_key, date)
);

-- The natural key holds nullable fields (nulls compare equal): `message_key` is its
-- canonical text, date (UTC), driver_number, lap_number, category, flag, scope and
-- sector joined by U+001F, a null as the empty string.
CREATE TABLE f1.race_control (
    session_key      int NOT NULL,
    message_key      text NOT NULL,
    meeting_key      int NOT NULL,
    date             timestamptz,
    category         text,
    flag             text,
    scope            text,
    sector           int,
    driver_number    int,
    lap_number       int,
    qualifying_phase int,
    message          text,
    load_id          text,
    PRIMARY KEY (session_key, message_key)
);

CREATE TABLE f1.positions (
    session_key   int NOT NULL,
    driver_number int NOT NULL,
    date          timestamptz NOT NULL,
    meeting_key   int NOT NULL,
    position      int NOT NULL,
    load_id       text,
    PRIMARY KEY (session_key, driver_number, date)
);

CREATE TABLE f1.intervals (
    session_key        int NOT NULL,
    driver_number      int NOT NULL,
    date               timestamptz NOT NULL,
    meeting_key        int NOT NULL,
    gap_to_leader_s    double precision,
    gap_to_leader_laps int,
    interval_s         double precision,
    interval_laps      int,
    load_id            text,
    PRIMARY KEY (session_key, driver_number, date)
);

CREATE TABLE f1.overtakes (
    session_key              int NOT NULL,
    date                     timestamptz NOT NULL,
    overtaking_driver_number int NOT NULL,
    overtaken_driver_number  int NOT NULL,
    meeting_key              int NOT NULL,
    position                 int NOT NULL,
    load_id                  text,
    PRIMARY KEY (session_key, date, overtaking_driver_number, overtaken_driver_number)
);

-- Races: duration_s / gap_to_leader_s (or _laps for "+N LAP(S)"). Qualifying: the
-- Q1-Q3 arrays split into *_q1.._q3.
CREATE TABLE f1.session_results (
    session_key        int NOT NULL,
    driver_number      int NOT NULL,
    meeting_key        int NOT NULL,
    position           int,
    number_of_laps     int NOT NULL,
    dnf                boolean NOT NULL,
    dns                boolean NOT NULL,
    dsq                boolean NOT NULL,
    duration_s         double precision,
    duration_q1        double precision,
    duration_q2        double precision,
    duration_q3        double precision,
    gap_to_leader_s    double precision,
    gap_to_leader_laps int,
    gap_to_leader_q1   double precision,
    gap_to_leader_q2   double precision,
    gap_to_leader_q3   double precision,
    points             double precision,
    load_id            text,
    PRIMARY KEY (session_key, driver_number)
);

-- Keyed by the qualifying session's key, as the upstream serves it.
CREATE TABLE f1.starting_grid (
    session_key   int NOT NULL,
    driver_number int NOT NULL,
    meeting_key   int NOT NULL,
    position      int,
    lap_duration  double precision,
    load_id       text,
    PRIMARY KEY (session_key, driver_number)
);

-- Per (session, endpoint): how the last pull went and how far merged data reaches.
-- Written in the transaction that merged the rows (never ahead of them); an audit
-- trail, never undone.
CREATE TABLE f1.stream_state (
    session_key int NOT NULL,
    endpoint    text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'empty', 'failed', 'partial')),
    watermark   timestamptz,
    rows_seen   int NOT NULL DEFAULT 0,
    detail      text,
    run_id      text,
    load_id     text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_key, endpoint)
);

-- Derived metrics' parameters, versioned: exactly one version is active.
CREATE TABLE f1.metric_params (
    version    text PRIMARY KEY,
    params     jsonb NOT NULL,
    active     boolean NOT NULL DEFAULT false,
    note       text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX metric_params_one_active ON f1.metric_params (active) WHERE active;
-- Every field of activities/f1/params.py's MetricParams, so v1 never changes meaning.
INSERT INTO f1.metric_params (version, params, active, note) VALUES ('v1', '{
    "fuel_start_kg": 110.0, "fuel_s_per_kg": 0.03, "pace_window": 1.07,
    "min_degradation_laps": 5, "pit_cycle_max_lap_gap": 3, "pit_cycle_max_gap_s": 3.0,
    "pit_loss_window_laps": 5, "neutralised_min_overlap_s": 0.0,
    "inferred_sc_ratio": 1.25, "inferred_sc_share": 0.5, "inferred_sc_min_drivers": 3,
    "z_score_threshold": 3.5, "z_score_min_laps": 5, "position_jump": 3,
    "pit_lane_tukey_k": 1.5, "pit_lane_min_stops": 4, "max_degradation_s_per_lap": 0.5,
    "min_degradation_s_per_lap": -0.2, "weather_step_track_c": 5.0, "weather_step_air_c": 3.0
}', true, 'interfaces.md v2 defaults');

CREATE TABLE f1.lap_metrics (
    session_key      int NOT NULL,
    driver_number    int NOT NULL,
    lap_number       int NOT NULL,
    stint_number     int,
    compound         text,
    tyre_age         int,
    is_in_lap        boolean NOT NULL,
    is_out_lap       boolean NOT NULL,
    neutralised      text CHECK (neutralised IN ('SC', 'VSC', 'RED')),
    fuel_kg          numeric,
    fuel_corrected_s numeric,
    valid_for_pace   boolean NOT NULL,
    invalid_reason   text,
    position         int,
    gap_to_leader_s  numeric,
    delta_field_s    numeric,
    delta_teammate_s numeric,
    metric_version   text NOT NULL,
    -- 'partial' when computed without a stream it needs (stints or race control).
    completeness     text NOT NULL DEFAULT 'complete',
    PRIMARY KEY (session_key, driver_number, lap_number)
);

CREATE TABLE f1.stint_metrics (
    session_key           int NOT NULL,
    driver_number         int NOT NULL,
    stint_number          int NOT NULL,
    compound              text,
    laps                  int NOT NULL,
    valid_laps            int NOT NULL,
    degradation_s_per_lap numeric,
    intercept_s           numeric,
    r2                    numeric,
    median_pace_s         numeric,
    metric_version        text NOT NULL,
    completeness          text NOT NULL DEFAULT 'complete',
    PRIMARY KEY (session_key, driver_number, stint_number)
);

CREATE TABLE f1.pit_cycles (
    session_key    int NOT NULL,
    earlier_driver int NOT NULL,
    later_driver   int NOT NULL,
    earlier_lap    int NOT NULL,
    later_lap      int NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('undercut', 'overcut')),
    succeeded      boolean NOT NULL,
    gain_s         numeric,
    neutralised    boolean NOT NULL,
    metric_version text NOT NULL,
    PRIMARY KEY (session_key, earlier_driver, later_driver, earlier_lap)
);

CREATE TABLE f1.driver_session_metrics (
    session_key        int NOT NULL,
    driver_number      int NOT NULL,
    race_pace_delta_s  numeric,
    teammate_delta_s   numeric,
    laps_led           int NOT NULL,
    positions_gained   int,
    median_pit_loss_s  numeric,
    metric_version     text NOT NULL,
    PRIMARY KEY (session_key, driver_number)
);

-- An audit trail (never undone): every check of every run.
CREATE TABLE f1.quality_checks (
    id          bigserial PRIMARY KEY,
    session_key int NOT NULL,
    check_id    text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('error', 'warn', 'info')),
    passed      boolean NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    run_id      text,
    checked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_checks_session_idx ON f1.quality_checks (session_key, check_id, id);

-- `anomaly_key` names the anomaly within its kind (driver and lap may be null).
CREATE TABLE f1.anomalies (
    session_key    int NOT NULL,
    kind           text NOT NULL,
    anomaly_key    text NOT NULL,
    driver_number  int,
    lap_number     int,
    detail         jsonb NOT NULL DEFAULT '{}',
    metric_version text NOT NULL,
    PRIMARY KEY (session_key, kind, anomaly_key)
);
