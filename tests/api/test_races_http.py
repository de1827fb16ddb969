"""Races over HTTP against a real server thread (issue 8, finding 12), on both databases: two
officers completing one task at once give one 200 and one 409; two claims at once give a
success and a 409, never a 500."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.driver import example
from tests.engine.test_lost_update import add_second_officer, assert_one_completion, hold_both_steps, review_task
from tests.live import call, serve, token
from webapp import create_app
from workflows import demo
from workflows.models import AuditEvent, HumanTask


@pytest.fixture
def app(database_url):
    application = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "race-test", "SMTP_PORT": 1})
    sessions = application.extensions["grants_sessions"]
    with sessions() as s:
        demo.seed(s)
        s.commit()
    add_second_officer(sessions)
    yield application
    application.extensions["grants_engine"].dispose()


def _at_once(calls) -> list[int]:
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda c=c: statuses.append(c().status_code)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sorted(statuses)


def test_two_officers_complete_one_task_at_once_over_http(app, monkeypatch):
    sessions = app.extensions["grants_sessions"]
    app_id, task_id = review_task(sessions)
    hold_both_steps(monkeypatch)
    with serve(app) as base:
        tokens = [token(base, who) for who in ("tto1", "tto3")]
        statuses = _at_once([lambda t=t: call(base, "POST", f"/tasks/{task_id}/complete", t, json=example("review"))
                             for t in tokens])
    assert statuses == [200, 409]
    assert_one_completion(sessions, app_id, task_id)


def test_two_claims_at_once_over_http(app):
    sessions = app.extensions["grants_sessions"]
    _app_id, task_id = review_task(sessions)
    with serve(app) as base:
        tokens = {who: token(base, who) for who in ("tto1", "tto3")}
        answers: dict[str, list[int]] = {"tto1": [], "tto3": []}

        def claim(who):
            answers[who].append(call(base, "POST", f"/tasks/{task_id}/claim", tokens[who]).status_code)
        threads = [threading.Thread(target=claim, args=(who,)) for who in ("tto1", "tto3", "tto1", "tto3")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    with sessions() as s:
        holder = s.get(HumanTask, task_id).assignee.username
        claims = s.execute(select(AuditEvent.actor).where(AuditEvent.action == "claim")).scalars().all()
    other = "tto3" if holder == "tto1" else "tto1"
    assert answers[holder] == [200, 200] and answers[other] == [409, 409]  # never a 500
    assert set(claims) == {holder}
