"""Regenerate the vendored F1 data of the demo upstream from the shared data sets.

    .venv/bin/python -m devstack.f1.data.vendor [--source ../shared/data]

Reads (see SOURCE.md beside this file for what, from where and under which license):
- ``f1db/`` (CC BY 4.0): the 2024 calendar, entry lists, results, grids, pit stops;
- ``f1-laps-2024/`` (MIT): every lap of the Bahrain, Monaco, Hungarian and São Paulo races;
- ``f1-safety/`` (CC0): 2024 safety-car periods, red flags and VSC laps.

Writes compact JSON (``season-2024.json``, ``laps-2024.json``, ``safety-2024.json``) and
copies the two licence files that must travel with the copies. The output is
deterministic (sorted keys, no timestamps), so re-running it changes nothing. Only this
script needs PyYAML; the server reads the JSON with the standard library.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
# The repository sits beside ../shared: devstack/f1/data -> <repo> -> <repo>/../shared/data.
DEFAULT_SOURCE = HERE.parents[3] / "shared" / "data"
YEAR = 2024
# The four races of f1-laps-2024, by f1db race folder.
LAP_RACES = {
    "01-bahrain": "Bahrain Grand Prix",
    "08-monaco": "Monaco Grand Prix",
    "13-hungary": "Hungarian Grand Prix",
    "21-sao-paulo": "São Paulo Grand Prix",
}
# f1-safety names a race as "<year> <name>"; where the name is not f1db's grand prix name.
SAFETY_NAMES = {"Mexico City Grand Prix": "mexico"}
SCHEDULE_FIELDS = {
    "fp1": "freePractice1",
    "fp2": "freePractice2",
    "fp3": "freePractice3",
    "sprint_qualifying": "sprintQualifying",
    "sprint": "sprintRace",
    "qualifying": "qualifying",
}


class VendorError(Exception):
    """The shared data do not look as SOURCE.md describes them."""


def _yaml(path: Path) -> Any:
    # BaseLoader: every scalar a string. YAML 1.1 would read `time: 15:00` as 900.
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader is safe


def _int(text: str) -> int | None:
    return int(text) if text not in ("", None) else None


def _seconds(text: str | None) -> float | None:
    """"1:31:44.742" / "1:30.031" / "25.208" / "+22.457" -> seconds; "" -> None."""
    if not text:
        return None
    text = text.lstrip("+")
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return round(total, 3)


def _position(text: str) -> int | str:
    """An int, or f1db's DNF / DNS / DSQ / NC / PL."""
    return int(text) if text.isdigit() else text


def _table(columns: list[str], rows: Iterable[list[Any]]) -> dict[str, Any]:
    return {"columns": columns, "rows": list(rows)}


def _gap(text: str) -> tuple[float | None, int | None]:
    """(seconds behind, laps behind) of an f1db gap such as "+22.457" or "+2 laps"."""
    if not text:
        return None, None
    if "lap" in text:
        return None, int(text.lstrip("+").split()[0])
    return _seconds(text), None


def _race_results(path: Path) -> dict[str, Any]:
    rows = []
    for item in _yaml(path):
        gap_s, laps_down = _gap(item["gap"])
        rows.append([
            _position(item["position"]), int(item["driverNumber"]), item["driverId"],
            item["constructorId"], _int(item["laps"]), _seconds(item["time"]), gap_s,
            laps_down, _seconds(item.get("timePenalty") or ""),
            float(item["points"]) if item["points"] else None,
            _position(item["gridPosition"]) if item["gridPosition"] else None,
            item["reasonRetired"] or None,
        ])
    return _table(["position", "number", "driver", "team", "laps", "time_s", "gap_s",
                   "laps_down", "penalty_s", "points", "grid", "retired"], rows)


def _qualifying(path: Path) -> dict[str, Any]:
    rows = [[_position(item["position"]), int(item["driverNumber"]), item["driverId"],
             item["constructorId"], _seconds(item["q1"]), _seconds(item["q2"]),
             _seconds(item["q3"]), _int(item["laps"])]
            for item in _yaml(path)]
    return _table(["position", "number", "driver", "team", "q1_s", "q2_s", "q3_s", "laps"], rows)


def _practice(path: Path) -> dict[str, Any]:
    rows = [[_position(item["position"]), int(item["driverNumber"]), item["driverId"],
             item["constructorId"], _seconds(item["time"]), _int(item["laps"])]
            for item in _yaml(path)]
    return _table(["position", "number", "driver", "team", "time_s", "laps"], rows)


def _grid(path: Path) -> dict[str, Any]:
    rows = [[_position(item["position"]), int(item["driverNumber"]), item["driverId"],
             _seconds(item["time"])]
            for item in _yaml(path)]
    return _table(["position", "number", "driver", "time_s"], rows)


def _pit_stops(path: Path) -> dict[str, Any]:
    rows = [[int(item["driverNumber"]), item["driverId"], int(item["stop"]), int(item["lap"]),
             _seconds(item["time"])]
            for item in _yaml(path)]
    return _table(["number", "driver", "stop", "lap", "time_s"], rows)


