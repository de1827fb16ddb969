"""The rows a timer sweep leaves behind, normalized, so two code roots can be diffed:
`cd ROOT && python /path/to/compare_sweep_output.py COPY_URL [--due 50] > ROOT.txt`.

On a COPY of a seed (bench/seed.py): makes `--due` waiting instances due (the others a year
later), fires them with `engine.sweep_timers` under a clock frozen just past their term (no
ticking: both roots write the same times) and prints every row the fires touched — the
instances' states (decompressed), with every uuid numbered in order of appearance, applications,
notices, tasks, notifications, mail, audit events and heads, incidents, statistics.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.getcwd())

from freezegun import freeze_time
from sqlalchemy import text
from sweep_setup import choose_due, sweep_app  # this folder's (the script's own directory)

from workflows.process import engine, runtime

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX = re.compile(r"\b[0-9a-f]{32,}\b")


def numbered(value: str, names: dict[str, str]) -> str:
    return UUID.sub(lambda m: names.setdefault(m.group(0), f"<uuid{len(names)}>"), value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--due", type=int, default=50)
    args = parser.parse_args()
    _app, sessions = sweep_app(args.database, "bench-compare-sweep-")
    chosen, later = choose_due(sessions, args.due)
    with sessions() as s:
        marks = {table: s.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one()
                 for table in ("notifications", "outbox", "audit_events", "incidents")}
        s.commit()
    with freeze_time(later):
        fired = engine.sweep_timers(sessions, budget_seconds=3600)
    print(f"fired {fired} of {len(chosen)}")
    ids = ",".join(str(i) for i in sorted(chosen))
    names: dict[str, str] = {}
    queries = [
        f"SELECT application_id, timer_due_at, version, serialized FROM workflow_states WHERE application_id IN ({ids}) ORDER BY application_id",
        f"SELECT id, status, summary, updated_at, closed_at FROM applications WHERE id IN ({ids}) ORDER BY id",
        f"SELECT application_id, round, closed_at, outcome, duration_seconds FROM publicity_notices WHERE application_id IN ({ids}) ORDER BY application_id, round",
        f"SELECT id, application_id, unit_id, bpmn_id, name, lane, role, form, assignee_id, state, created_at, context FROM human_tasks WHERE application_id IN ({ids}) ORDER BY application_id, created_at, bpmn_id",
        f"SELECT user_id, application_id, task_id, message, template, params, created_at, read_at FROM notifications WHERE id > {marks['notifications']} ORDER BY id",
        f"SELECT \"to\", subject, body, created_at, attempts, next_attempt_at FROM outbox WHERE id > {marks['outbox']} ORDER BY id",
        f"SELECT log_id, seq, app_seq, at, unit_id, application_id, actor, action, step, detail, data_digest FROM audit_events WHERE id > {marks['audit_events']} ORDER BY log_id, seq",
        "SELECT log_id, size FROM audit_logs ORDER BY log_id",
        f"SELECT application_id, kind, attempts, error, next_retry_at, resolved_at FROM incidents WHERE id > {marks['incidents']} ORDER BY application_id",
        "SELECT * FROM application_counts ORDER BY 1, 2, 3, 4, 5",
        "SELECT * FROM duration_bins ORDER BY 1, 2, 3, 4",
    ]
    with sessions() as s:
        for query in queries:
            print(f"-- {query[:90]}")
            for row in s.execute(text(query)):
                values = []
                for value in row:
                    shown = runtime.state_json(value) if isinstance(value, str) and value.startswith(runtime.COMPRESSED) else value
                    values.append(HEX.sub("<hex>", numbered(str(shown), names)))
                print(" | ".join(values))


if __name__ == "__main__":
    main()
