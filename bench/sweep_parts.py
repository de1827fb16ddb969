"""Where a fired timer's CPU goes, without a profiler's overhead:
`python bench/sweep_parts.py URL [--due 100] [--floor]`.

On a COPY of a seed, from the root of the code to measure (it runs against older code too: it
wraps functions by module and name, skipping those that do not exist). Makes `--due` waiting
instances due (the others a year later) and fires them all with `engine.sweep_timers` under a
clock past their term, timing each wrapped function with `time.process_time` (inclusive, and
exclusive of the wrapped functions it calls). Prints per fired instance: CPU of each part, and the
statements each part issued.

`--floor` first measures, on the same due states and without touching the database, the raw
SpiffWorkflow cost of a timer fire: SpiffWorkflow's own serializer (`from_dict` / `to_dict`, spec
included as its stock serializer stores it) and this project's state-only load/dump, each with
`refresh_timers` + `do_engine_steps` under a script engine whose service calls do nothing.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.getcwd())

from freezegun import freeze_time
from sqlalchemy import event, select
from sweep_setup import choose_due, sweep_app  # this folder's (the script's own directory)

from workflows import db
from workflows.evidence import audit
from workflows.models import ProcessVersion, WorkflowState
from workflows.people import notify
from workflows.process import engine, incidents, operations, runtime

# (label, module, attribute): each is timed inclusive and exclusive of the others it calls.
WRAP = [
    ("sweep_timers", engine, "sweep_timers"),
    ("in_transaction (session, begin, commit, close)", db, "in_transaction"),
    ("pick: SELECT … FOR UPDATE SKIP LOCKED (before)", engine, "_fire_next"),
    ("read a batch of due ids (after)", engine, "_due_batch"),
    ("claim one by id + its transaction (after)", engine, "_fire_in_transaction"),
    ("savepoint + guard", engine, "_fire_guarded"),
    ("incident check (resolve)", incidents, "resolve"),
    ("_fire: application read, rest", engine, "_fire"),
    ("runtime.load (SpiffWorkflow from_dict)", runtime, "load"),
    ("runtime.advance (refresh_timers + do_engine_steps)", runtime, "advance"),
    ("  close_publicity (service task)", None, "close_publicity"),
    ("_persist: rest (status, flush, task ids)", engine, "_persist"),
    ("  runtime.dump (to_dict + json + zlib)", runtime, "dump"),
    ("  runtime.summary", runtime, "summary"),
    ("  runtime.ready_human_tasks", runtime, "ready_human_tasks"),
    ("  runtime.next_timer_due", runtime, "next_timer_due"),
    ("  _add_task_row (task insert, staff read)", engine, "_add_task_row"),
    ("  notify.ready_notices (notices + mails)", notify, "ready_notices"),
    ("audit.record (queue the event)", audit, "record"),
    ("audit.append_pending (at commit: head lock, insert)", None, "append_pending"),
]


class Parts:
    def __init__(self, eng: Any) -> None:
        self.stack: list[list[Any]] = []  # [label, start cpu, child cpu, statements at start, child statements]
        self.incl: dict[str, float] = defaultdict(float)
        self.excl: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stmts: dict[str, int] = defaultdict(int)
        self.statements = 0
        event.listen(eng, "before_cursor_execute", self._statement)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def wrap(self, label: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            frame = [label, time.process_time(), 0.0, self.statements, 0]
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.process_time() - frame[1]
                issued = self.statements - frame[3]
                self.incl[label] += spent
                self.excl[label] += spent - frame[2]
                self.stmts[label] += issued - frame[4]
                self.calls[label] += 1
                if self.stack:
                    self.stack[-1][2] += spent
                    self.stack[-1][4] += issued
        return wrapped

    def install(self) -> None:
        for label, module, attr in WRAP:
            if attr == "close_publicity":
                key = next(k for k, v in operations.OPERATIONS.items() if v is operations.close_publicity)
                operations.OPERATIONS[key] = self.wrap(label, operations.close_publicity)
                if hasattr(engine, "OPERATIONS"):
                    engine.OPERATIONS[key] = operations.OPERATIONS[key]
            elif attr == "append_pending":
                hooks = db.before_commit_hooks
                hooks[hooks.index(audit.append_pending)] = self.wrap(label, audit.append_pending)
            elif hasattr(module, attr):
                setattr(module, attr, self.wrap(label, getattr(module, attr)))

    def report(self, fired: int) -> None:
        total = self.incl["sweep_timers"]
        print("| part | calls | CPU ms per fired instance (exclusive) | inclusive | share | statements per instance |")
        print("|---|---|---|---|---|---|")
        for label, _, _ in WRAP:
            if self.calls.get(label):
                print(f"| {label} | {self.calls[label]} | {self.excl[label] * 1000 / fired:.2f} | "
                      f"{self.incl[label] * 1000 / fired:.2f} | {self.excl[label] / total:.0%} | "
                      f"{self.stmts[label] / fired:.1f} |")
        print(f"| **total** (sweep_timers) | | {total * 1000 / fired:.2f} | | | {self.statements / fired:.1f} |")


class NoServices(runtime.ServiceScriptEngine):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__({}, None)

    def call_service(self, task: Any, operation_name: str = "", operation_params: Any = None, **kwargs: Any) -> str:
        return json.dumps({"closed": True})


def _time_round_trip(results: dict[str, list[float]], side: str, load_label: str, dump_label: str,
                     load: Any, dump: Any) -> None:
    """One instance loaded, run (its due timer) and dumped, each step's CPU under `side`."""
    t0 = time.process_time()
    wf = load()
    t1 = time.process_time()
    runtime.advance(wf, NoServices())
    t2 = time.process_time()
    dump(wf)
    t3 = time.process_time()
    results[f"{side}: {load_label}"].append(t1 - t0)
    results[f"{side}: refresh_timers + do_engine_steps"].append(t2 - t1)
    results[f"{side}: {dump_label}"].append(t3 - t2)
    results[f"{side}: total"].append(t3 - t0)


