"""Substring search (`ILIKE '%text%'`) that an index can answer, for Chinese text too (no word
boundaries: users type 2–4 characters of a title or a name, or part of a number).

`contains(column, key, text)` is the same predicate as `column.ilike('%text%')` and picks the
same rows; what changes is how the database finds them once the text has at least
`MIN_INDEXED` characters (a trigram index cannot answer fewer):
- PostgreSQL renders the plain `ILIKE`; migration 0005_search adds `pg_trgm` GIN indexes on the
  searched columns, which the planner uses for it (and rechecks each row).
- SQLite renders `key IN (SELECT rowid FROM <fts> WHERE <fts> MATCH '{column} : "text"') AND
  lower(column) LIKE lower(:p)`: an FTS5 `trigram` table kept in step by triggers (0005_search)
  yields the candidates from its index alone, the plain predicate keeps exactly today's rows (the
  trigram table folds case for all of Unicode, `lower()` only for ASCII: its candidates are a
  superset).
Shorter texts keep the plain predicate: it is evaluated within the already narrowed visible set
(bench/README, "Substring search by index")."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, Table, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

MIN_INDEXED = 3  # pg_trgm and FTS5 trigram need three characters to use their index

# The SQLite FTS5 tables of migration 0005_search: searched table → its trigram table.
FTS_TABLES = {"applications": "applications_search", "users": "users_search"}


def pattern(text: str) -> str:
    """The searched text as typed, less LIKE's wildcards and its escape (they are dropped, not
    matched: what `_like` has always done)."""
    return text.replace("\\", "").replace("%", "").replace("_", "").strip()


class Contains(ColumnElement[bool]):
    """`column ILIKE '%text%'`, compiled per dialect (module docstring)."""

    inherit_cache = True
    type = Boolean()
    # SQLAlchemy's cache key: every part that changes the SQL or carries a value
    _traverse_internals = [  # noqa: RUF012  (SQLAlchemy declares it so on its own classes)
                           ("column", InternalTraversal.dp_clauseelement),
                           ("row_key", InternalTraversal.dp_clauseelement),
                           ("pattern", InternalTraversal.dp_clauseelement),
                           ("phrase", InternalTraversal.dp_clauseelement),
                           ("fts", InternalTraversal.dp_string),
                           ("indexed", InternalTraversal.dp_boolean)]

    def __init__(self, column: Any, key: Any, text: str):
        self.column = coercions.expect(roles.ExpressionElementRole, column)
        self.row_key = coercions.expect(roles.ExpressionElementRole, key)
        found = pattern(text)
        self.pattern = literal("%" + found + "%", String())
        self.indexed = len(found) >= MIN_INDEXED
        table = getattr(self.column, "table", None)
        while table is not None and not isinstance(table, Table):  # an alias: the table it names
            table = getattr(table, "element", None)
        self.fts = FTS_TABLES.get(table.name, "") if table is not None else ""
        # An FTS5 phrase in that column: with trigrams a substring, case folded (a superset of
        # the ILIKE); only `"` is special inside the quotes. MATCH reads the index alone, where
        # FTS5's own LIKE reads every candidate row back (1 s for 90,000 candidates at 100k).
        name = getattr(self.column, "name", "")
        self.phrase = literal(f'{{{name}}} : "' + found.replace('"', '""') + '"', String())


def contains(column: Any, key: Any, text: str) -> ColumnElement[bool]:
    """`column` holds `text` (case-insensitive for Latin letters); `key` is the row's integer
    primary key (the FTS table's rowid on SQLite)."""
    return Contains(column, key, text)


@compiles(Contains)
def _plain(element: Contains, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.column.ilike(element.pattern), **kw))


@compiles(Contains, "sqlite")
def _sqlite(element: Contains, compiler: SQLCompiler, **kw: Any) -> str:
    plain = _plain(element, compiler, **kw)
    fts = element.fts
    if not element.indexed or not fts:
        return plain
    key = compiler.process(element.row_key, **kw)
    phrase = compiler.process(element.phrase, **kw)
    return f"({key} IN (SELECT rowid FROM {fts} WHERE {fts} MATCH {phrase}) AND {plain})"


def is_search_object(name: str | None, type_: str) -> bool:
    """The FTS5 tables (and their shadow tables) and trigram indexes of migration 0005_search:
    not in the models (neither is a plain table or B-tree index), so schema comparisons skip them."""
    if not name:
        return False
    if type_ == "table":
        return any(name == fts or name.startswith(fts + "_") for fts in FTS_TABLES.values())
    return type_ == "index" and name.endswith("_trgm")
