"""The sweep's "does every completed grant have its conversion watch?": the NOT EXISTS looked for
a watch by `original_id`, which no index covered, so SQLite scanned all applications once per
completed grant (30,000 × 100,000 rows at a city's scale) on the first sweep of every process
(`grants tick` from cron: every run). `ix_apps_original (original_id, kind)` answers each look-up
from the index; it also serves the extensions', conversions' and watches' look-ups of their grant.

Revision ID: 0004_sweep
Revises: 0003_boardcount
"""
from alembic import op

revision = "0004_sweep"
down_revision = "0003_boardcount"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index("ix_apps_original", ["original_id", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_apps_original")
