"""The board's archive: past notices are read newest end first with "closed, or term over" as
the filter, so the index on ends_at carries closed_at too — the first page and its count are
read from the index alone instead of the notices' rows (each with its summary).

Revision ID: 0003_board
Revises: 0003_convwatch
"""
from alembic import op

revision = "0003_board"
down_revision = "0003_convwatch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_publicity_notices_ends_at")
        batch_op.create_index("ix_notices_ends_closed", ["ends_at", "closed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_ends_closed")
        batch_op.create_index("ix_publicity_notices_ends_at", ["ends_at"], unique=False)
