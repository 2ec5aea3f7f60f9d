"""Hand-written facts the vendored data sets lack: OpenF1's keys, time zones, circuit
keys, team display names and colours, and a rough climate per circuit for weather.

Where a value is OpenF1's own it says so; everything else is synthetic but stable.
"""

from __future__ import annotations

from typing import Final

YEAR: Final = 2024

# OpenF1's meeting and session keys for the 2024 rounds the openf1 project lists
# (github.com/br-g/openf1, openf1/util/schedule.py, MISSING_SESSIONS): round ->
# (meeting_key, {session_name: session_key}). Non-chronological, as OpenF1's are.
OPENF1_KEYS: Final[dict[int, tuple[int, dict[str, int]]]] = {
    1: (1229, {"Practice 1": 9465, "Practice 2": 9466, "Practice 3": 9467,
               "Qualifying": 9468, "Race": 9472}),
    2: (1230, {"Practice 1": 9473, "Practice 2": 9474, "Practice 3": 9475,
               "Qualifying": 9476, "Race": 9480}),
    3: (1231, {"Practice 1": 9481, "Practice 2": 9482, "Practice 3": 9483,
               "Qualifying": 9484, "Race": 9488}),
    4: (1232, {"Practice 1": 9489, "Practice 2": 9490, "Practice 3": 9491,
               "Qualifying": 9492, "Race": 9496}),
    5: (1233, {"Practice 1": 9663, "Sprint Qualifying": 9668, "Sprint": 9672,
               "Qualifying": 9664, "Race": 9673}),
    6: (1234, {"Practice 1": 9497, "Sprint Qualifying": 9502, "Sprint": 9506,
               "Qualifying": 9498, "Race": 9507}),
    7: (1235, {"Practice 1": 9508, "Practice 2": 9509, "Practice 3": 9510,
               "Qualifying": 9511, "Race": 9515}),
    8: (1236, {"Practice 1": 9516, "Practice 2": 9517, "Practice 3": 9518,
               "Qualifying": 9519, "Race": 9523}),
    9: (1237, {"Practice 1": 9524, "Practice 2": 9525, "Practice 3": 9526,
               "Qualifying": 9527, "Race": 9531}),
}

# Synthetic keys for the other rounds: meeting 1228 + round, sessions from a base per
# round with OpenF1's habit of numbering the race (and a sprint's sessions) out of order.
SYNTHETIC_SESSION_OFFSETS: Final[dict[str, int]] = {
    "Practice 1": 0, "Practice 2": 1, "Practice 3": 2, "Qualifying": 3,
    "Sprint Qualifying": 5, "Sprint": 9, "Race": 10,
}


def synthetic_keys(round_number: int, session_names: list[str]) -> tuple[int, dict[str, int]]:
    base = 9680 + 12 * (round_number - 10)  # above every OpenF1 key of 2024 listed above
    return 1228 + round_number, {name: base + SYNTHETIC_SESSION_OFFSETS[name]
                                 for name in session_names}


# Local UTC offset at each circuit on its 2024 race weekend ("[-]HH:MM:SS").
GMT_OFFSETS: Final[dict[str, str]] = {
    "bahrain": "03:00:00", "jeddah": "03:00:00", "melbourne": "11:00:00",
    "suzuka": "09:00:00", "shanghai": "08:00:00", "miami": "-04:00:00",
    "imola": "02:00:00", "monaco": "02:00:00", "montreal": "-04:00:00",
    "catalunya": "02:00:00", "spielberg": "02:00:00", "silverstone": "01:00:00",
    "hungaroring": "02:00:00", "spa-francorchamps": "02:00:00", "zandvoort": "02:00:00",
    "monza": "02:00:00", "baku": "04:00:00", "marina-bay": "08:00:00",
    "austin": "-05:00:00", "mexico-city": "-06:00:00", "interlagos": "-03:00:00",
    "las-vegas": "-08:00:00", "lusail": "03:00:00", "yas-marina": "04:00:00",
}

# f1db circuit id -> (OpenF1 circuit_key, circuit_short_name). Bahrain's 63 is OpenF1's
# (the contract's examples); the others follow OpenF1's naming but are not verified.
CIRCUITS: Final[dict[str, tuple[int, str]]] = {
    "bahrain": (63, "Sakhir"), "jeddah": (149, "Jeddah"), "melbourne": (10, "Melbourne"),
    "suzuka": (46, "Suzuka"), "shanghai": (49, "Shanghai"), "miami": (151, "Miami"),
    "imola": (6, "Imola"), "monaco": (22, "Monte Carlo"), "montreal": (23, "Montreal"),
    "catalunya": (15, "Catalunya"), "spielberg": (19, "Spielberg"),
    "silverstone": (2, "Silverstone"), "hungaroring": (4, "Hungaroring"),
    "spa-francorchamps": (7, "Spa-Francorchamps"), "zandvoort": (55, "Zandvoort"),
    "monza": (39, "Monza"), "baku": (144, "Baku"), "marina-bay": (61, "Singapore"),
    "austin": (9, "Austin"), "mexico-city": (65, "Mexico City"),
    "interlagos": (14, "Interlagos"), "las-vegas": (152, "Las Vegas"),
    "lusail": (150, "Lusail"), "yas-marina": (70, "Yas Marina Circuit"),
}

