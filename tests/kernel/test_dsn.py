"""check_postgres_dsn and describe_location on their own: no servers, only parsing."""

from __future__ import annotations

import os

import pytest
from asyncpg import connect_utils

from pipeworks import dsn as dsn_module
from pipeworks.db import unreachable
from pipeworks.dsn import check_postgres_dsn, describe_location

PASSWORD = "s3cr%40t!pw"  # percent-encoded "@", so the raw and decoded spellings differ
DECODED_PASSWORD = "s3cr@t!pw"


@pytest.fixture(autouse=True)
def _no_libpq_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # asyncpg, like libpq, fills gaps from PGHOST, PGPORT, PGSSLMODE...; keep the shell's out.
    for name in list(os.environ):
        if name.startswith("PG"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:5432/pipeworks",
    "postgresql://db.example.com/pipeworks",
    "postgresql:///db?host=/run/postgresql",
    "postgresql://user@/db?host=/tmp",
    "postgresql://user@/db?host=/tmp&port=6543",
    "postgresql://%2Frun%2Fpostgresql/db",
    "postgresql:///db",
    "postgresql://",
    f"postgres://u:{PASSWORD}@h:5/db?sslmode=require",
    "postgresql://h1:5432,h2:5433/db",
    "postgresql://h1,h2/db?target_session_attrs=read-write",
    "postgresql://[::1]:5432/db",
    "postgresql:///db?host=h1,h2&port=5432,5433",
    "postgresql://h/db?application_name=pipeworks&sslmode=disable",
])
def test_accepts_what_asyncpg_can_use(url: str) -> None:
    assert check_postgres_dsn(url) == url


@pytest.mark.parametrize(("url", "expected"), [
    ("http://h/db", "not a Postgres URL"),
    ("garbage", "not a Postgres URL"),
    ("", "not a Postgres URL"),
    ("postgresql:db", "not a Postgres URL"),
    ("host=/tmp dbname=db", "not a Postgres URL"),
    ("postgresql://h:notaport/db", "port is not a number"),
    ("postgresql:///db?host=/tmp&port=x", "port is not a number"),
    ("postgresql://h:99999/db", "port 99999 is out of range"),
    ("postgresql://h:0/db", "port 0 is out of range"),
    ("postgresql://h1,/db", "empty host name"),
    ("postgresql://:5433/db", "empty host name"),
    ("postgresql:///db?host=run/postgresql", "absolute path"),
    ("postgresql://[::1/db", "Invalid IPv6 URL"),
    ("postgresql://h1:1,h2:2/db?host=/tmp", "not both"),
    ("postgresql://h/db?port=5433", "not both"),
    ("postgresql://h/db?sslmode=sometimes", "sslmode"),
    ("postgresql://h/db?sslmode=disable&sslnegotiation=direct", "direct TLS"),
    ("postgresql://h/db?gsslib=kerberos", "gsslib"),
    ("postgresql://h/db?a=1&b", "malformed query string"),
    ("postgresql://h/db?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
     "cannot load a file"),
])
def test_refuses_with_one_clear_line(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as caught:
        check_postgres_dsn(url)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(("not a Postgres URL", "not a usable Postgres URL: "))


@pytest.mark.parametrize("url", [
    f"postgresql://u:{PASSWORD}@h:notaport/db",
    f"postgresql://u:{PASSWORD}@h/db?sslmode=nope",
    f"postgresql://u:{PASSWORD}@[::1/db",
    f"postgresql://u:{PASSWORD}@h/db?port=1",
    f"postgresql://u:{DECODED_PASSWORD}@h/db",  # raw "@": asyncpg would take "t!pw@h" as host
    f"postgresql://u:{PASSWORD}@h:70000/db",
    f"postgresql://u@h/db?password={PASSWORD}&sslmode=nope",
    "postgresql://u@h/db?password=se&cret=1&sslmode=disable&leak",
    f"http://u:{PASSWORD}@h/db",
])
def test_messages_never_contain_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_postgres_dsn(url)
    message = str(caught.value)
    for secret in (PASSWORD, DECODED_PASSWORD, "s3cr", "t!pw", "cret"):
        assert secret not in message


@pytest.mark.parametrize(("url", "where"), [
    ("postgresql://postgres:pw@127.0.0.1:6543/pipeworks", "127.0.0.1:6543"),
    ("postgresql://db.example.com/pipeworks", "db.example.com:5432"),
    ("postgresql://[::1]:6000/db", "[::1]:6000"),
    ("postgresql:///db?host=/run/postgresql", "/run/postgresql/.s.PGSQL.5432"),
    ("postgresql://user:pw@/db?host=/tmp&port=6543", "/tmp/.s.PGSQL.6543"),
    ("postgresql://%2Fvar%2Frun%2Fpostgresql/db", "/var/run/postgresql/.s.PGSQL.5432"),
    ("postgresql://h1:5432,h2:5433/db", "h1:5432,h2:5433"),
    ("postgresql:///db?host=/tmp,h2&port=5432,5433", "/tmp/.s.PGSQL.5432,h2:5433"),
    # Without any host asyncpg tries its default socket directories, then localhost.
    ("postgresql:///db", "/run/postgresql/.s.PGSQL.5432,/var/run/postgresql/.s.PGSQL.5432,"
                         "/tmp/.s.PGSQL.5432,/private/tmp/.s.PGSQL.5432,localhost:5432"),
    # Only where it points, even when the URI itself would be refused for other reasons.
    ("postgresql://u:pw@h/db?sslmode=verify-full&sslrootcert=/nonexistent", "h:5432"),
    ("http://h/db", "an unparsable URL"),
    ("postgresql://h:notaport/db", "an unparsable URL"),
])
def test_describe_location(url: str, where: str) -> None:
    assert describe_location(url) == where


def test_describe_location_follows_pghost_like_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "/var/pg")
    monkeypatch.setenv("PGPORT", "7000")
    assert describe_location("postgresql:///db") == "/var/pg/.s.PGSQL.7000"


