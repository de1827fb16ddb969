"""Objections: CHECK constraints on their status and decision, so the database refuses a value the
catalogue does not know (workflows/catalogue.py ObjectionStatus, ObjectionDecision). The lists are
written out as they are at this revision; a later change needs a migration of its own.

Revision ID: 0004_consts
Revises: 0004_page
"""
from alembic import op

revision = "0004_consts"
down_revision = "0004_page"
branch_labels = None
depends_on = None

STATUSES = ('open', 'upheld', 'dismissed', 'superseded')
DECISIONS = ('dismiss', 'dismiss_restart', 'uphold')


def _check(column: str, codes: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(c) for c in codes)})"


def upgrade() -> None:
    with op.batch_alter_table("objections") as batch_op:
        batch_op.create_check_constraint("ck_objections_status", _check("status", STATUSES))
        batch_op.create_check_constraint("ck_objections_decision", _check("decision", DECISIONS))


def downgrade() -> None:
    with op.batch_alter_table("objections") as batch_op:
        batch_op.drop_constraint("ck_objections_decision", type_="check")
        batch_op.drop_constraint("ck_objections_status", type_="check")
