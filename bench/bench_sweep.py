"""The timer sweep at scale: `python bench/bench_sweep.py --database URL [--due 1000] [--runs 20]`.

Run it on a COPY of a seeded database (bench/seed.py): the due case moves `timer_due_at` of all
but `--due` waiting instances a year ahead and fires the rest under a clock shifted past their
term. Prints per sweep: wall and CPU time, timers fired, and the longest write transaction the
sweep held (on SQLite the write lock, on PostgreSQL its unit's audit log head row: what any other
writer would wait for).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from freezegun import freeze_time
from sqlalchemy import event, func, select, update

from webapp import create_app
from webapp.cli import tick_once
from workflows import engine, keys
from workflows.models import WorkflowState


class Transactions:
    """Durations of every transaction on the engine (begin → commit/rollback), in ms."""

    def __init__(self, eng):
        self.started: dict[int, float] = {}
        self.durations: list[float] = []
        event.listen(eng, "begin", lambda conn: self.started.__setitem__(id(conn), time.perf_counter()))
        event.listen(eng, "commit", self._end)
        event.listen(eng, "rollback", self._end)

    def _end(self, conn) -> None:
        began = self.started.pop(id(conn), None)
        if began is not None:
            self.durations.append((time.perf_counter() - began) * 1000)

    def take(self) -> list[float]:
        taken, self.durations = self.durations, []
        return taken


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * q + .5) - 1)] if values else 0.0


def timed(action) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def none_due(app, tx: Transactions, runs: int) -> None:
    walls, cpus, longest = [], [], []
    tick_once(app)  # warm (and sign the checkpoints the seed left unsigned)
    tx.take()
    for _ in range(runs):
        wall, cpu, fired = timed(lambda: tick_once(app))
        assert fired == 0, fired
        walls.append(wall)
        cpus.append(cpu)
        longest.append(max(tx.take(), default=0))
    print(f"| whole sweep (`tick_once`), none due, {runs} sweeps | {statistics.median(walls):.1f} / "
          f"{pct(walls, .95):.1f} ms | {statistics.median(cpus):.1f} / {pct(cpus, .95):.1f} ms | "
          f"{max(longest):.1f} ms |")


def some_due(app, tx: Transactions, due: int) -> None:
    sessions = app.extensions["grants_sessions"]
    with sessions() as s:
        waiting = list(s.execute(select(WorkflowState.application_id, WorkflowState.timer_due_at)
                                 .where(WorkflowState.timer_due_at.is_not(None))
                                 .order_by(WorkflowState.timer_due_at, WorkflowState.application_id)).all())
        chosen = [app_id for app_id, _ in waiting[:due]]
        later = waiting[min(due, len(waiting)) - 1][1] + timedelta(seconds=1)
        s.execute(update(WorkflowState).where(WorkflowState.timer_due_at.is_not(None),
                                              WorkflowState.application_id.not_in(chosen))
                  .values(timer_due_at=later + timedelta(days=365)))
        s.commit()
        total = s.execute(select(func.count()).select_from(WorkflowState)).scalar_one()
    print(f"\n{total} instances, {len(waiting)} waiting on a timer, {len(chosen)} due at {later.isoformat()}")
    print("| sweep | fired | wall ms | CPU ms | longest transaction ms | p95 transaction ms |\n|---|---|---|---|---|---|")
    fired_total, n, all_tx = 0, 0, []
    with freeze_time(later, tick=True):
        while fired_total < len(chosen):
            wall, cpu, fired = timed(lambda: engine.sweep_timers(sessions))
            spans = tx.take()
            all_tx += spans
            n += 1
            fired_total += fired
            print(f"| {n} | {fired} | {wall:.0f} | {cpu:.0f} | {max(spans, default=0):.1f} | {pct(spans, .95):.1f} |")
            if fired == 0:
                break
    print(f"fired {fired_total} in {n} sweeps; transactions: median {statistics.median(all_tx):.1f} ms, "
          f"p95 {pct(all_tx, .95):.1f} ms, max {max(all_tx):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="bench-sweep-")
    keys.init(instance)
    app = create_app({"DATABASE_URL": args.database, "SECRET_KEY": "bench"})
    app.instance_path = instance
    from workflows import settings
    settings.configure(instance_dir=instance, smtp_port=1)  # no mail server: a due mail would fail fast
    tx = Transactions(app.extensions["grants_engine"])
    print("| case | wall p50 / p95 | CPU p50 / p95 | longest transaction |\n|---|---|---|---|")
    none_due(app, tx, args.runs)
    if args.due:
        some_due(app, tx, args.due)


if __name__ == "__main__":
    main()