# OpenF1 country keys: Bahrain's 36 is OpenF1's; the rest are synthetic (by IOC code).
COUNTRY_KEYS: Final[dict[str, int]] = {
    "BRN": 36, "KSA": 153, "AUS": 5, "JPN": 4, "CHN": 53, "USA": 19, "ITA": 13,
    "MON": 114, "CAN": 46, "ESP": 1, "AUT": 17, "GBR": 2, "HUN": 12, "BEL": 16,
    "NED": 144, "AZE": 148, "SGP": 157, "MEX": 65, "BRA": 10, "QAT": 150, "UAE": 21,
}

CIRCUIT_TYPES: Final[dict[str, str]] = {
    "RACE": "Permanent", "STREET": "Temporary - Street", "ROAD": "Temporary - Road",
}

# f1db constructor id -> (OpenF1 team_name, team_colour) in 2024.
TEAMS: Final[dict[str, tuple[str, str]]] = {
    "red-bull": ("Red Bull Racing", "3671C6"), "ferrari": ("Ferrari", "E8002D"),
    "mercedes": ("Mercedes", "27F4D2"), "mclaren": ("McLaren", "FF8000"),
    "aston-martin": ("Aston Martin", "229971"), "alpine": ("Alpine", "FF87BC"),
    "williams": ("Williams", "64C4FF"), "rb": ("RB", "6692FF"),
    "kick-sauber": ("Kick Sauber", "52E252"), "haas": ("Haas F1 Team", "B6BABD"),
}

# Rough conditions at session time: (air °C, humidity %, pressure mbar). Pressure
# follows altitude (Mexico City ~2,240 m, Interlagos ~760 m, Spielberg ~680 m).
CLIMATE: Final[dict[str, tuple[float, float, float]]] = {
    "bahrain": (20.0, 45.0, 1017.0), "jeddah": (27.0, 60.0, 1012.0),
    "melbourne": (20.0, 55.0, 1015.0), "suzuka": (19.0, 60.0, 1010.0),
    "shanghai": (22.0, 60.0, 1015.0), "miami": (29.0, 60.0, 1017.0),
    "imola": (20.0, 65.0, 1010.0), "monaco": (22.0, 65.0, 1012.0),
    "montreal": (20.0, 70.0, 1010.0), "catalunya": (25.0, 55.0, 1010.0),
    "spielberg": (25.0, 50.0, 930.0), "silverstone": (18.0, 65.0, 1008.0),
    "hungaroring": (30.0, 45.0, 995.0), "spa-francorchamps": (18.0, 75.0, 960.0),
    "zandvoort": (19.0, 70.0, 1015.0), "monza": (28.0, 50.0, 990.0),
    "baku": (24.0, 55.0, 1020.0), "marina-bay": (30.0, 75.0, 1008.0),
    "austin": (27.0, 55.0, 995.0), "mexico-city": (20.0, 45.0, 780.0),
    "interlagos": (21.0, 80.0, 925.0), "las-vegas": (14.0, 35.0, 935.0),
    "lusail": (24.0, 65.0, 1012.0), "yas-marina": (26.0, 60.0, 1015.0),
}

# Scheduled length of each session, minutes (sessions.date_end is start + this).
SESSION_MINUTES: Final[dict[str, int]] = {
    "Practice 1": 60, "Practice 2": 60, "Practice 3": 60, "Qualifying": 60,
    "Sprint Qualifying": 44, "Sprint": 60, "Race": 120,
}
SESSION_TYPES: Final[dict[str, str]] = {
    "Practice 1": "Practice", "Practice 2": "Practice", "Practice 3": "Practice",
    "Qualifying": "Qualifying", "Sprint Qualifying": "Qualifying",
    "Sprint": "Race", "Race": "Race",
}

# Points for the top ten of a race and the top eight of a sprint (2024 rules; the
# fastest-lap point of a race goes to a top-ten driver).
RACE_POINTS: Final = (25, 18, 15, 12, 10, 8, 6, 4, 2, 1)
SPRINT_POINTS: Final = (8, 7, 6, 5, 4, 3, 2, 1)
