"""Fixtures for the REST API tests: the real app on a fresh SQLite file, the demo users, and a
small client that speaks JSON with bearer tokens, as an API consumer would."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from webapp import create_app
from workflows import clock, db, demo
from workflows.process import forms

PASSWORD = demo.DEMO_PASSWORD
PDF = b"%PDF-1.4\n% api test attachment\n%%EOF\n"


def example(form: str) -> dict[str, Any]:
    return copy.deepcopy(forms.load_schema(f"{form}.schema.json")["examples"][0])


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory, sqlite_template) -> Path:
    """The migrated template plus the demo users, seeded once (password hashing is slow on purpose)."""
    path = tmp_path_factory.mktemp("api-template") / "seeded.db"
    shutil.copy(sqlite_template, path)
    engine_ = db.make_engine(f"sqlite:///{path}")
    with db.session_factory(engine_)() as session:
        demo.seed(session)
        session.commit()
    engine_.dispose()
    return path


@pytest.fixture
def app(tmp_path, seeded_template):
    """A fresh SQLite file per test. CSRF stays on: the API must work without a CSRF token
    because it only accepts bearer tokens."""
    path = tmp_path / "api.db"
    shutil.copy(seeded_template, path)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "api-test-secret"})
    yield app
    app.extensions["grants_engine"].dispose()


class Api:
    """JSON calls as a given demo user (None: anonymous). Tokens are cached per user; call
    `forget()` after moving the clock, since a token is only valid for 12 hours."""

    def __init__(self, app, tokens: dict[str, str]):
        self.app, self.client, self.tokens = app, app.test_client(), tokens

    def forget(self) -> None:
        self.tokens = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            response = self.client.post("/api/v1/tokens", json={"username": user, "password": PASSWORD})
            assert response.status_code == 201, response.get_json()
            self.tokens[user] = response.get_json()["token"]
        return self.tokens[user]

    def headers(self, user: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"} if user else {}

    def get(self, path: str, user: str | None = None, headers: dict | None = None, **kwargs):
        return self.client.get(f"/api/v1{path}", headers={**self.headers(user), **(headers or {})}, **kwargs)

    def post(self, path: str, user: str | None = None, json: Any = None, headers: dict | None = None, **kwargs):
        return self.client.post(f"/api/v1{path}", headers={**self.headers(user), **(headers or {})}, json=json,
                                **kwargs)

    def ok(self, response, status: int = 200):
        assert response.status_code == status, (response.status_code, response.get_json())
        return response.get_json()

    # -- walking an application through its steps -----------------------------------------
    def start(self, kind: str = "ownership", user: str = "researcher1") -> dict[str, Any]:
        return self.ok(self.post("/applications", user, {"kind": kind}), 201)

    def task_id(self, app_id: int, step: str, user: str) -> str:
        """The ready task of that step the user would work on (theirs, or an unclaimed queue task)."""
        app = self.ok(self.get(f"/applications/{app_id}", user))
        for s in app["current_steps"]:
            if s["bpmn_id"] == step and s["assignee"] in (None, user):
                return s["task_id"]
        raise AssertionError(f"no {step} for {user}: {app['current_steps']}")

    def complete(self, app_id: int, step: str, user: str, data: dict[str, Any]) -> dict[str, Any]:
        task_id = self.task_id(app_id, step, user)
        return self.ok(self.post(f"/tasks/{task_id}/complete", user, data))

    def draft(self, app_id: int, **changes) -> dict[str, Any]:
        data = example("ownership_draft")
        data.update(changes)
        return self.complete(app_id, "draft", "researcher1", data)

    def consent(self, app_id: int, users=("researcher1", "researcher2", "researcher3")) -> None:
        for user in users:
            self.complete(app_id, "consent", user, {"agree": True, "comment": "同意"})

    def decision(self) -> dict[str, Any]:
        data = example("unit_decision")
        data["meeting_date"] = clock.local_date(clock.now()).isoformat()
        return data

    def to_review(self, **draft_changes) -> int:
        app_id = self.start()["id"]
        self.draft(app_id, **draft_changes)
        self.consent(app_id)
        return app_id

    def to_publicity(self, **draft_changes) -> int:
        app_id = self.to_review(**draft_changes)
        self.complete(app_id, "review", "tto1", example("review"))
        self.complete(app_id, "unit_decision", "decider1", self.decision())
        return app_id


@pytest.fixture(scope="session")
def demo_tokens() -> dict[str, str]:
    """Every test starts from the same seeded users and secret, so a token issued in one test is
    valid in the next: sharing them saves a deliberately slow password check per user and test."""
    return {}


@pytest.fixture
def api(app, demo_tokens) -> Api:
    return Api(app, demo_tokens)


def other_ip(n: int) -> dict[str, Any]:
    """A draft achievement with its own patent number: the same one twice is double reward."""
    achievement = example("ownership_draft")["achievement"]
    achievement["ip_numbers"] = [f"ZL20231012345{n}.X"]
    return achievement
