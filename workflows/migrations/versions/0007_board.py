"""The board's first page without a sort: `ix_notices_open` led with `closed_at`, and PostgreSQL
does not take `closed_at IS NULL` as fixing that column, so it could not read the index in the
board's order (ends_at, id) and sorted every open notice for the top fifty (5,035 at 100k, half
of the board's time in the database, bench/README). The index now holds the open notices only
(partial, `closed_at IS NULL`) in the board's order, with `starts_at` for the count.

Revision ID: 0007_board
Revises: 0006_claims
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_board"
down_revision = "0006_claims"
branch_labels = None
depends_on = None

OPEN = sa.text("closed_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_open")
        batch_op.create_index("ix_notices_open", ["ends_at", "id", "starts_at", "closed_at"], unique=False,
                              postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_open")
        batch_op.create_index("ix_notices_open", ["closed_at", "ends_at", "id", "starts_at"], unique=False)
