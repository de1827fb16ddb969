"""The timer sweep at scale: `python bench/bench_sweep.py --database URL [--due 1000] [--runs 20]
[--assume-watched]`.

Run it on a COPY of a seeded database (bench/seed.py), from the root of the code to measure (it
also runs against older code: it wraps the sweep's parts by their module names). The due case
moves `timer_due_at` of all but `--due` waiting instances a year ahead and sweeps (`tick_once`,
the real sweep) under a clock shifted past the chosen ones' term until all have fired.

Prints per part of the sweep (probe, watch backfill, timers, reminders, throttles, outbox,
checkpoints): calls, wall and CPU time, write transactions, and the longest transaction (begin →
commit on the engine: on SQLite how long the write lock was held, on PostgreSQL the rows locked;
what any other writer could wait for), how long each transaction held the lock others wait on
(from its first write, `BEGIN IMMEDIATE` or `FOR UPDATE` to its end: on SQLite the write lock,
which a deferred transaction takes only at its first write) and, on PostgreSQL, a unit's audit head
row (from its `FOR UPDATE` to the end). `--assume-watched` skips the one-off start of conversion
watches for grants completed before the watch existed (the 100k seed has ~30,000 of them), to
measure the steady state.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, os.getcwd())

from freezegun import freeze_time
from sqlalchemy import event, func, select, update

from webapp import create_app
from webapp.cli import tick_once
from workflows import clock, db
from workflows.evidence import audit, keys
from workflows.models import HumanTask, OutboxMail, WorkflowState
from workflows.people import accounts, notify
from workflows.process import engine

try:
    from workflows.process import sweep as sweep_module
except ImportError:  # older code: no probe
    sweep_module = None

PARTS = [("probe", sweep_module, "pending"), ("backfill", engine, "backfill_watches"),
         ("backfill", engine, "_backfill_watches"), ("timers", engine, "sweep_timers"),
         ("reminders", sweep_module, "_remind") if sweep_module else ("reminders", notify, "remind_overdue"),
         ("throttles", accounts, "prune_throttles"), ("outbox", notify, "deliver_outbox"),
         ("checkpoints", sweep_module, "_checkpoint") if sweep_module and hasattr(sweep_module, "_checkpoint")
         else ("checkpoints", audit, "checkpoint_all")]


class Meter:
    """Wraps each part; every transaction on the engine is counted to the innermost running part."""

    def __init__(self, eng):
        self.stack: list[str] = ["other"]
        self.started: dict[int, tuple[float, str]] = {}
        self.calls: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.tx: dict[str, list[float]] = defaultdict(list)
        self.locked: dict[str, list[float]] = defaultdict(list)
        self.first_write: dict[int, float] = {}
        self.head: dict[str, list[float]] = defaultdict(list)
        self.head_locked: dict[int, float] = {}
        event.listen(eng, "begin", self._begin)
        event.listen(eng, "before_cursor_execute", self._statement)
        event.listen(eng, "commit", self._end)
        event.listen(eng, "rollback", self._end)
        for name, module, attr in PARTS:
            if module is not None and hasattr(module, attr):
                setattr(module, attr, self._wrap(name, getattr(module, attr)))
        in_transaction = db.in_transaction

        def labelled(factory, action):  # `in_transaction(sessions, notify.remind_overdue)` begins
            part = getattr(action, "part", None)  # before the part runs: count it to the part
            if part is not None:
                self.stack.append(part)
            try:
                return in_transaction(factory, action)
            finally:
                if part is not None:
                    self.stack.pop()
        db.in_transaction = labelled

    def _begin(self, conn) -> None:
        self.started[id(conn)] = (time.perf_counter(), self.stack[-1])

    def _statement(self, conn, _cursor, statement, *_args) -> None:
        """The write lock (SQLite) / the first row lock (PostgreSQL) is taken by the first write,
        `BEGIN IMMEDIATE` or `FOR UPDATE` of the transaction: held from there to its end."""
        if id(conn) not in self.first_write:  # (`BEGIN IMMEDIATE` is sent before `_begin` runs)
            head = statement.lstrip()[:16].upper()
            if head.startswith(("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE")) or "FOR UPDATE" in statement.upper():
                self.first_write[id(conn)] = time.perf_counter()
        if id(conn) not in self.head_locked and "audit_logs" in statement and "FOR UPDATE" in statement.upper():
            self.head_locked[id(conn)] = time.perf_counter()  # PostgreSQL: a unit's audit head, every writer of the unit waits

    def _end(self, conn) -> None:
        began = self.started.pop(id(conn), None)
        wrote = self.first_write.pop(id(conn), None)
        head = self.head_locked.pop(id(conn), None)
        if began is not None and head is not None:
            self.head[began[1]].append((time.perf_counter() - head) * 1000)
        if began is not None:
            self.tx[began[1]].append((time.perf_counter() - began[0]) * 1000)
            if wrote is not None:
                self.locked[began[1]].append((time.perf_counter() - wrote) * 1000)

    def _wrap(self, name, fn):
        def wrapped(*args, **kwargs):
            self.stack.append(name)
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.calls[name].append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
                self.stack.pop()
        wrapped.part = name
        return wrapped

    def reset(self) -> None:
        self.calls.clear()
        self.tx.clear()
        self.locked.clear()
        self.head.clear()

    def report(self, sweeps: int) -> None:
        print("| part | calls | wall p50 / p95 ms | CPU p50 / p95 ms | transactions | transaction p50 / p95 / max ms "
              "| lock held (first write → end) p50 / p95 / max ms | audit head row held (PostgreSQL) p50 / p95 / max ms |")
        print("|---|---|---|---|---|---|---|---|")
        for name in ["probe", "backfill", "timers", "reminders", "throttles", "outbox", "checkpoints", "other"]:
            calls, tx = self.calls.get(name, []), self.tx.get(name, [])
            if not calls and not tx:
                continue
            walls, cpus = [c[0] for c in calls], [c[1] for c in calls]
            locked, head = self.locked.get(name, []), self.head.get(name, [])
            print(f"| {name} | {len(calls)} | {med(walls):.1f} / {pct(walls, .95):.1f} | {med(cpus):.1f} / "
                  f"{pct(cpus, .95):.1f} | {len(tx)} ({len(tx) / sweeps:.1f} a sweep) | {med(tx):.1f} / "
                  f"{pct(tx, .95):.1f} / {max(tx, default=0):.1f} | {med(locked):.1f} / {pct(locked, .95):.1f} / "
                  f"{max(locked, default=0):.1f} | {med(head):.1f} / {pct(head, .95):.1f} / {max(head, default=0):.1f} |")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * q + .5) - 1)] if values else 0.0


def timed(action) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000, result


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def quiet(app) -> None:
    """Idle as a deployment is between events: every ready task reminded just now, no mail due
    (the seed's clock is hours old: without this some tasks fall due for a reminder during the
    run, and their mail, undeliverable here, is retried each sweep)."""
    sessions = app.extensions["grants_sessions"]
    with sessions() as s:
        s.execute(update(HumanTask).where(HumanTask.state == "ready").values(reminded_at=clock.now()))
        s.execute(update(OutboxMail).where(OutboxMail.sent_at.is_(None)).values(sent_at=clock.now()))
        s.commit()


def none_due(app, meter: Meter, runs: int) -> None:
    walls, cpus = [], []
    quiet(app)
    tick_once(app)  # warm (and sign the checkpoints the seed left unsigned)
    meter.reset()
    print(f"\nnone due, {runs} sweeps, load average before {load()}")
    for _ in range(runs):
        wall, cpu, fired = timed(lambda: tick_once(app))
        assert fired == 0, fired
        walls.append(wall)
        cpus.append(cpu)
    print(f"whole sweep (`tick_once`): wall p50 / p95 {med(walls):.1f} / {pct(walls, .95):.1f} ms, "
          f"CPU p50 / p95 {med(cpus):.1f} / {pct(cpus, .95):.1f} ms; load average after {load()}")
    meter.report(runs)


def some_due(app, meter: Meter, due: int) -> None:
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
        # the shifted clock would make every ready task overdue: as if reminded just before
        s.execute(update(HumanTask).where(HumanTask.state == "ready").values(reminded_at=later))
        s.commit()
        total = s.execute(select(func.count()).select_from(WorkflowState)).scalar_one()
    print(f"\n{total} instances, {len(waiting)} waiting on a timer, {len(chosen)} due at {later.isoformat()}, "
          f"load average before {load()}")
    meter.reset()
    fired_total, n, walls, cpus = 0, 0, [], []
    with freeze_time(later, tick=True):
        while fired_total < len(chosen):
            wall, cpu, fired = timed(lambda: tick_once(app))
            n += 1
            walls.append(wall)
            cpus.append(cpu)
            fired_total += fired
            if fired == 0:
                break
    timer_cpu = sum(c[1] for c in meter.calls.get("timers", []))
    print(f"fired {fired_total} in {n} sweeps: {sum(walls) / 1000:.1f} s wall, {sum(cpus) / 1000:.1f} s CPU; "
          f"timers {timer_cpu / max(fired_total, 1):.1f} ms CPU per fired instance; load average after {load()}")
    meter.report(n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--assume-watched", action="store_true")
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="bench-sweep-")
    keys.init(instance)
    app = create_app({"DATABASE_URL": args.database, "SECRET_KEY": "bench"})
    app.instance_path = instance
    from workflows import settings
    settings.configure(instance_dir=instance, smtp_port=1)  # no mail server: a due mail would fail fast
    if args.assume_watched:
        engine._WATCHES_COMPLETE.add(app.extensions["grants_sessions"])
    print(f"code {Path.cwd()}, database {args.database.rsplit('/', 1)[-1]}, assume watched: {args.assume_watched}")
    meter = Meter(app.extensions["grants_engine"])
    none_due(app, meter, args.runs)
    if args.due:
        some_due(app, meter, args.due)


if __name__ == "__main__":
    main()
