"""Honest answers to wrong requests: 400 malformed, 404 unknown, 409 wrong state, 422 with every
failing field, 429 over the objection limit, 500 for a tampered document (never its bytes)."""
from __future__ import annotations

import hashlib
from io import BytesIO

import pytest
from sqlalchemy import text

from .conftest import PDF, example


def test_422_lists_every_failing_field_and_changes_nothing(api):
    app_id = api.start()["id"]
    draft = example("ownership_draft")
    draft["members"][2]["share"] = 10   # 50 + 30 + 10 = 90, not 100
    draft["team_share"] = 60            # below the 70 % floor for the team
    task_id = api.task_id(app_id, "draft", "researcher1")
    response = api.post(f"/tasks/{task_id}/complete", "researcher1", draft)
    assert response.status_code == 422
    body = response.get_json()
    assert {e["field"] for e in body["errors"]} >= {"members", "team_share"}
    assert all(e["message"] for e in body["errors"]) and body["error"]
    assert api.ok(api.get(f"/tasks/{task_id}", "researcher1"))["state"] == "ready"


def test_422_schema_errors_name_each_field(api):
    task_id = api.start()["task"]["id"]
    response = api.post(f"/tasks/{task_id}/complete", "researcher1", {"recipient": 5})
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert {"recipient", "achievement", "members", "incentive_mode"} <= fields


