"""The conversion period watch: the unit's reminder days before the period (转化期限) lapses.

Grants completed before this revision get their watch on the next sweep (engine.tick starts
the missing ones), so no workflow state is written here.

Revision ID: 0003_convwatch
Revises: 0003_perf
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_convwatch"
down_revision = "0003_perf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversion_reminder_first_days", sa.Integer(), server_default="90",
                                      nullable=False))
        batch_op.add_column(sa.Column("conversion_reminder_second_days", sa.Integer(), server_default="30",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("conversion_reminder_second_days")
        batch_op.drop_column("conversion_reminder_first_days")
