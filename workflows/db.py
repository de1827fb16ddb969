"""Database engine and sessions: SQLite file by default, PostgreSQL through DATABASE_URL."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = f"sqlite:///{Path.cwd() / 'instance' / 'grants.db'}"


def database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_URL)


def make_engine(url: str | None = None) -> Engine:
    """hide_parameters: an error or log line never carries the values (names, contacts) of a statement."""
    url = url or database_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # How long a writer waits for another to finish before giving up (a lost race: 409).
        timeout = float(os.environ.get("GRANTS_SQLITE_BUSY_SECONDS", "15"))
        engine = create_engine(url, connect_args={"timeout": timeout}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "head")


def in_transaction(factory: sessionmaker[Session], action):
    """Run `action(session)` as one unit of work: commit on success, roll back on any error.
    Commands and the timer sweep use it; web requests commit in webapp/database.py."""
    with factory() as session:
        try:
            result = action(session)
            session.commit()
            return result
        except Exception:
            session.rollback()
            raise
