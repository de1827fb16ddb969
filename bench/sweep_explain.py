"""Query plans of every sweep query: `python bench/sweep_explain.py URL` (SQLite `EXPLAIN QUERY
PLAN`, PostgreSQL `EXPLAIN ANALYZE`), run from the root of the code on a copy of a seed."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.getcwd())

from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from workflows import clock, db
from workflows.conversion import watch
from workflows.evidence import audit
from workflows.models import Application, AuditLog, HumanTask, LoginThrottle
from workflows.people import accounts, notify
from workflows.process import engine, sweep


def queries() -> dict[str, object]:
    now = clock.now()
    never, again = notify.reminders_due(now)
    watched = aliased(Application)
    return {
        "timers due (probe)": select(exists(engine.due_timers(now))),
        "timers: pick next (tick)": engine._due(1, [1, 2]),
        **({"timers: a batch of due ids (sweep_timers)": select(engine.WorkflowState.application_id).where(
                *engine._due_conditions(now), engine.WorkflowState.application_id.not_in([1, 2]))
            .order_by(engine.WorkflowState.timer_due_at).limit(engine.SWEEP_BATCH),
            "timers: one due instance by id (sweep_timers)": engine._DUE_BY_ID.params(app_id=1, now=now)}
           if hasattr(engine, "_DUE_BY_ID") else {}),
        "reminders never reminded": select(HumanTask.id).where(*never).limit(20),
        "reminders again": select(HumanTask.id).where(*again).limit(20),
        "throttles stale": select(exists().where(*accounts.stale_throttles(now)).select_from(LoginThrottle)),
        "mail due": notify.due_mail(now).limit(50),
        "heads moved": select(AuditLog.log_id).where(audit.heads_moved()),
        "unwatched grants (backfill)": select(Application.id).where(
            Application.kind.in_(watch.GRANT_KINDS), Application.status == "completed",
            ~exists().where(watched.original_id == Application.id, watched.kind == watch.KIND))
        .order_by(Application.id).limit(1),
        "whole probe (sweep.pending)": None,
    }


def main() -> None:
    sessions = db.session_factory(db.make_engine(sys.argv[1]))
    with sessions() as session:
        conn = session.connection()
        captured: list[object] = []
        real = session.execute
        session.execute = lambda statement, *a, **k: (captured.append(statement), real(statement, *a, **k))[1]
        sweep.pending(session)
        session.execute = real
        for name, listed in queries().items():
            query = listed if listed is not None else captured[0]
            compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            params = tuple(compiled.params[k] for k in compiled.positiontup) if compiled.positiontup else compiled.params
            print(f"-- {name}")
            prefix = ("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " if conn.dialect.name == "postgresql"
                      else "EXPLAIN QUERY PLAN ")
            for row in conn.exec_driver_sql(prefix + str(compiled), params).all():
                print("   ", row[-1] if conn.dialect.name == "sqlite" else row[0])


if __name__ == "__main__":
    main()
