"""Catalogue: CHECK constraints on the coded columns (status, kind, role, notice kind, registry
state), so the database itself refuses a value no part of the system knows. Batch mode re-creates
the tables on SQLite (which cannot add a CHECK in place).

The code lists are written out as they were at this revision (workflows/catalogue.py then): a
migration is history, so a later catalogue change must come with a migration of its own.

Revision ID: 0003_catalogue
Revises: 0003_scale
"""
from alembic import op


revision = "0003_catalogue"
down_revision = "0003_scale"
branch_labels = None
depends_on = None


# (constraint, table, column, codes) as the catalogue had them at this revision.
CHECKS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ('ck_applications_kind', 'applications', 'kind',
     ('ownership', 'use_right', 'extension', 'conversion', 'distribution', 'watch')),
    ('ck_applications_status', 'applications', 'status',
     ('draft', 'consenting', 'in_review', 'deciding', 'publicity', 'agreement', 'signing', 'ip_transfer', 'paying', 'watching', 'completed', 'refused', 'withdrawn')),
    ('ck_role_grants_role', 'role_grants', 'role',
     ('researcher', 'tto', 'decider', 'signer', 'auditor', 'admin', 'city_auditor')),
    ('ck_human_tasks_role', 'human_tasks', 'role',
     ('representative', 'member', 'tto', 'decider', 'signer')),
    ('ck_signatures_role', 'signatures', 'role',
     ('representative', 'unit')),
    ('ck_publicity_notices_kind', 'publicity_notices', 'kind',
     ('grant', 'price', 'leader_reward')),
    ('ck_registry_entries_status', 'registry_entries', 'status',
     ('registered', 'granted', 'converting', 'converted', 'left')),
    ('ck_registry_entries_grant_kind', 'registry_entries', 'grant_kind',
     ('ownership', 'use_right')),
)


def _check(column: str, codes: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(c) for c in codes)})"


def _tables() -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    found: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    for name, table, column, codes in CHECKS:
        found.setdefault(table, []).append((name, column, codes))
    return found


def upgrade() -> None:
    for table, checks in _tables().items():
        with op.batch_alter_table(table) as batch_op:
            for name, column, codes in checks:
                batch_op.create_check_constraint(name, _check(column, codes))


def downgrade() -> None:
    for table, checks in _tables().items():
        with op.batch_alter_table(table) as batch_op:
            for name, _column, _codes in checks:
                batch_op.drop_constraint(name, type_="check")
