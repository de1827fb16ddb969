"""The Alembic migrations build exactly the schema the models describe, on both backends."""
from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from workflows import catalogue, db
from workflows.models import Base
from workflows.process import textsearch


def test_migrated_schema_matches_the_models(database_url):
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _not_search_object})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def _not_search_object(name, type_, _parents) -> bool:
    """The search indexes of 0005_search are not in the models (tests/engine/test_text_search.py)."""
    return not textsearch.is_search_object(name, type_)


def test_migrated_check_constraints_accept_exactly_the_catalogues_codes(database_url):
    """The migrations write their code lists out (history does not follow the catalogue), so a
    code added to or removed from workflows/catalogue.py without a migration fails here."""
    engine = db.make_engine(database_url)
    try:
        found = {}
        inspector = inspect(engine)
        for table in {t for t, _column, _codes in catalogue.CHECKS.values()}:
            for check in inspector.get_check_constraints(table):
                if check["name"] in catalogue.CHECKS:
                    found[check["name"]] = set(re.findall(r"'([^']*)'", check["sqltext"]))
        expected = {name: {str(code) for code in codes} for name, (_t, _c, codes) in catalogue.CHECKS.items()}
        assert found == expected
    finally:
        engine.dispose()