def test_409_when_the_task_is_already_completed(api):
    app_id = api.start()["id"]
    api.draft(app_id)
    task_id = api.task_id(app_id, "consent", "researcher2")
    api.ok(api.post(f"/tasks/{task_id}/complete", "researcher2", {"agree": True}))
    again = api.post(f"/tasks/{task_id}/complete", "researcher2", {"agree": True})
    assert again.status_code == 409 and again.get_json()["error"]
    assert api.ok(api.get(f"/tasks/{task_id}", "researcher2"))["state"] == "completed"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/applications/999999"),
    ("GET", "/applications/999999/documents"),
    ("GET", "/applications/999999/evidence"),
    ("POST", "/applications/999999/withdraw"),
    ("POST", "/applications/999999/attachments"),
    ("GET", "/tasks/00000000-0000-0000-0000-000000000000"),
    ("POST", "/tasks/no-such-task/claim"),
    ("POST", "/tasks/no-such-task/complete"),
    ("GET", "/documents/999999"),
    ("POST", "/publicity/999999/objections"),
])
def test_404_for_unknown_ids(api, method, path):
    if method == "GET":
        response = api.get(path, "researcher1")
    elif path.endswith("/objections"):
        response = api.post(path, None, example("objection"))
    else:
        response = api.post(path, "researcher1", {"agree": True})
    assert response.status_code == 404
    assert response.get_json()["error"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"'])
def test_400_for_a_body_that_is_not_a_json_object(api, body):
    task_id = api.start()["task"]["id"]
    response = api.post(f"/tasks/{task_id}/complete", "researcher1", None, data=body,
                        content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]
    assert api.client.post("/api/v1/tokens", data=body, content_type="application/json").status_code == 400


def test_start_refuses_unknown_kind_and_unit(api):
    bad_kind = api.post("/applications", "researcher1", {"kind": "gift"})
    assert bad_kind.status_code == 422 and bad_kind.get_json()["errors"][0]["field"] == "kind"
    bad_unit = api.post("/applications", "researcher1", {"kind": "ownership", "unit": "NOPE"})
    assert bad_unit.status_code == 422 and bad_unit.get_json()["errors"][0]["field"] == "unit"
    not_a_researcher = api.post("/applications", "tto1", {"kind": "ownership"})
    assert not_a_researcher.status_code == 403
    other_unit = api.post("/applications", "researcher1", {"kind": "ownership", "unit": "SZDI"})
    assert other_unit.status_code == 403


def test_withdraw_before_the_decision(api):
    app_id = api.to_review()
    assert api.post(f"/applications/{app_id}/withdraw", "researcher2").status_code == 403  # not the representative
    withdrawn = api.ok(api.post(f"/applications/{app_id}/withdraw", "researcher1"))
    assert withdrawn["status"] == "withdrawn" and withdrawn["current_steps"] == []
    assert api.post(f"/applications/{app_id}/withdraw", "researcher1").status_code == 409
    assert api.ok(api.get("/tasks", "tto1")) == []
    upload = api.post(f"/applications/{app_id}/attachments", "researcher1",
                      data={"file": (BytesIO(PDF), "late.pdf")}, content_type="multipart/form-data")
    assert upload.status_code == 409


def test_publicity_withdraw_objections_and_limits(api):
    app_id = api.to_publicity()
    assert api.post(f"/applications/{app_id}/withdraw", "researcher1").status_code == 409  # the unit has decided
    notice = next(n for n in api.ok(api.get("/publicity")) if n["application_id"] == app_id)
    assert set(notice) == {"id", "application_id", "number", "title", "kind", "starts_at", "ends_at", "last_day"}
    assert api.ok(api.get("/publicity?unit=SZDI")) == []

    incomplete = api.post(f"/publicity/{notice['id']}/objections", None, {"name": "", "reason": "x"})
    assert incomplete.status_code == 422
    assert {"contact"} <= {e["field"] for e in incomplete.get_json()["errors"]}

    receipts = set()
    for _ in range(5):
        receipts.add(api.ok(api.post(f"/publicity/{notice['id']}/objections", None, example("objection")), 201)
                     ["receipt"])
    assert len(receipts) == 5
    too_many = api.post(f"/publicity/{notice['id']}/objections", None, example("objection"))
    assert too_many.status_code == 429 and too_many.get_json()["error"]
    handling = [s for s in api.ok(api.get(f"/applications/{app_id}", "tto1"))["current_steps"]
                if s["bpmn_id"] == "handle_objection"]
    assert len(handling) == 5


def test_a_tampered_document_is_refused_not_served(app, api):
    app_id = api.start()["id"]
    doc = api.ok(api.post(f"/applications/{app_id}/attachments", "researcher1",
                          data={"file": (BytesIO(PDF), "证明.pdf")}, content_type="multipart/form-data"), 201)
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["filename"].endswith(".pdf")
    forged = b"%PDF-1.4\n% forged content\n%%EOF\n"
    with app.extensions["grants_engine"].begin() as conn:
        conn.execute(text("UPDATE documents SET content = :c WHERE id = :id"), {"c": forged, "id": doc["id"]})
    response = api.get(f"/documents/{doc['id']}", "researcher1")
    assert response.status_code == 500
    assert response.mimetype == "application/json" and "SHA-256" in response.get_json()["error"]
    assert forged not in response.get_data() and PDF not in response.get_data()
    assert "ETag" not in response.headers


@pytest.mark.parametrize(("content", "filename"), [(b"MZ\x90\x00 not a pdf", "virus.pdf"), (b"", "empty.pdf")])
def test_uploads_are_judged_by_content(api, content, filename):
    app_id = api.start()["id"]
    response = api.post(f"/applications/{app_id}/attachments", "researcher1",
                        data={"file": (BytesIO(content), filename)}, content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "file"


def test_upload_without_a_file(api):
    app_id = api.start()["id"]
    response = api.post(f"/applications/{app_id}/attachments", "researcher1", data={},
                        content_type="multipart/form-data")
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "file"


def test_upload_too_large(app, api):
    app_id = api.start()["id"]
    app.config["MAX_CONTENT_LENGTH"] = 1024
    big = PDF + b"0" * 2048
    response = api.post(f"/applications/{app_id}/attachments", "researcher1",
                        data={"file": (BytesIO(big), "big.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 413 and response.get_json()["error"]


def test_unknown_api_urls_and_methods_answer_json(api):
    missing = api.get("/no-such-endpoint", "researcher1")
    assert missing.status_code == 404 and missing.get_json()["error"]
    wrong_method = api.client.delete("/api/v1/me")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]
