"""Duration bins and application counts for the statistics. Duration bins: per scope (a unit, or 0 for the city), step, Shanghai year
and duration in hundredths of a day (the resolution the statistics show), how many tasks or
notices finished there, so the median and p90 are read from at most a few thousand counts instead
of sorting ~33,000 durations per step city-wide. Built here from the stored durations of existing
rows (the same rounding as models.centidays, written out so this revision stays as it is); kept
since by models `_store_durations` in the transaction that completes a task or closes a notice.
Application counts (`application_counts`): by unit and city, the Shanghai year started / month
closed, status and kind, kept by models `_recount_application`; built here from the applications.

Revision ID: 0005_stats
Revises: 0004_consts
"""
from collections import Counter
from datetime import UTC
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0005_stats"
down_revision = "0005_search"
branch_labels = None
depends_on = None

CITY = 0
NOTICES = "publicity"  # catalogue Process.PUBLICITY at this revision
SHANGHAI = ZoneInfo("Asia/Shanghai")
BATCH = 2000


def _year(end):
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end
    return end.astimezone(SHANGHAI).year


def _centidays(seconds: float) -> int:
    return round(round(float(seconds) / 86400, 2) * 100)


def upgrade() -> None:
    bins = op.create_table(
        "duration_bins",
        sa.Column("scope_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("centidays", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope_id", "step", "year", "centidays"))
    bind = op.get_bind()
    tasks = sa.table("human_tasks", sa.column("unit_id"), sa.column("bpmn_id"),
                     sa.column("completed_at", sa.DateTime()), sa.column("duration_seconds", sa.Float()))
    notices = sa.table("publicity_notices", sa.column("unit_id"), sa.column("closed_at", sa.DateTime()),
                       sa.column("duration_seconds", sa.Float()))
    counts: Counter[tuple[int, str, int, int]] = Counter()

    def count(unit_id: int, step: str, end, seconds) -> None:
        if unit_id is None or step is None or end is None or seconds is None:
            return
        key = (step, _year(end), _centidays(seconds))
        counts[(unit_id, *key)] += 1
        counts[(CITY, *key)] += 1
    for unit_id, step, end, seconds in bind.execute(sa.select(
            tasks.c.unit_id, tasks.c.bpmn_id, tasks.c.completed_at, tasks.c.duration_seconds).where(
            tasks.c.completed_at.is_not(None))):
        count(unit_id, step, end, seconds)
    for unit_id, end, seconds in bind.execute(sa.select(
            notices.c.unit_id, notices.c.closed_at, notices.c.duration_seconds).where(notices.c.closed_at.is_not(None))):
        count(unit_id, NOTICES, end, seconds)
    rows = [{"scope_id": s, "step": st, "year": y, "centidays": c, "n": n} for (s, st, y, c), n in sorted(counts.items())]
    for first in range(0, len(rows), BATCH):
        op.bulk_insert(bins, rows[first:first + BATCH])


    _application_counts(bind)


def _application_counts(bind) -> None:
    """Applications by unit (0: the city), basis (0: started in year `period`; 1: closed in month
    `period` = year * 100 + month, Shanghai), status and kind."""
    table = op.create_table(
        "application_counts",
        sa.Column("scope_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("basis", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("period", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope_id", "basis", "period", "status", "kind"))
    apps = sa.table("applications", sa.column("unit_id"), sa.column("created_at", sa.DateTime()),
                    sa.column("closed_at", sa.DateTime()), sa.column("status"), sa.column("kind"))
    counts: Counter[tuple[int, int, int, str, str]] = Counter()
    for unit_id, created, closed, status, kind in bind.execute(sa.select(
            apps.c.unit_id, apps.c.created_at, apps.c.closed_at, apps.c.status, apps.c.kind)):
        keys = [(0, _year(created))] if created is not None else []
        if closed is not None:
            local = (closed.replace(tzinfo=UTC) if closed.tzinfo is None else closed).astimezone(SHANGHAI)
            keys.append((1, local.year * 100 + local.month))
        for basis, period in keys:
            counts[(unit_id, basis, period, status, kind)] += 1
            counts[(CITY, basis, period, status, kind)] += 1
    rows = [{"scope_id": s, "basis": b, "period": p, "status": st, "kind": k, "n": n}
            for (s, b, p, st, k), n in sorted(counts.items())]
    for first in range(0, len(rows), BATCH):
        op.bulk_insert(table, rows[first:first + BATCH])


def downgrade() -> None:
    op.drop_table("application_counts")
    op.drop_table("duration_bins")
