"""The public board's API: past notices with their outcome in the list envelope every list uses,
a notice's address answering after its term, and the receipt look-up (number + contact)."""
from __future__ import annotations

from datetime import datetime, timedelta

from freezegun import freeze_time

from workflows import clock, db
from workflows.process import engine

from .conftest import example


def test_past_notices_their_outcome_and_the_receipt_look_up(api, app):
    app_id = api.to_publicity()
    notice = next(n for n in api.ok(api.get("/publicity")) if n["application_id"] == app_id)
    assert api.ok(api.get("/publicity/archive")) == []
    receipt = api.ok(api.post(f"/publicity/{notice['id']}/objections", None, example("objection")), 201)["receipt"]
    contact = example("objection")["contact"]
    handling = api.task_id(app_id, "handle_objection", "tto1")
    api.ok(api.post(f"/tasks/{handling}/complete", "tto1", example("objection_handling")))
    shown = api.ok(api.get(f"/publicity/{notice['id']}"))
    assert shown["outcome"] == "open" and shown["objections"] == 1 and shown["notice_kind"] == "grant"

    with freeze_time(clock.as_utc(datetime.fromisoformat(notice["ends_at"])) + timedelta(hours=1)):
        db.in_transaction(app.extensions["grants_sessions"], engine.tick)
        assert api.ok(api.get("/publicity")) == []
        response = api.get("/publicity/archive?per_page=1")
        rows = api.ok(response)
        assert response.headers["X-Total-Count"] == "1" and 'rel="first"' in response.headers["Link"]
        assert [(r["id"], r["outcome"], r["objections"], r["unit"]) for r in rows] == \
            [(notice["id"], "dismissed", 1, "SZDU")]
        assert rows[0]["closed_at"] and rows[0]["posted_title"] == example("ownership_draft")["achievement"]["title"]
        assert api.ok(api.get("/publicity/archive?kind=price")) == []
        assert api.ok(api.get("/publicity/archive?q=nothing-like-this")) == []
        assert api.ok(api.get(f"/publicity/{notice['id']}"))["outcome"] == "dismissed"   # never a 404

        assert api.post("/publicity/receipts", None, {"receipt": receipt, "contact": "0"}).status_code == 404
        assert api.post("/publicity/receipts", None, {"receipt": receipt}).status_code == 422
        state = api.ok(api.post("/publicity/receipts", None, {"receipt": receipt, "contact": f" {contact} "}))
        assert state["status"] == "dismissed" and state["notice_outcome"] == "dismissed"
        assert state["reasoning"] == example("objection_handling")["reasoning"]
        assert example("objection")["name"] not in str(state)
    assert api.get("/publicity/999999").status_code == 404


def test_receipt_guesses_over_the_api_are_refused_with_429(api):
    for i in range(10):
        wrong = api.post("/publicity/receipts", None, {"receipt": f"YY20260101-{i:08X}", "contact": "13800000000"})
        assert wrong.status_code == 404
    assert api.post("/publicity/receipts", None, {"receipt": "YY20260101-0", "contact": "1"}).status_code == 429
