CREATE SCHEMA IF NOT EXISTS example;
-- One table with a composite key: a station's reading per hour.
CREATE TABLE IF NOT EXISTS example.readings (
    station text NOT NULL,
    hour    int NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (station, hour)
);
