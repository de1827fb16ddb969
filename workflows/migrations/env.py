"""Alembic environment: runs migrations on the engine the caller hands in (or DATABASE_URL)."""
from alembic import context

from workflows.db import make_engine
from workflows.models import Base
from workflows.process.textsearch import is_search_object

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.driver_connection
        assert raw is not None  # a live connection has its DBAPI connection
        if sqlite:  # batch mode copies a table and drops the old one: SQLite's foreign keys would
            raw.execute("PRAGMA foreign_keys=OFF")  # refuse that once other rows reference it
        try:
            with connection.begin():
                context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=sqlite,
                                  # 0005_search's FTS5 tables and trigram indexes are not in the models
                                  include_name=lambda name, type_, _parents: not is_search_object(name, type_))
                with context.begin_transaction():
                    context.run_migrations()
                if sqlite:  # ... so check every reference by hand before the migration commits
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
