"""Substring search by index (issue 10): `ILIKE '%text%'` on application numbers and titles and on
people's names and usernames read every row of the person's scope (SQLite) or the whole table
(PostgreSQL). The predicate stays; these indexes answer it for three characters or more
(workflows/process/textsearch.py):
- PostgreSQL: `pg_trgm` GIN indexes. The extension is created if missing; a role that may not
  create it leaves the search on its old plan (one warning in the log), never a failed migration.
- SQLite: FTS5 tables with the `trigram` tokenizer (SQLite ≥ 3.34) over the rows (external
  content: only the index is stored), kept in step by triggers; built from the existing rows here.
  A later batch migration that recreates `applications` or `users` drops their triggers:
  tests/engine/test_text_search.py fails then.

Revision ID: 0005_search
Revises: 0004_consts
"""
import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0005_search"
down_revision = "0004_consts"
branch_labels = None
depends_on = None

log = logging.getLogger("grants.migrations")  # not under "alembic", whose NullHandler would swallow it

# table → (its FTS5 table on SQLite, the searched columns); written out here, not imported
SEARCHED = {"applications": ("applications_search", ("number", "title")),
            "users": ("users_search", ("name", "username"))}


def _trgm_index(table: str, column: str) -> str:
    return f"ix_{table}_{column}_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def _sqlite_upgrade() -> None:
    for table, (fts, columns) in SEARCHED.items():
        names = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
        op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', content_rowid='id', "
                   "tokenize='trigram')")
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
        op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
                   f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new}); END")
        op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
                   f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); END")
        op.execute(f"CREATE TRIGGER {fts}_update AFTER UPDATE OF id, {names} ON {table} BEGIN "
                   f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); "
                   f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new}); END")


def _postgres_upgrade() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():  # a refused CREATE EXTENSION must not abort the migration's transaction
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as error:
        log.warning("0005_search: pg_trgm could not be created (%s); substring search keeps its "
                    "unindexed plan. To index it, a superuser runs CREATE EXTENSION pg_trgm and the "
                    "CREATE INDEX … USING gin (… gin_trgm_ops) statements of this migration.",
                    type(error.orig).__name__)
        return
    for table, (_fts, columns) in SEARCHED.items():
        for column in columns:
            op.execute(f"CREATE INDEX IF NOT EXISTS {_trgm_index(table, column)} ON {table} "
                       f"USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for _table, (fts, _columns) in SEARCHED.items():
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
        return
    for table, (_fts, columns) in SEARCHED.items():  # the extension stays: others may use it
        for column in columns:
            op.execute(f"DROP INDEX IF EXISTS {_trgm_index(table, column)}")
