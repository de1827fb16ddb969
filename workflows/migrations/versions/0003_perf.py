"""Read path at scale: task-list branches and the board read in index order, the reminder
sweep reads only due tasks.

Revision ID: 0003_perf
Revises: 0003_scale
"""
from alembic import op

revision = "0003_perf"
down_revision = "0003_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_queue")
        batch_op.create_index("ix_tasks_queue", ["state", "unit_id", "role", "assignee_id", "created_at"], unique=False)
        batch_op.create_index("ix_tasks_remind", ["state", "reminded_at", "created_at"], unique=False)
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_open")
        batch_op.create_index("ix_notices_open", ["closed_at", "ends_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_open")
        batch_op.create_index("ix_notices_open", ["closed_at", "ends_at"], unique=False)
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_remind")
        batch_op.drop_index("ix_tasks_queue")
        batch_op.create_index("ix_tasks_queue", ["state", "unit_id", "role", "created_at"], unique=False)
