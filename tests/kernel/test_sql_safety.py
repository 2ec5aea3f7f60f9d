"""All SQL is parameterized: no query text is built from values. Queries built from
identifiers (table and column names of a TableSpec, checked against a pattern when the
spec is made) live in the allowed modules only; ruff's S608 checks the same in lint."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeworks", "activities", "workflows", "workers", "starters", "devstack",
            "benchmarks")
QUERY_METHODS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_to_table",
                 "prepare", "cursor"}
# Modules that build query text from identifiers only, and where those come from.
ALLOWED = {
    "pipeworks/merge.py": "table and column names of a TableSpec, pattern-checked",
    "starters/sports/demo.py": "the constant SUMMARY_TABLES",
    "benchmarks/common.py": "the constant SPORTS_TABLES",
    "benchmarks/run.py": "the constant PIPELINE_TABLES",
    "benchmarks/yardstick_plain.py": "the benchmark's own table specs",
    "benchmarks/f1_common.py": "the F1 benchmark's constant table names",
    "benchmarks/f1_season.py": "table names from the catalog (quoted by format('%I')) and"
                               " the pipeline's TableSpecs",
    "benchmarks/yardstick_f1.py": "the F1 yardstick's own table specs",
    "benchmarks/btc_reconcile.py": "the constant names of the btc and pipeline tables",
}


def built_queries(path: Path) -> list[tuple[int, str]]:
    """Query calls whose SQL is an f-string, a concatenation or a %/format() result."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERY_METHODS and node.args):
            continue
        sql = node.args[0]
        if isinstance(sql, ast.JoinedStr) and any(
                isinstance(v, ast.FormattedValue) for v in sql.values):
            found.append((node.lineno, "f-string"))
        elif isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Add | ast.Mod):
            found.append((node.lineno, "concatenation or % formatting"))
        elif (isinstance(sql, ast.Call) and isinstance(sql.func, ast.Attribute)
              and sql.func.attr == "format"):
            found.append((node.lineno, ".format()"))
    return found


def test_no_query_is_built_from_values_outside_the_identifier_builders() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ALLOWED:
                continue
            offenders += [f"{relative}:{line}: {how}" for line, how in built_queries(path)]
    assert offenders == []


def test_the_check_finds_a_built_query(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('async def f(conn, name):\n'
                   '    await conn.execute(f"DELETE FROM t WHERE name = \'{name}\'")\n'
                   '    await conn.fetch("SELECT * FROM t WHERE id = " + name)\n'
                   '    await conn.fetchval("SELECT %s" % name)\n')
    assert [how for _, how in built_queries(bad)] == [
        "f-string", "concatenation or % formatting", "concatenation or % formatting"]
