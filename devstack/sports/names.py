"""Static name pools for the generated demo data.

Club names for England, Germany, Spain and France come from openfootball/football.json
(CC0, see /work/shared/data/football/SOURCE.md); the rest are real-world names typed in by
hand. The pools deliberately mix scripts (Latin with diacritics, Japanese, Arabic, Greek,
Cyrillic), apostrophes, ampersands, quotes and one non-BMP character, so that clients and
databases are exercised on text they will meet in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CompetitionKind = Literal["league", "cup", "friendly"]


@dataclass(frozen=True, slots=True)
class CompetitionTemplate:
    name: str
    team_suffix: str
    kind: CompetitionKind


@dataclass(frozen=True, slots=True)
class AssociationTemplate:
    name: str
    country: str | None
    utc_offset_minutes: int
    # Calendar-year seasons ("2025") rather than split seasons ("2024/25").
    calendar_year: bool
    venue_pattern: str
    competitions: tuple[CompetitionTemplate, ...]
    clubs: tuple[tuple[str, str], ...]  # (club name, city)


def _c(name: str, suffix: str, kind: CompetitionKind) -> CompetitionTemplate:
    return CompetitionTemplate(name, suffix, kind)


# Order matters: the default demo uses the first three, chosen so that it alone covers
# every awkward kind of text and a negative, a zero and a positive UTC offset.
ASSOCIATIONS: tuple[AssociationTemplate, ...] = (
    AssociationTemplate(
        name="Schweizerischer Fussballverband",
        country="Switzerland",
        utc_offset_minutes=60,
        calendar_year=False,
        venue_pattern="Stadion {city}",
        competitions=(
            _c("Super League", "", "league"),
            _c("Schweizer Cup", "", "cup"),
            _c("Women's Super League", " Frauen", "league"),
            _c("Promotion League U-21", " U21", "league"),
        ),
        clubs=(
            ("FC Zürich", "Zürich"),
            ("Grasshopper Club Zürich", "Zürich"),
            ("BSC Young Boys", "Bern"),
            ("FC Basel 1893", "Basel"),
            ("Servette FC", "Genève"),
            ("FC Lugano", "Lugano"),
            ("FC St. Gallen 1879", "St. Gallen"),
            ("FC Luzern", "Luzern"),
            ("FC Sion", "Sion"),
            ("Neuchâtel Xamax FCS", "Neuchâtel"),
            ("FC Thun", "Thun"),
            ("Yverdon-Sport FC", "Yverdon-les-Bains"),
            ("FC Winterthur", "Winterthur"),
            ("FC Lausanne-Sport", "Lausanne"),
            ("FC Aarau", "Aarau"),
            ("FC Schaffhausen", "Schaffhausen"),
        ),
    ),
    AssociationTemplate(
        name="International Friendship Football Union",
        country=None,
        utc_offset_minutes=0,
        calendar_year=False,
        venue_pattern="{city} Arena",
        competitions=(
            _c("Intercontinental Friendship Cup", "", "cup"),
            _c("World Youth Invitational", " U19", "league"),
            _c("Women's Champions Trophy", " Women", "league"),
            _c("Preseason Friendlies", "", "friendly"),
        ),
        clubs=(
            ("Sporting Clube de Portugal", "Lisboa"),
            ("浦和レッドダイヤモンズ", "さいたま"),
            ("نادي الهلال", "الرياض"),
            ("Ölands BK", "Borgholm"),
            ("Queen's Park FC", "Glasgow"),
            ("Club Atlético de Madrid", "Madrid"),
            ("Borussia Mönchengladbach", "Mönchengladbach"),
            ("Fenerbahçe SK", "İstanbul"),
            ("Ολυμπιακός Σ.Φ.Π.", "Πειραιάς"),
            ("ПФК ЦСКА София", "София"),
            ('Club "Los Andes" de Mendoza', "Mendoza"),
            ("Brighton & Hove Albion FC", "Brighton"),
            ("Śląsk Wrocław", "Wrocław"),
            ("Ferencvárosi TC", "Budapest"),
            ("King's Lynn Town FC", "King's Lynn"),
            ("AS Saint-Étienne", "Saint-Étienne"),
        ),
    ),
    AssociationTemplate(
        name="Confederação Brasileira de Futebol",
        country="Brazil",
        utc_offset_minutes=-180,
        calendar_year=True,
        venue_pattern="Estádio Municipal de {city}",
        competitions=(
            _c("Campeonato Brasileiro Série A", "", "league"),
            _c("Copa do Brasil", "", "cup"),
            _c("Brasileirão Feminino", " Feminino", "league"),
            _c("Campeonato Brasileiro Sub-20", " Sub-20", "league"),
        ),
        clubs=(
            ("São Paulo FC", "São Paulo"),
            ("Grêmio Foot-Ball Porto Alegrense", "Porto Alegre"),
            ("Sport Club Corinthians Paulista", "São Paulo"),
            ("Clube de Regatas do Flamengo", "Rio de Janeiro"),
            ("Fluminense FC", "Rio de Janeiro"),
            ("SE Palmeiras", "São Paulo"),
            ("Clube Atlético Mineiro", "Belo Horizonte"),
            ("Cruzeiro EC", "Belo Horizonte"),
            ("EC Bahia", "Salvador"),
            ("Ceará SC", "Fortaleza"),
            ("Goiás EC", "Goiânia"),
            ("Avaí FC", "Florianópolis"),
            ("Sport Club do Recife", "Recife"),
            ("Paraná Clube", "Curitiba"),
        ),
    ),
    AssociationTemplate(
        name="The Football Association",
        country="England",
        utc_offset_minutes=0,
        calendar_year=False,
        venue_pattern="{city} Community Stadium",
        competitions=(
            _c("Premier Division", "", "league"),
            _c("FA Challenge Cup", "", "cup"),
            _c("Women's Super League", " Women", "league"),
            _c("Professional Development League", " U21", "league"),
        ),
        clubs=(
            ("Arsenal FC", "London"),
            ("Aston Villa FC", "Birmingham"),
            ("Burnley FC", "Burnley"),
            ("Crystal Palace FC", "London"),
            ("Everton FC", "Liverpool"),
            ("Leeds United FC", "Leeds"),
            ("Leicester City FC", "Leicester"),
            ("Newcastle United FC", "Newcastle upon Tyne"),
            ("Sheffield United FC", "Sheffield"),
            ("Southampton FC", "Southampton"),
            ("Tottenham Hotspur FC", "London"),
            ("West Bromwich Albion FC", "West Bromwich"),
            ("Wolverhampton Wanderers FC", "Wolverhampton"),
            ("Bishop's Stortford FC", "Bishop's Stortford"),
        ),
    ),
    AssociationTemplate(
        name="Deutscher Fußball-Bund",
        country="Germany",
        utc_offset_minutes=60,
        calendar_year=False,
        venue_pattern="Stadion {city}",
        competitions=(
            _c("Oberliga Süd", "", "league"),
            _c("DFB-Pokal der Amateure", "", "cup"),
            _c("Frauen-Bundesliga", " Frauen", "league"),
            _c("A-Junioren-Bundesliga", " U19", "league"),
        ),
        clubs=(
            ("FC Bayern München", "München"),
            ("1. FC Köln", "Köln"),
            ("Fortuna Düsseldorf", "Düsseldorf"),
            ("SpVgg Greuther Fürth", "Fürth"),
            ("TSG 1899 Hoffenheim", "Sinsheim"),
            ("1. FC Union Berlin", "Berlin"),
            ("Eintracht Frankfurt", "Frankfurt am Main"),
            ("SV Werder Bremen", "Bremen"),
            ("VfB Stuttgart", "Stuttgart"),
            ("SC Freiburg", "Freiburg im Breisgau"),
            ("FC St. Pauli", "Hamburg"),
            ("1. FSV Mainz 05", "Mainz"),
            ("Arminia Bielefeld", "Bielefeld"),
            ("FC Schalke 04", "Gelsenkirchen"),
        ),
    ),
    AssociationTemplate(
        name="Real Federación Española de Fútbol",
        country="Spain",
        utc_offset_minutes=60,
        calendar_year=False,
        venue_pattern="Estadio Municipal de {city}",
        competitions=(
            _c("Primera División RFEF", "", "league"),
            _c("Copa del Rey", "", "cup"),
            _c("Liga F", " Femenino", "league"),
            _c("División de Honor Juvenil", " Juvenil A", "league"),
        ),
        clubs=(
            ("Real Sociedad de Fútbol", "San Sebastián"),
            ("Real Betis Balompié", "Sevilla"),
            ("Deportivo Alavés", "Vitoria-Gasteiz"),
            ("CD Leganés", "Leganés"),
            ("Cádiz CF", "Cádiz"),
            ("RC Celta de Vigo", "Vigo"),
            ("Athletic Club", "Bilbao"),
            ("Sevilla FC", "Sevilla"),
            ("Málaga CF", "Málaga"),
            ("Real Oviedo", "Oviedo"),
            ("Córdoba CF", "Córdoba"),
            ("Granada CF", "Granada"),
            ("UD Almería", "Almería"),
            ("CA Osasuna", "Pamplona"),
        ),
    ),
    AssociationTemplate(
        name="日本サッカー協会",
        country="Japan",
        utc_offset_minutes=540,
        calendar_year=True,
        venue_pattern="{city}スタジアム",
        competitions=(
            _c("J1リーグ", "", "league"),
            _c("天皇杯", "", "cup"),
            _c("WEリーグ", " レディース", "league"),
            _c("Jリーグ U-21", " U-21", "league"),
        ),
        clubs=(
            ("鹿島アントラーズ", "鹿嶋"),
            ("横浜F・マリノス", "横浜"),
            ("川崎フロンターレ", "川崎"),
            ("ガンバ大阪", "吹田"),
            ("セレッソ大阪", "大阪"),
            ("名古屋グランパス", "名古屋"),
            ("サンフレッチェ広島", "広島"),
            ("柏レイソル", "柏"),
            ("FC東京", "東京"),
            ("清水エスパルス", "静岡"),
            ("ヴィッセル神戸", "神戸"),
            # U+20BB7: a real-world surname kanji outside the BMP (4 bytes in UTF-8).
            ("𠮷田サッカークラブ", "𠮷田"),
        ),
    ),
    AssociationTemplate(
        name="Svenska Fotbollförbundet",
        country="Sweden",
        utc_offset_minutes=60,
        calendar_year=True,
        venue_pattern="{city} Idrottsplats",
        competitions=(
            _c("Allsvenskan", "", "league"),
            _c("Svenska Cupen", "", "cup"),
            _c("Damallsvenskan", " Dam", "league"),
            _c("U21-Allsvenskan", " U21", "league"),
        ),
        clubs=(
            ("Malmö FF", "Malmö"),
            ("AIK", "Solna"),
            ("Djurgårdens IF", "Stockholm"),
            ("IFK Göteborg", "Göteborg"),
            ("Hammarby IF", "Stockholm"),
            ("Örebro SK", "Örebro"),
            ("Östers IF", "Växjö"),
            ("Västerås SK", "Västerås"),
            ("IFK Norrköping", "Norrköping"),
            ("Halmstads BK", "Halmstad"),
            ("Mjällby AIF", "Hällevik"),
            ("Åtvidabergs FF", "Åtvidaberg"),
        ),
    ),
    AssociationTemplate(
        name="Federação Portuguesa de Futebol",
        country="Portugal",
        utc_offset_minutes=0,
        calendar_year=False,
        venue_pattern="Estádio Municipal de {city}",
        competitions=(
            _c("Primeira Liga", "", "league"),
            _c("Taça de Portugal", "", "cup"),
            _c("Liga BPI", " Feminino", "league"),
            _c("Liga Revelação Sub-23", " Sub-23", "league"),
        ),
        clubs=(
            ("Sport Lisboa e Benfica", "Lisboa"),
            ("Futebol Clube do Porto", "Porto"),
            ("Sporting Clube de Braga", "Braga"),
            ("Vitória Sport Clube", "Guimarães"),
            ("Boavista Futebol Clube", "Porto"),
            ("Clube Desportivo Nacional", "Funchal"),
            ("Gil Vicente FC", "Barcelos"),
            ("Rio Ave FC", "Vila do Conde"),
            ("Moreirense FC", "Moreira de Cónegos"),
            ("FC Famalicão", "Vila Nova de Famalicão"),
            ("GD Estoril Praia", "Estoril"),
            ("CD Santa Clara", "Ponta Delgada"),
        ),
    ),
    AssociationTemplate(
        name="الاتحاد السعودي لكرة القدم",
        country="Saudi Arabia",
        utc_offset_minutes=180,
        calendar_year=False,
        venue_pattern="ملعب {city}",
        competitions=(
            _c("دوري روشن السعودي", "", "league"),
            _c("كأس الملك", "", "cup"),
            _c("الدوري السعودي الممتاز للسيدات", " للسيدات", "league"),
            _c("دوري الشباب", " تحت 21", "league"),
        ),
        clubs=(
            ("نادي النصر", "الرياض"),
            ("نادي الاتحاد", "جدة"),
            ("نادي الأهلي", "جدة"),
            ("نادي الشباب", "الرياض"),
            ("نادي الاتفاق", "الدمام"),
            ("نادي التعاون", "بريدة"),
            ("نادي الفتح", "الأحساء"),
            ("نادي الرائد", "بريدة"),
            ("نادي الفيصلي", "حرمة"),
            ("نادي الخليج", "سيهات"),
            ("نادي الفيحاء", "المجمعة"),
            ("نادي القادسية", "الخبر"),
        ),
    ),
)

# Patterns for synthesised club names once a pool runs dry (large benchmark datasets).
CLUB_NAME_PATTERNS: tuple[str, ...] = (
    "FC {city}",
    "{city} United",
    "Sporting {city}",
    "SV {city}",
    "Atlético {city}",
    "{city} BK",
    "Dynamo {city}",
    "Union {city}",
    "Racing Club de {city}",
    "{city} Wanderers",
    "Olympique de {city}",
    "{city} City",
)

# Names for teams that represent no club (selections, invitational sides).
CLUBLESS_TEAM_NAMES: tuple[str, ...] = (
    "Regional Select XI",
    "Selección Invitada",
    "Invitational XI",
    "Auswahl Nordwest",
    "Combined Universities",
    "Sélection Régionale",
)