def _schedule(race: dict[str, Any]) -> dict[str, str]:
    """Session start times, UTC (f1db's times are UTC), as "YYYY-MM-DDTHH:MM"."""
    times = {"race": f"{race['date']}T{race['time']}"}
    for name, prefix in SCHEDULE_FIELDS.items():
        if race.get(f"{prefix}Date"):
            times[name] = f"{race[prefix + 'Date']}T{race[prefix + 'Time']}"
    return times


def season(f1db: Path) -> dict[str, Any]:
    races_dir = f1db / "seasons" / str(YEAR) / "races"
    rounds = []
    drivers: set[str] = set()
    teams: set[str] = set()
    circuits: set[str] = set()
    for folder in sorted(races_dir.iterdir()):
        race = _yaml(folder / "race.yml")
        grand_prix = _yaml(f1db / "grands-prix" / f"{race['grandPrixId']}.yml")
        entry: dict[str, Any] = {
            "round": int(race["round"]),
            "folder": folder.name,
            "grand_prix": race["grandPrixId"],
            "name": grand_prix["fullName"],
            "official_name": race["officialName"],
            "circuit": race["circuitId"],
            "laps": int(race["laps"]),
            "scheduled_laps": _int(race.get("scheduledLaps") or "") or int(race["laps"]),
            "sprint_laps": _int(race.get("sprintRaceLaps") or ""),
            "course_km": float(race["courseLength"]),
            "schedule": _schedule(race),
        }
        parts = {
            "race_results": ("race-results.yml", _race_results),
            "sprint_results": ("sprint-race-results.yml", _race_results),
            "qualifying": ("qualifying-results.yml", _qualifying),
            "sprint_qualifying": ("sprint-qualifying-results.yml", _qualifying),
            "fp1": ("free-practice-1-results.yml", _practice),
            "fp2": ("free-practice-2-results.yml", _practice),
            "fp3": ("free-practice-3-results.yml", _practice),
            "grid": ("starting-grid-positions.yml", _grid),
            "sprint_grid": ("sprint-starting-grid-positions.yml", _grid),
            "pit_stops": ("pit-stops.yml", _pit_stops),
        }
        entrants: dict[int, list[str]] = {}
        for key, (filename, read) in parts.items():
            if (folder / filename).exists():
                entry[key] = _by_number(read(folder / filename), entrants, folder.name)
        entry["entrants"] = {str(number): pair for number, pair in sorted(entrants.items())}
        drivers.update(driver for driver, _ in entrants.values())
        teams.update(team for _, team in entrants.values() if team)
        circuits.add(race["circuitId"])
        rounds.append(entry)
    if len(rounds) != 24:
        raise VendorError(f"expected 24 races in {YEAR}, found {len(rounds)}")
    return {
        "year": YEAR,
        "rounds": rounds,
        "drivers": {driver_id: _driver(f1db, driver_id) for driver_id in sorted(drivers)},
        "teams": {team: _yaml(f1db / "constructors" / f"{team}.yml")["name"]
                  for team in sorted(teams)},
        "circuits": {circuit: _circuit(f1db, circuit) for circuit in sorted(circuits)},
    }


def _by_number(table: dict[str, Any], entrants: dict[int, list[str]], race: str
               ) -> dict[str, Any]:
    """The table without its driver and team columns: a weekend's car number names both
    (``entrants``), which keeps the vendored file small."""
    columns: list[str] = table["columns"]
    number, driver = columns.index("number"), columns.index("driver")
    team = columns.index("team") if "team" in columns else None
    dropped = {driver} if team is None else {driver, team}
    for row in table["rows"]:
        known = entrants.setdefault(row[number], [row[driver], ""])
        if known[0] != row[driver]:
            raise VendorError(f"{race}: car {row[number]} is {known[0]} and {row[driver]}")
        if team is not None:
            known[1] = known[1] or row[team]
    return _table([name for i, name in enumerate(columns) if i not in dropped],
                  ([value for i, value in enumerate(row) if i not in dropped]
                   for row in table["rows"]))


def _driver(f1db: Path, driver_id: str) -> dict[str, Any]:
    data = _yaml(f1db / "drivers" / f"{driver_id}.yml")
    return {"first_name": data["firstName"], "last_name": data["lastName"],
            "acronym": data["abbreviation"], "permanent_number": _int(data["permanentNumber"]),
            "country": data["nationalityCountryId"]}


def _circuit(f1db: Path, circuit_id: str) -> dict[str, Any]:
    data = _yaml(f1db / "circuits" / f"{circuit_id}.yml")
    country = _yaml(f1db / "countries" / f"{data['countryId']}.yml")
    return {"name": data["name"], "full_name": data["fullName"], "place": data["placeName"],
            "type": data["type"], "country": country["name"], "ioc": country["iocCode"],
            "alpha3": country["alpha3Code"]}


