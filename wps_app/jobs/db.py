"""Database access of the job store: engines and serialised transactions.

Two databases are supported, the ones PyWPS's [logging] database names in practice: a file
SQLite (one host, several processes) and PostgreSQL (several hosts). A transaction that
reads counts and then writes on them (admission, draining the queue, migrations) must not
interleave with another such transaction in any process: on SQLite it starts with
BEGIN IMMEDIATE (the database's write lock, taken before the first read); on PostgreSQL it
takes a transaction-level advisory lock, released at commit or rollback.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.pool import NullPool, StaticPool

# seconds an SQLite connection waits for another process's write lock before failing
SQLITE_BUSY_TIMEOUT_S = 30.0
_BEGIN_MODE = "edge_sqlite_begin"


def create_engine(url: str) -> Engine:
    """An engine for the job store at `url` (SQLAlchemy URL).

    No connection is pooled (as PyWPS does): async jobs run in forked processes, which
    must never share a parent's connection.

    Parameters
    ----------
    url : str
        ``sqlite:///<absolute path>`` or ``postgresql+psycopg2://user@host:port/db``.

    Returns
    -------
    sqlalchemy.Engine
    """
    if url.startswith("sqlite"):
        memory = ":memory:" in url or url.rstrip("/") == "sqlite:"
        engine = sqlalchemy.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            poolclass=StaticPool if memory else NullPool,
        )
        _take_sqlite_transactions(engine)
        return engine
    return sqlalchemy.create_engine(url, poolclass=NullPool)


def _take_sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, start transactions, so that a serialised one
    can begin with BEGIN IMMEDIATE (the SQLAlchemy documentation's pysqlite recipe)."""

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_MODE, '')}")


def lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key for `name` (the same in every process)."""
    return zlib.crc32(f"wps_app.jobs:{name}".encode())


@contextmanager
def serialised(engine: Engine, name: str) -> Iterator[Connection]:
    """A transaction that runs alone among serialised transactions of the same `name`
    (on SQLite: alone among all writers), committed when the block ends.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    name : str
        What is serialised, e.g. "admission" or "schema".

    Yields
    ------
    sqlalchemy.Connection
        In an open transaction that holds the lock.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
            yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed when the block ends. On SQLite it takes the write
    lock first (BEGIN IMMEDIATE), so that it waits for other writers instead of failing
    with "database is locked" when it would need to upgrade a read lock."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        with conn.begin():
            yield conn