def test_unreachable_names_the_socket_not_localhost() -> None:
    message = unreachable("postgresql://app:hunter2@/db?host=/run/postgresql",
                          ConnectionRefusedError(111, "Connection refused"))
    assert message == ("cannot use Postgres at /run/postgresql/.s.PGSQL.5432 "
                       "(PIPEWORKS_DATABASE_URL): [Errno 111] Connection refused")
    message = unreachable("postgresql://app:hunter2@db:6543/x", TimeoutError())
    assert message == "cannot use Postgres at db:6543 (PIPEWORKS_DATABASE_URL): TimeoutError"
    assert "hunter2" not in message


def test_asyncpg_parser_is_still_the_one_this_module_was_written_for() -> None:
    # Guards the private asyncpg function: after an asyncpg upgrade this (and the cases above)
    # fail loudly rather than every URI being silently accepted.
    dsn_module._parser.cache_clear()
    assert dsn_module._parser() is not None


def test_a_vanished_asyncpg_parser_is_a_loud_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(connect_utils, dsn_module._PARSER_NAME)
    dsn_module._parser.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="must be updated"):
            check_postgres_dsn("postgresql://h/db")
        assert describe_location("postgresql://h/db") == "an unparsable URL"
    finally:
        monkeypatch.undo()
        dsn_module._parser.cache_clear()
    assert check_postgres_dsn("postgresql://h/db") == "postgresql://h/db"


def test_a_changed_asyncpg_signature_is_a_loud_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def renamed(*, dsn: str, hosts: object) -> object:
        raise AssertionError("must not be called")

    monkeypatch.setattr(connect_utils, dsn_module._PARSER_NAME, renamed)
    dsn_module._parser.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="changed its private"):
            check_postgres_dsn("postgresql://h/db")
    finally:
        monkeypatch.undo()
        dsn_module._parser.cache_clear()
