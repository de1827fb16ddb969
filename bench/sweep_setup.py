"""What the sweep benchmarks share (`sweep_profile.py`, `sweep_parts.py`, `compare_sweep_output.py`):
the app on a seeded copy with its own keys, and a chosen number of waiting instances made due."""
from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from webapp import create_app
from workflows import settings
from workflows.evidence import keys
from workflows.models import WorkflowState
from workflows.process import engine


def sweep_app(database: str, prefix: str) -> tuple[Any, Any]:
    """The app on `database` (a copy: the benchmarks change it) and its session factory; mail goes
    nowhere, and the watches are taken as started (the seed's one-off backfill is not measured)."""
    instance = tempfile.mkdtemp(prefix=prefix)
    keys.init(instance)
    app = create_app({"DATABASE_URL": database, "SECRET_KEY": "bench"})
    app.instance_path = instance
    settings.configure(instance_dir=instance, smtp_port=1)
    sessions = app.extensions["grants_sessions"]
    engine._WATCHES_COMPLETE.add(sessions)
    return app, sessions


def choose_due(sessions: Any, due: int) -> tuple[list[int], datetime]:
    """The `due` soonest waiting instances, and a time just past their terms; every other waiting
    timer is moved a year past it, so a sweep under that clock fires exactly the chosen ones."""
    with sessions() as s:
        waiting = s.execute(select(WorkflowState.application_id, WorkflowState.timer_due_at)
                            .where(WorkflowState.timer_due_at.is_not(None))
                            .order_by(WorkflowState.timer_due_at, WorkflowState.application_id)).all()
        chosen = [app_id for app_id, _ in waiting[:due]]
        later = waiting[min(due, len(waiting)) - 1][1] + timedelta(seconds=1)
        s.execute(update(WorkflowState).where(WorkflowState.timer_due_at.is_not(None),
                                              WorkflowState.application_id.not_in(chosen))
                  .values(timer_due_at=later + timedelta(days=365)))
        s.commit()
    return chosen, later
