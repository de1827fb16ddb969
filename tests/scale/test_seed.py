"""bench/seed.py at small scale (300 applications) leaves a normal database: the audit trail
verifies, the statistics summaries match the rows, the text search (SQLite FTS5 tables and their
triggers, PostgreSQL trigram indexes) answers as ILIKE, every seeded application opens, and a
seeded review can be completed (and the trail still verifies after it)."""
from __future__ import annotations

import re

from sqlalchemy import select

from bench import seed
from tests.driver import Driver, example
from webapp import create_app
from workflows import db
from workflows.evidence import audit
from workflows.models import Application, HumanTask, Unit, User, WorkflowState
from workflows.process import queries, runtime, textsearch
from workflows.process.textsearch import contains
from workflows.reporting import statistics

QUERIES = ["芯片", "低功耗", "U02-20", "-00012", "researcher1", "U03researcher", "号", "tto", "不存在的标题"]


def test_a_small_seed_is_a_normal_database(database_url, capsys):
    seed.main(["--applications", "300", "--units", "3", "--database", database_url, "--workers", "1"])
    out = capsys.readouterr().out
    busiest = re.search(r"busiest tto: (\S+) \((\d+) ready tasks\)", out)
    assert busiest and f"password: {seed.PASSWORD}" in out, out
    engine = db.make_engine(database_url)
    sessions = db.session_factory(engine)
    with sessions() as s:
        assert audit.verify(s) == []
        assert statistics.duration_bin_differences(s) == []
        apps = s.execute(select(Application.id, Application.status)).all()
        assert len(apps) == 300 and {status for _id, status in apps} == set(seed.MIX)
        for app_id, tasks in _ready_tasks(s).items():  # each ready task is one of its state's tasks
            text = runtime.state_json(s.get(WorkflowState, app_id).serialized)
            assert all(f'"{task}"' in text for task in tasks), app_id
        for q in QUERIES:
            like = queries._like(q)
            for column, key in ((Application.number, Application.id), (Application.title, Application.id),
                                (User.name, User.id), (User.username, User.id)):
                indexed = sorted(s.execute(select(key).where(contains(column, key, q))).scalars())
                assert indexed == sorted(s.execute(select(key).where(column.ilike(like))).scalars()), (q, column)
        assert len(s.execute(select(Application.id).where(contains(Application.title, Application.id, "芯片")))
                   .all()) > 100
        if engine.dialect.name == "sqlite":  # the triggers are back, as 0005_search made them
            triggers = set(s.connection().exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
            assert triggers >= {f"{fts}_{event}" for fts in textsearch.FTS_TABLES.values()
                                for event in ("insert", "delete", "update")}
        one_of_each = {status: app_id for app_id, status in apps}
        review = s.execute(select(HumanTask).where(HumanTask.bpmn_id == "review", HumanTask.state == "ready")
                           ).scalars().first()
        review_app, officer = review.application_id, busiest.group(1)
        unit_officer = next(u.username for u in s.execute(select(User)).scalars()
                            if review.unit_id in u.units_for("tto"))
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "WTF_CSRF_ENABLED": False,
                      "SECRET_KEY": "test-secret"})
    try:
        client = app.test_client()
        login = client.post("/login", data={"username": officer, "password": seed.PASSWORD})
        assert login.status_code == 302
        for status, app_id in one_of_each.items():
            if _visible(sessions, officer, app_id):
                assert client.get(f"/applications/{app_id}").status_code == 200, status
    finally:
        app.extensions["grants_engine"].dispose()
    data = example("review") | {"decision": "approve", "comments": ""}
    driver = Driver(sessions)
    driver.complete(review_app, "review", unit_officer, data)
    with sessions() as s:  # a new application after the copies: PostgreSQL's id sequences moved past them
        researcher = next(u for u in s.execute(select(User)).scalars() if u.units_for("researcher"))
        unit_code = s.get(Unit, next(iter(researcher.units_for("researcher")))).code
    new_app = driver.start(who=researcher.username, unit=unit_code)
    with sessions() as s:
        assert new_app == max(s.execute(select(Application.id)).scalars()) > 300
        assert s.get(Application, review_app).status == "deciding"
        assert audit.verify(s) == []
    engine.dispose()


def _ready_tasks(s) -> dict[int, list[str]]:
    tasks: dict[int, list[str]] = {}
    for app_id, task_id in s.execute(select(HumanTask.application_id, HumanTask.id).where(HumanTask.state == "ready")):
        tasks.setdefault(app_id, []).append(task_id)
    return tasks


def _visible(sessions, username: str, app_id: int) -> bool:
    with sessions() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one()
        return s.get(Application, app_id).unit_id in user.units_for("tto")
