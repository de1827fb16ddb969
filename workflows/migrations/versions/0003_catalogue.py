"""Catalogue: CHECK constraints on the coded columns (status, kind, role, notice kind, registry
state), generated from workflows/catalogue.py, so the database itself refuses a value no part of
the system knows. Batch mode re-creates the tables on SQLite (which cannot add a CHECK in place).

Revision ID: 0003_catalogue
Revises: 0003_scale
"""
from alembic import op

from workflows.catalogue import CHECKS, check_constraint

revision = "0003_catalogue"
down_revision = "0003_scale"
branch_labels = None
depends_on = None


def _tables() -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    found: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    for name, (table, column, codes) in CHECKS.items():
        found.setdefault(table, []).append((name, column, codes))
    return found


def upgrade() -> None:
    for table, checks in _tables().items():
        with op.batch_alter_table(table) as batch_op:
            for name, column, codes in checks:
                batch_op.create_check_constraint(name, check_constraint(column, codes))


def downgrade() -> None:
    for table, checks in _tables().items():
        with op.batch_alter_table(table) as batch_op:
            for name, _column, _codes in checks:
                batch_op.drop_constraint(name, type_="check")
