"""Database engine and sessions: SQLite file by default, PostgreSQL through DATABASE_URL."""
from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, Pool

DEFAULT_URL = f"sqlite:///{Path.cwd() / 'instance' / 'grants.db'}"


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_URL)


def make_engine(url: str | None = None) -> Engine:
    """hide_parameters: an error or log line never carries the values (names, contacts) of a statement."""
    url = url or database_url()
    if url.startswith("sqlite:///"):
        return _sqlite_engine(url)
    # No JIT: every statement here is short, and PostgreSQL compiles one whose estimated cost
    # passes `jit_above_cost` (an officer's task search at 100k: ~100 ms of compiling for a
    # 40 ms statement, bench/README).
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args={"options": "-c jit=off"})


def _sqlite_engine(url: str) -> Engine:
    """SQLite with two guarantees the driver's defaults do not give:
    - a connection never serves two threads: each thread keeps its own idle connections
      (`ThreadOwnedPool`: a session checks one out exclusively, so two sessions never share one)
      and `check_same_thread` is on, so a stray cross-thread use fails loudly instead of
      corrupting sqlite3's statement cache (the SIGSEGV / `free(): invalid pointer` of issue 8);
    - real transactions: pysqlite's own BEGIN handling is off (it reads outside any
      transaction), `BEGIN` is sent on every begin, `BEGIN IMMEDIATE` where `begin_write` asks."""
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # How long a writer waits for another to finish before giving up (a lost race: 409).
    timeout = float(os.environ.get("GRANTS_SQLITE_BUSY_SECONDS", "15"))
    pool = NullPool if os.environ.get("GRANTS_SQLITE_NULLPOOL") else ThreadOwnedPool
    engine = create_engine(url, poolclass=pool, connect_args={"timeout": timeout, "check_same_thread": True},
                           hide_parameters=True)
    keeper = _WalKeeper(url.removeprefix("sqlite:///"), timeout)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "connect", keeper.ensure_open)
    event.listen(engine, "engine_disposed", keeper.close)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


T = TypeVar("T")


class ThreadOwnedPool(Pool):
    """A connection is reused only by the thread that opened it, and by one session at a time:
    each thread keeps up to `IDLE` idle connections of its own (a second session open at once in
    the same thread gets another one). This saves what a connection per session cost each
    request: open, the pragmas, the close (issue 10: ~a third of a `GET /api/v1/tasks`).
    An idle connection of a thread that has ended is closed when that thread's storage goes;
    `dispose` closes the calling thread's (SQLite refuses a close from another thread)."""

    IDLE = 2

    def __init__(self, creator: Any, **kw: Any):
        super().__init__(creator, **kw)
        self._local = threading.local()

    def _idle(self) -> list[ConnectionPoolEntry]:
        idle: list[ConnectionPoolEntry] | None = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = []
        return idle

    def _do_get(self) -> ConnectionPoolEntry:
        idle = self._idle()
        if idle:
            return idle.pop()
        record = self._create_connection()
        record.info["grants_thread"] = threading.get_ident()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if record.info.get("grants_thread") != threading.get_ident():
            return  # returned from elsewhere (a session collected by another thread): never reused
        idle = self._idle()
        if len(idle) < self.IDLE:
            idle.append(record)
        else:
            record.close()

    def dispose(self) -> None:
        idle = self._idle()
        while idle:
            idle.pop().close()

    def recreate(self) -> ThreadOwnedPool:
        return self.__class__(self._creator, recycle=self._recycle, echo=self.echo, pre_ping=self._pre_ping,
                              logging_name=self._orig_logging_name, reset_on_return=self._reset_on_return,
                              _dispatch=self.dispatch, dialect=self._dialect)

    def status(self) -> str:
        return f"ThreadOwnedPool id:{id(self)} idle in this thread: {len(self._idle())}"


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None  # we send BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _WalKeeper:
    """One idle connection held open beside the per-session ones. Without it every request that
    closes the last connection makes SQLite checkpoint the WAL into the database, fsync and
    delete it, and the next request recreates it: ~half the time of a write request (issue 10).
    It only ever reads one row once and never serves a session, so no connection is shared."""

    def __init__(self, path: str, timeout: float):
        self.path, self.timeout = path, timeout
        self.conn: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def ensure_open(self, _dbapi_connection: object, _record: object) -> None:
        if self.conn is not None or self.path in ("", ":memory:"):
            return
        with self.lock:
            if self.conn is None:
                conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # attaches to the WAL index
                self.conn = conn

    def close(self, _engine: object = None) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


def _sqlite_begin(conn: Connection) -> None:
    """IMMEDIATE takes the write lock up front: two writers queue instead of both reading the
    same snapshot and one losing its update (or its audit row id) at commit."""
    mode = "IMMEDIATE" if conn.get_execution_options().get("grants_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def begin_write(session: Session) -> Session:
    """Start the session's transaction as a writer: on SQLite it holds the write lock from the
    first statement (writers run one after another); PostgreSQL locks rows as it goes. Call it
    before the first statement; later calls in the same transaction change nothing."""
    if not session.in_transaction():
        session.connection(execution_options={"grants_write": True})
    return session


# Work a session does just before its transaction commits (workflows.evidence.audit appends the events it
# queued): `WorkSession.commit` runs it even while a savepoint is open; a `before_commit` listener
# of the hook's own module covers a commit that bypasses `Session.commit`.
before_commit_hooks: list[Callable[[Session], None]] = []


class WorkSession(Session):
    def commit(self) -> None:
        for hook in before_commit_hooks:
            hook(self)
        super().commit()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=WorkSession, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")


def in_transaction(factory: sessionmaker[Session], action: Callable[[Session], T]) -> T:
    """Run `action(session)` as one unit of work: commit on success, roll back on any error.
    Commands and the timer sweep use it; web requests commit in webapp/database.py."""
    with factory() as session:
        try:
            begin_write(session)
            result = action(session)
            session.commit()
            return result
        except Exception:
            session.rollback()
            raise
