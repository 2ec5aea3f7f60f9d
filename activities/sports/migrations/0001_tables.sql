-- The contract's sports tables. IF NOT EXISTS: databases created before the pipeline
-- seam got them from the kernel's first migration, and keep them as they are.
CREATE SCHEMA IF NOT EXISTS sports;

CREATE TABLE IF NOT EXISTS sports.accounts (
    id      bigint PRIMARY KEY,
    kind    text NOT NULL CHECK (kind IN ('club', 'association')),
    org_id  text NOT NULL,
    name    text NOT NULL
);

CREATE TABLE IF NOT EXISTS sports.competitions (
    id        text PRIMARY KEY,
    name      text NOT NULL,
    season    text,
    starts_on date,
    ends_on   date,
    status    text
);

CREATE TABLE IF NOT EXISTS sports.teams (
    id             text PRIMARY KEY,
    competition_id text NOT NULL,
    name           text NOT NULL,
    club_id        text
);
CREATE INDEX IF NOT EXISTS teams_competition_idx ON sports.teams (competition_id);

CREATE TABLE IF NOT EXISTS sports.games (
    id                text PRIMARY KEY,
    competition_id    text NOT NULL,
    round             text,
    scheduled_at      timestamptz NOT NULL,
    home_team_id      text NOT NULL,
    away_team_id      text NOT NULL,
    venue             text,
    status            text NOT NULL,
    home_score        int,
    away_score        int,
    source_updated_at timestamptz
);
CREATE INDEX IF NOT EXISTS games_competition_idx ON sports.games (competition_id);

