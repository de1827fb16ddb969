"""The board's count: open notices are counted by "not closed, started, not yet ended", and
`starts_at` was not in `ix_notices_open`, so the count read every open notice's row (5,000 at
100k applications, ~10 ms on SQLite); with `starts_at` appended the count reads the index alone
and the first page still reads the index in the board's order (closed_at, ends_at, id).

Revision ID: 0003_boardcount
Revises: 0003_board
"""
from alembic import op

revision = "0003_boardcount"
down_revision = "0003_board"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_open")
        batch_op.create_index("ix_notices_open", ["closed_at", "ends_at", "id", "starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_open")
        batch_op.create_index("ix_notices_open", ["closed_at", "ends_at", "id"], unique=False)
