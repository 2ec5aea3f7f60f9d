"""Postgres pool and versioned migrations."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from pipeworks.dsn import describe_location
from pipeworks.logging import redact

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A plain connection or one borrowed from a pool: every query helper takes both.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Connection: TypeAlias = Any

# What failing to reach or use a database raises.
CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

# Serializes concurrent migrators (several workers starting at once).
_MIGRATION_LOCK_KEY = 0x70697065  # "pipe"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing beyond what asyncpg
    always does (roll back an open transaction, drop listeners). pipeworks leaves no
    session state behind: locks are `_xact_` ones, settings `SET LOCAL`-like, no LISTEN,
    no cursors or temp tables. asyncpg's default reset would send `pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL` on every release: one more round trip per acquire,
    a measurable share of a sync's CPU (benchmarks/README.md)."""


async def create_pool(dsn: str, *, max_size: int = 8) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, init=_init_connection, command_timeout=300,
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


KERNEL_MIGRATIONS = ("pipeworks", "pipeworks.migrations")


def migration_files(package: str = KERNEL_MIGRATIONS[1]) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration bundled in `package`, in order."""
    found = []
    for entry in resources.files(package).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migration_sources() -> list[tuple[str, str]]:
    """(source, package): the kernel's migrations first, then each registered pipeline's."""
    from pipeworks import registry  # the registry imports this module's users

    return [KERNEL_MIGRATIONS, *registry.migration_packages()]


async def migrate(conn: Connection, sources: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply the migrations not yet applied; returns their names. Safe to run concurrently.

    Versions count per source (the kernel, each pipeline), so pipelines number their
    migrations on their own."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS pipeline;"
            "CREATE TABLE IF NOT EXISTS pipeline.schema_migrations ("
            " source text NOT NULL DEFAULT 'pipeworks', version int NOT NULL,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (source, version))"
        )
        # Databases from before per-source versions: every row there is the kernel's.
        has_source = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
            " 'pipeline' AND table_name = 'schema_migrations' AND column_name = 'source')")
        if not has_source:
            await conn.execute(
                "ALTER TABLE pipeline.schema_migrations"
                " ADD COLUMN source text NOT NULL DEFAULT 'pipeworks'")
        primary_key = await conn.fetchval(
            "SELECT array_length(conkey, 1) FROM pg_constraint"
            " WHERE conrelid = 'pipeline.schema_migrations'::regclass AND contype = 'p'")
        if primary_key == 1:
            await conn.execute(
                "ALTER TABLE pipeline.schema_migrations DROP CONSTRAINT schema_migrations_pkey;"
                "ALTER TABLE pipeline.schema_migrations ADD PRIMARY KEY (source, version)")
        done = {(r["source"], r["version"]) for r in await conn.fetch(
            "SELECT source, version FROM pipeline.schema_migrations")}
        for source, package in sources if sources is not None else migration_sources():
            for version, name, sql in migration_files(package):
                if (source, version) in done:
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO pipeline.schema_migrations (source, version, name)"
                    " VALUES ($1, $2, $3)", source, version, name)
                applied_now.append(name if source == KERNEL_MIGRATIONS[0] else f"{source}/{name}")
    return applied_now


async def migrate_dsn(dsn: str) -> list[str]:
    conn = await connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def unreachable(dsn: str, err: BaseException) -> str:
    """One line naming where the DSN points (host:port or socket path) only: it may hold a
    password."""
    where = describe_location(dsn)
    reason = redact(str(err)) or type(err).__name__
    return f"cannot use Postgres at {where} (PIPEWORKS_DATABASE_URL): {reason}"