def laps(source: Path, f1db_season: dict[str, Any]) -> dict[str, Any]:
    """Per race and driver: stints and laps, times in milliseconds (exact, no float noise)."""
    out: dict[str, Any] = {}
    by_folder = {entry["folder"]: entry for entry in f1db_season["rounds"]}
    for folder, gp_name in LAP_RACES.items():
        race_dir = source / "f1-laps-2024" / gp_name / "Race"
        listed = json.loads((race_dir / "drivers.json").read_text(encoding="utf-8"))["drivers"]
        numbers = _numbers_by_acronym(by_folder[folder], f1db_season["drivers"])
        drivers: dict[str, Any] = {}
        for entry in listed:
            acronym = entry["driver"]
            path = race_dir / acronym / "laptimes.json"
            if not path.exists():
                continue  # missing upstream (SOURCE.md: Monaco PER/OCO, São Paulo STR)
            drivers[acronym] = {"number": numbers[acronym], "team": entry["team"],
                                **_driver_laps(json.loads(path.read_text(encoding="utf-8")),
                                               f"{gp_name} {acronym}")}
        out[folder] = {"name": gp_name, "drivers": drivers}
    return out


def _numbers_by_acronym(race: dict[str, Any], drivers: dict[str, Any]) -> dict[str, int]:
    return {drivers[driver]["acronym"]: int(number)
            for number, (driver, _) in race["entrants"].items()}


def _ms(value: Any) -> int | None:
    return None if value == "None" else round(float(value) * 1000)


def _driver_laps(data: dict[str, list[Any]], label: str) -> dict[str, Any]:
    count = len(data["lap"])
    if any(len(values) != count for values in data.values()):
        raise VendorError(f"{label}: arrays of unequal length")
    if [int(lap) for lap in data["lap"]] != list(range(1, count + 1)):
        raise VendorError(f"{label}: laps are not consecutive from 1")
    stints: list[list[Any]] = []
    for index in range(count):
        stint, compound, life = data["stint"][index], data["compound"][index], data["life"][index]
        if stints and stints[-1][0] == stint:
            current = stints[-1]
            if compound != current[1] or life != current[4] + index + 1 - current[2]:
                raise VendorError(f"{label}: lap {index + 1} breaks stint {stint}")
            current[3] = index + 1
        else:
            stints.append([stint, compound, index + 1, index + 1, life])
    rows = [[_ms(data["time"][i]), _ms(data["s1"][i]), _ms(data["s2"][i]), _ms(data["s3"][i]),
             None if data["pos"][i] == "None" else int(data["pos"][i]), data["status"][i]]
            for i in range(count)]
    # stint rows: [stint number, compound, first lap, last lap, tyre life on the first lap]
    return {"stints": stints, "laps": rows}


def safety(source: Path, f1db_season: dict[str, Any]) -> dict[str, Any]:
    rounds_by_name = {entry["name"]: entry["round"] for entry in f1db_season["rounds"]}
    rounds_by_gp = {entry["grand_prix"]: entry["round"] for entry in f1db_season["rounds"]}
    prefix = f"{YEAR} "

    def round_of(race: str) -> int:
        name = race[len(prefix):]
        if name in SAFETY_NAMES:
            return int(rounds_by_gp[SAFETY_NAMES[name]])
        if name not in rounds_by_name:
            raise VendorError(f"f1-safety names an unknown {YEAR} race: {race!r}")
        return int(rounds_by_name[name])

    folder = source / "f1-safety"
    safety_cars: dict[str, list[list[Any]]] = {}
    with (folder / "safety_cars.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Race"].startswith(prefix):
                retreated = int(float(row["Retreated"])) if row["Retreated"] else None
                safety_cars.setdefault(str(round_of(row["Race"])), []).append(
                    [int(row["Deployed"]), retreated, int(row["FullLaps"]), row["Cause"]])
    red_flags: dict[str, list[list[Any]]] = {}
    with (folder / "red_flags.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Race"].startswith(prefix):
                red_flags.setdefault(str(round_of(row["Race"])), []).append(
                    [int(row["Lap"]), row["Resumed"], row["Incident"]])
    estimates = json.loads((folder / "virtual_safety_car_estimates.json").read_text("utf-8"))
    vsc = {str(round_of(race)): sorted(laps_) for race, laps_ in estimates.items()
           if race.startswith(prefix)}
    return {"safety_cars": safety_cars, "red_flags": red_flags, "vsc_laps": vsc}


def _write(path: Path, value: Any) -> int:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")
    return len(text.encode()) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.f1.data.vendor",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="the shared data folder (default: %(default)s)")
    args = parser.parse_args(argv)
    source: Path = args.source
    calendar = season(source / "f1db")
    sizes = {
        "season-2024.json": _write(HERE / "season-2024.json", calendar),
        "laps-2024.json": _write(HERE / "laps-2024.json", laps(source, calendar)),
        "safety-2024.json": _write(HERE / "safety-2024.json", safety(source, calendar)),
    }
    shutil.copyfile(source / "f1-laps-2024" / "LICENSE", HERE / "LICENSE-TracingInsights-2024")
    shutil.copyfile(source / "f1-safety" / "LICENSE", HERE / "LICENSE-TracingInsights-RaceData")
    for name, size in sizes.items():
        print(f"{name}: {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
