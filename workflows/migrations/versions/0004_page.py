"""Stored durations for the statistics, and the index behind a grant's conversions and watch.

- `human_tasks.duration_seconds` (completed_at − created_at) and `publicity_notices.duration_seconds`
  (closed_at − starts_at), written with completed_at / closed_at (models `_store_durations`), so
  the city-wide median and p90 sort stored numbers from an index (`ix_tasks_durations` replaces
  `ix_tasks_statistics`, `ix_notices_durations`) instead of a julianday per row. Existing rows are
  backfilled: on PostgreSQL with EXTRACT(EPOCH …) (exact), on SQLite in Python from the stored
  timestamps (microseconds kept; SQLite's julianday is a double of days, ~20 µs off).
- `ix_applications_original (original_id, kind)`: the application page's conversions and watch,
  `watch.watch_of` and the sweep's "does every completed grant have its watch?" (one look-up per
  completed grant: 30,000 × 100,000 rows on the first sweep of a process), read all applications
  without it (a full scan at 100,000).
- `ix_role_grants_role_unit (role, unit_id)`: who may claim a queued task, without scanning users.

Revision ID: 0004_page
Revises: 0004_lists
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_page"
down_revision = "0004_lists"
branch_labels = None
depends_on = None

BATCH = 5000


def _backfill(table_name: str, begin: str, end: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"UPDATE {table_name} SET duration_seconds = EXTRACT(EPOCH FROM {end} - {begin})::float8 "
                   f"WHERE {end} IS NOT NULL AND {begin} IS NOT NULL")
        return
    table = sa.table(table_name, sa.column("id"), sa.column(begin, sa.DateTime()), sa.column(end, sa.DateTime()),
                     sa.column("duration_seconds", sa.Float()))
    rows = bind.execute(sa.select(table.c.id, table.c[begin], table.c[end]).where(
        table.c[end].is_not(None), table.c[begin].is_not(None))).all()
    update = sa.update(table).where(table.c.id == sa.bindparam("row_id")).values(
        duration_seconds=sa.bindparam("seconds"))
    for first in range(0, len(rows), BATCH):
        bind.execute(update, [{"row_id": i, "seconds": (e - b).total_seconds()} for i, b, e in rows[first:first + BATCH]])


def upgrade() -> None:
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
    _backfill("human_tasks", "created_at", "completed_at")
    _backfill("publicity_notices", "starts_at", "closed_at")
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_statistics")
        batch_op.create_index("ix_tasks_durations", ["unit_id", "bpmn_id", "completed_at", "duration_seconds"],
                              unique=False)
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_durations", ["unit_id", "closed_at", "duration_seconds"], unique=False)
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index("ix_applications_original", ["original_id", "kind"], unique=False)
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.create_index("ix_role_grants_role_unit", ["role", "unit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_role_grants_role_unit")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_applications_original")
    with op.batch_alter_table("publicity_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_durations")
        batch_op.drop_column("duration_seconds")
    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_durations")
        batch_op.create_index("ix_tasks_statistics", ["unit_id", "bpmn_id", "completed_at", "created_at"], unique=False)
        batch_op.drop_column("duration_seconds")
