"""Who may do what through the API: every role refused with the honest status.

404 when the application belongs to another team or unit (its existence is not revealed),
403 when it is visible but the action is not yours, 401 without a token.
"""
from __future__ import annotations

from io import BytesIO

import pytest

from .conftest import PDF, example, other_ip


@pytest.fixture
def world(api):
    """Two SZDU applications: one waiting for researcher3's consent, one waiting for review."""
    consenting = api.start()["id"]
    api.draft(consenting, achievement=other_ip(1))
    api.consent(consenting, users=("researcher1", "researcher2"))
    reviewing = api.to_review()
    doc = api.ok(api.post(f"/applications/{reviewing}/attachments", "researcher1",
                          data={"file": (BytesIO(PDF), "说明.pdf")}, content_type="multipart/form-data"), 201)
    return {"app": reviewing, "consenting": consenting, "doc": doc["id"],
            "review": api.task_id(reviewing, "review", "tto1"),
            "consent3": api.task_id(consenting, "consent", "researcher3")}


def _call(api, world, user, method, path):
    path = path.format(**world)
    if method == "GET":
        return api.get(path, user)
    if path.endswith("/attachments"):
        return api.post(path, user, data={"file": (BytesIO(PDF), "a.pdf")}, content_type="multipart/form-data")
    body = {"kind": "ownership"} if path == "/applications" else (
        example("review") if "{review}" in path else {"agree": True, "comment": ""})
    return api.post(path, user, body)


CASES = [
    # nobody signed in
    (None, "GET", "/me", 401),
    (None, "GET", "/applications", 401),
    (None, "POST", "/applications", 401),
    (None, "GET", "/applications/{app}", 401),
    (None, "GET", "/tasks", 401),
    (None, "POST", "/tasks/{review}/complete", 401),
    (None, "GET", "/documents/{doc}", 401),
    # a researcher of the unit who is not on the team
    ("researcher9", "GET", "/applications/{app}", 404),
    ("researcher9", "GET", "/applications/{app}/documents", 404),
    ("researcher9", "GET", "/applications/{app}/evidence", 404),
    ("researcher9", "GET", "/documents/{doc}", 404),
    ("researcher9", "GET", "/tasks/{review}", 404),
    ("researcher9", "POST", "/tasks/{review}/claim", 404),
    ("researcher9", "POST", "/tasks/{consent3}/complete", 404),
    ("researcher9", "POST", "/applications/{app}/withdraw", 404),
    ("researcher9", "POST", "/applications/{app}/attachments", 404),
    # the tech-transfer officer of the other unit
    ("tto2", "GET", "/applications/{app}", 404),
    ("tto2", "GET", "/applications/{app}/documents", 404),
    ("tto2", "GET", "/documents/{doc}", 404),
    ("tto2", "GET", "/tasks/{review}", 404),
    ("tto2", "POST", "/tasks/{review}/claim", 404),
    ("tto2", "POST", "/tasks/{review}/complete", 404),
    # the auditor reads and never writes
    ("auditor1", "POST", "/applications", 403),
    ("auditor1", "POST", "/tasks/{review}/claim", 403),
    ("auditor1", "POST", "/tasks/{review}/complete", 403),
    ("auditor1", "POST", "/tasks/{consent3}/complete", 403),
    ("auditor1", "POST", "/applications/{app}/withdraw", 403),
    ("auditor1", "POST", "/applications/{app}/attachments", 403),
    ("auditor2", "POST", "/tasks/{review}/claim", 403),
    ("auditor2", "GET", "/applications/{app}", 404),
    # visible, but not this person's step
    ("decider1", "POST", "/tasks/{review}/claim", 403),
    ("decider1", "POST", "/tasks/{review}/complete", 403),
    ("researcher2", "POST", "/tasks/{consent3}/complete", 403),
    ("researcher2", "POST", "/tasks/{review}/complete", 403),
    ("researcher2", "POST", "/applications/{consenting}/withdraw", 403),
    ("tto1", "POST", "/tasks/{consent3}/claim", 403),
    ("tto1", "POST", "/tasks/{consent3}/complete", 403),
    ("signer1", "GET", "/applications/{app}/evidence", 403),
    ("decider1", "POST", "/applications/{app}/attachments", 403),
]


@pytest.mark.parametrize(("user", "method", "path", "status"), CASES,
                         ids=[f"{u or 'anonymous'}-{m}-{p}" for u, m, p, _s in CASES])
def test_refused(api, world, user, method, path, status):
    response = _call(api, world, user, method, path)
    assert response.status_code == status, response.get_json()
    assert isinstance(response.get_json()["error"], str) and response.get_json()["error"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_refusals_change_nothing(api, world):
    for user, method, path, _status in CASES:
        _call(api, world, user, method, path)
    review = api.ok(api.get(f"/tasks/{world['review']}", "tto1"))
    assert review["state"] == "ready" and review["assignee"] is None
    consent = api.ok(api.get(f"/tasks/{world['consent3']}", "researcher3"))
    assert consent["state"] == "ready"
    statuses = {a["id"]: a["status"] for a in api.ok(api.get("/applications", "researcher1"))}
    assert statuses == {world["consenting"]: "consenting", world["app"]: "in_review"}


@pytest.mark.parametrize(("user", "visible"), [
    ("researcher1", {"app", "consenting"}), ("researcher3", {"app", "consenting"}), ("researcher9", set()),
    ("tto1", {"app", "consenting"}), ("auditor1", {"app", "consenting"}), ("tto2", set()), ("auditor2", set()),
    ("admin", {"app", "consenting"}),
])
def test_lists_show_only_what_one_may_see(api, world, user, visible):
    ids = {a["id"] for a in api.ok(api.get("/applications", user))}
    assert ids == {world[k] for k in visible}


def test_task_lists_follow_roles(api, world):
    assert [t["id"] for t in api.ok(api.get("/tasks", "tto1"))] == [world["review"]]
    assert api.ok(api.get("/tasks", "tto2")) == []
    assert api.ok(api.get("/tasks", "auditor1")) == []
    mine = api.ok(api.get("/tasks", "researcher3"))
    assert [t["id"] for t in mine] == [world["consent3"]]
    assert set(mine[0]) == {"id", "application_id", "number", "bpmn_id", "name", "lane", "role", "assignee",
                            "state", "created_at"}
    assert api.ok(api.get("/tasks?step=review&kind=use_right", "tto1")) == []


def test_auditor_reads(api, world):
    app = api.ok(api.get(f"/applications/{world['app']}", "auditor1"))
    assert set(app) == {"id", "number", "kind", "status", "title", "unit", "representative", "created_at",
                        "updated_at", "current_steps", "history"}
    assert app["current_steps"][0]["bpmn_id"] == "review"
    assert app["created_at"].endswith("Z")
    response = api.get(f"/documents/{world['doc']}", "auditor1")
    assert response.status_code == 200 and response.get_data() == PDF
    assert api.ok(api.get(f"/tasks/{world['review']}", "auditor1"))["bpmn_id"] == "review"


def test_team_member_uploads_and_lists_documents(api, world):
    docs = api.ok(api.get(f"/applications/{world['app']}/documents", "researcher2"))
    assert [d["id"] for d in docs] == [world["doc"]]
    assert set(docs[0]) == {"id", "kind", "filename", "content_type", "sha256", "size", "created_at"}
    assert docs[0]["content_type"] == "application/pdf" and docs[0]["size"] == len(PDF)
