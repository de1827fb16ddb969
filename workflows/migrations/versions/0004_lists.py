"""An application's ready steps by one index: `application_id IN (…) AND state = 'ready'` (the
list pages' step column, the application page) had two single-equality indexes to choose from,
and SQLite took `ix_tasks_remind (state, …)`, reading every ready task of the city: 1.2 s for
the API's first page of applications at 100,000 applications (bench/README). One index with both
columns (and the order the steps are shown in) replaces `ix_human_tasks_application_id`.

Revision ID: 0004_lists
Revises: 0003_boardcount
"""
from alembic import op

revision = "0004_lists"
down_revision = "0003_boardcount"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_application", ["application_id", "state", "created_at"], unique=False)
        batch_op.drop_index("ix_human_tasks_application_id")


def downgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_human_tasks_application_id", ["application_id"], unique=False)
        batch_op.drop_index("ix_tasks_application")
