"""`pipeworks serve`'s keys and cursors: bad values are one clear line (never the key),
keys are found by digest, a cursor round-trips and a forged one is a 400."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from pipeworks.web_settings import find_key, parse_api_keys
from starters.web.cursor import decode_cursor, encode_cursor
from starters.web.problems import ApiProblem

SECRET = "s3cret-key-0123456789"


@pytest.mark.parametrize(("value", "words"), [
    (f"ada:admin:{SECRET}", "role must be viewer or operator"),
    ("ada:viewer:short", "at least 16 characters"),
    (f"a da:viewer:{SECRET}", "expected name:role:key"),
    (f"ada:viewer:{SECRET},ada:operator:{SECRET}x", "used twice"),
    (f"ada:viewer:{SECRET} x", "without spaces"),
])
def test_a_bad_key_list_names_the_entry_and_never_the_key(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as raised:
        parse_api_keys(value)
    assert SECRET not in str(raised.value)


def test_keys_are_found_by_digest() -> None:
    keys = parse_api_keys(f"ada:viewer:{SECRET}, ops:operator:{SECRET}-ops ,")
    assert [(k.name, k.role) for k in keys] == [("ada", "viewer"), ("ops", "operator")]
    found = find_key(keys, f"{SECRET}-ops")
    assert found is not None and found.name == "ops"
    assert find_key(keys, SECRET[:-1]) is None and find_key(keys, "") is None
    assert not keys[0].can("operator") and keys[1].can("viewer")


def test_serve_refuses_a_bad_key_setting_with_exit_2_and_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "starters.cli", "serve"], capture_output=True, text=True,
        env={"PIPEWORKS_API_KEYS": f"ada:root:{SECRET}", "PATH": "/usr/bin:/bin",
             "PIPEWORKS_DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "pipeworks: PIPEWORKS_API_KEYS: entry 1 (ada): role must be viewer or operator"]
    assert SECRET not in result.stderr + result.stdout


def test_a_cursor_round_trips_and_a_forged_one_is_a_400() -> None:
    when = datetime(2026, 12, 5, 6, 30, tzinfo=UTC)
    assert decode_cursor(encode_cursor([when, "run-1"]), (datetime, str)) == [when, "run-1"]
    for forged in ("not base64!", encode_cursor(["x"]), encode_cursor([1, 2]),
                   encode_cursor([True, "r"])):
        with pytest.raises(ApiProblem) as raised:
            decode_cursor(forged, (int, str))
        assert raised.value.status == 400
