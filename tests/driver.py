"""Walks applications through the engine the way requests do: one session and one commit per
step, so the workflow state is saved to and reloaded from the database between steps."""
from __future__ import annotations

import copy
from typing import Any

from freezegun import freeze_time
from sqlalchemy import select

from workflows import clock, db
from workflows.models import Application, HumanTask, PublicityNotice, Unit, User
from workflows.process import engine, forms

PASSWORD = "demo-pass-2026"


def example(form: str) -> dict[str, Any]:
    return copy.deepcopy(forms.load_schema(f"{form}.schema.json")["examples"][0])


class Driver:
    def __init__(self, sessions):
        self.sessions = sessions

    def run(self, action):
        """One transaction, as one request: commit on success, roll back on any error."""
        return db.in_transaction(self.sessions, action)

    @staticmethod
    def user(session, username: str) -> User:
        return session.execute(select(User).where(User.username == username)).scalar_one()

    def start(self, kind: str = "ownership", who: str = "researcher1", unit: str = "SZDU",
              original_number: str | None = None) -> int:
        def action(session):
            u = session.execute(select(Unit).where(Unit.code == unit)).scalar_one()
            return engine.start_application(session, self.user(session, who), u, kind, original_number).id
        return self.run(action)

    def ready(self, app_id: int, bpmn_id: str | None = None) -> list[HumanTask]:
        with self.sessions() as session:
            query = select(HumanTask).where(HumanTask.application_id == app_id, HumanTask.state == "ready")
            if bpmn_id:
                query = query.where(HumanTask.bpmn_id == bpmn_id)
            return list(session.execute(query.order_by(HumanTask.created_at)).scalars())

    def task_id(self, app_id: int, bpmn_id: str, who: str | None = None) -> str:
        tasks = self.ready(app_id, bpmn_id)
        if who is not None:
            with self.sessions() as session:
                uid = self.user(session, who).id
            tasks = [t for t in tasks if t.assignee_id in (None, uid)]
        assert tasks, f"no ready {bpmn_id} task for {who} in application {app_id}: {self.steps(app_id)}"
        return tasks[0].id

    def complete(self, app_id: int, bpmn_id: str, who: str, data: dict[str, Any]) -> None:
        task_id = self.task_id(app_id, bpmn_id, who)
        self.run(lambda s: engine.complete_task(s, self.user(s, who), task_id, data))

    def app(self, app_id: int) -> Application:
        with self.sessions() as session:
            return session.get(Application, app_id)

    def status(self, app_id: int) -> str:
        return self.app(app_id).status

    def steps(self, app_id: int) -> list[str]:
        return sorted(t.bpmn_id for t in self.ready(app_id))

    def tick(self) -> int:
        return self.run(engine.tick)

    # -- paths ---------------------------------------------------------------------------
    def draft(self, app_id: int, kind: str = "ownership", **changes) -> dict[str, Any]:
        data = example(f"{kind}_draft")
        data.update(changes)
        self.complete(app_id, "draft", "researcher1", data)
        return data

    def draft_for_ip(self, app_id: int, number: str) -> None:
        """A draft for its own achievement, so several can run without the no-double-reward rule."""
        self.draft(app_id, achievement=dict(example("ownership_draft")["achievement"], ip_numbers=[number]))

    def consent_all(self, app_id: int, refuse: str | None = None) -> None:
        for who in ("researcher1", "researcher2", "researcher3"):
            self.complete(app_id, "consent", who, {"agree": who != refuse, "comment": ""})

    def review(self, app_id: int, decision: str = "approve", **changes) -> None:
        data = example("review")
        data.update(decision=decision, comments="请补充转化方案。" if decision != "approve" else "", **changes)
        self.complete(app_id, "review", "tto1", data)

    def decide(self, app_id: int, result: str = "approve", step: str = "unit_decision") -> None:
        data = example("unit_decision")
        data.update(result=result, meeting_date=clock.local_date(clock.now()).isoformat(),
                    reason="理由见会议纪要。")
        self.complete(app_id, step, "decider1", data)

    def to_publicity(self, kind: str = "ownership") -> int:
        app_id = self.start(kind)
        self.draft(app_id, kind)
        self.consent_all(app_id)
        self.review(app_id)
        self.decide(app_id)
        assert self.status(app_id) == "publicity"
        return app_id

    def pass_publicity(self, app_id: int) -> None:
        """Move the clock to the end of the open notice's term and let the sweep fire."""
        with self.sessions() as session:
            ends_at = session.execute(select(PublicityNotice.ends_at).where(
                PublicityNotice.application_id == app_id, PublicityNotice.closed_at.is_(None))).scalar_one()
        with freeze_time(ends_at):
            self.tick()
        assert self.status(app_id) == "agreement", self.steps(app_id)

    def sign_both(self, app_id: int) -> None:
        self.complete(app_id, "sign_representative", "researcher1", {"decision": "sign", "password": PASSWORD})
        self.complete(app_id, "sign_unit", "signer1", {"decision": "sign", "password": PASSWORD})

    def finish(self, app_id: int, kind: str = "ownership") -> None:
        self.complete(app_id, "agreement_terms", "tto1", example(f"{kind}_terms"))
        self.sign_both(app_id)
        self.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
        self.complete(app_id, "complete_archive", "tto1", example("completion"))


class SnapshotDriver(Driver):
    """A Driver on a fresh database (`url`) whose first `to_publicity(kind)` is copied from a walk
    made once per backend and kind by the `snapshot` fixture (the walk renders and signs two
    PDFs, the same for every test); any other first step seeds the demo data as usual."""

    def __init__(self, url: str, snapshot):
        self._url, self._snapshot, self._engine, self._factory = url, snapshot, None, None

    @property
    def sessions(self):
        if self._factory is None:
            _seed(self._url)
            self._open()
        return self._factory

    def _open(self) -> None:
        self._engine = db.make_engine(self._url)
        self._factory = db.session_factory(self._engine)

    def to_publicity(self, kind: str = "ownership") -> int:
        if self._factory is not None:
            return super().to_publicity(kind)
        app_id = self._snapshot(self._url, f"publicity-{kind}", lambda url: _walk_to_publicity(url, kind))
        self._open()
        return app_id

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _seed(url: str) -> None:
    from workflows import demo
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as session:
            demo.seed(session)
            session.commit()
    finally:
        engine.dispose()


def _walk_to_publicity(url: str, kind: str) -> int:
    _seed(url)
    engine = db.make_engine(url)
    try:
        return Driver(db.session_factory(engine)).to_publicity(kind)
    finally:
        engine.dispose()