def floor(sessions: Any, chosen: list[int], later: Any) -> None:
    """SpiffWorkflow alone: load + refresh_timers + do_engine_steps + dump, no database."""
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    with sessions() as s:
        rows = s.execute(select(WorkflowState.serialized, ProcessVersion)
                         .join(ProcessVersion, WorkflowState.process_version_id == ProcessVersion.id)
                         .where(WorkflowState.application_id.in_(chosen))).all()
        states = [(serialized, version) for serialized, version in rows]
        for _, version in states:
            runtime.stored_spec(version)  # read the deferred text while the session is open
    # SpiffWorkflow's stock round trip: the whole dict (spec included) through its own serializer
    stock = []
    for serialized, version in states:
        dct = json.loads(runtime.state_json(serialized))
        dct.update(json.loads(runtime.stored_spec(version)))
        stock.append(json.dumps(dct))
    serializer = runtime.SERIALIZER
    results: dict[str, list[float]] = defaultdict(list)
    with freeze_time(later, tick=True):
        for text, (serialized, version) in zip(stock, states, strict=True):
            _time_round_trip(results, "stock", "deserialize_json (spec included)", "serialize_json (spec included)",
                             lambda text=text: serializer.deserialize_json(text), serializer.serialize_json)
            _time_round_trip(results, "ours", "runtime.load (spec objects shared)", "runtime.dump (state only, zlib)",
                             lambda serialized=serialized, version=version: runtime.load(serialized, version),
                             runtime.dump)
    print(f"\nSpiffWorkflow floor of a timer fire, {len(states)} instances, no database, no service work "
          f"({BpmnWorkflowSerializer.__module__.split('.')[0]}):")
    print("| step | CPU ms median | mean |")
    print("|---|---|---|")
    for label, values in results.items():
        print(f"| {label} | {statistics.median(values) * 1000:.2f} | {statistics.mean(values) * 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args()
    app, sessions = sweep_app(args.database, "bench-parts-")
    chosen, later = choose_due(sessions, args.due)
    if args.floor:
        floor(sessions, chosen, later)
    parts = Parts(app.extensions["grants_engine"])
    parts.install()
    collections: dict[int, list[float]] = defaultdict(list)
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.process_time())
        elif started:
            collections[info["generation"]].append(time.process_time() - started.pop())
    gc.callbacks.append(on_gc)
    with freeze_time(later, tick=True):
        wall = time.perf_counter()
        fired = engine.sweep_timers(sessions, budget_seconds=3600)
        wall = time.perf_counter() - wall
    gc.callbacks.remove(on_gc)
    print(f"\ncode {os.getcwd()}: fired {fired} in {wall:.2f} s wall; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    parts.report(max(fired, 1))
    print("garbage collections during the sweep (counted inside the parts above): " + ", ".join(
        f"generation {gen}: {len(times)} × {statistics.mean(times) * 1000:.2f} ms = "
        f"{sum(times) * 1000 / max(fired, 1):.2f} ms per fired instance" for gen, times in sorted(collections.items())))


if __name__ == "__main__":
    main()
