"""A whole ownership grant (赋予所有权) through the REST API, from the draft to the archive, with a
public objection during publicity and the signed agreement downloaded by an auditor."""
from __future__ import annotations

import gc
import hashlib
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time

from workflows import clock
from workflows.process import engine

from .conftest import PASSWORD, example


def _tick(app) -> int:
    with app.app_context(), app.extensions["grants_sessions"]() as session:
        fired = engine.tick(session)
        session.commit()
    return fired


# WeasyPrint 70 opens its sRGB ICC profile for PDF/A output (the final agreement) and never
# closes it; the ResourceWarning is WeasyPrint's, not ours. gc.collect() at the end makes it
# surface inside this test, where it is ignored, instead of in whichever test runs next.
@pytest.mark.filterwarnings("ignore:Exception ignored in.*sRGB2014:pytest.PytestUnraisableExceptionWarning")
def test_ownership_grant_end_to_end(app, api):
    me = api.ok(api.get("/me", "researcher1"))
    assert me["username"] == "researcher1" and {"role": "researcher", "unit": "SZDU"} in me["roles"]

    created = api.start()
    app_id = created["id"]
    assert created["status"] == "draft" and created["unit"] == "SZDU"
    assert created["task"]["bpmn_id"] == "draft" and created["task"]["assignee"] == "researcher1"

    detail = api.ok(api.get(f"/tasks/{created['task']['id']}", "researcher1"))
    assert detail["schema"]["type"] == "object" and "ui_schema" in detail and isinstance(detail["data"], dict)

    api.draft(app_id)
    consent_for = {s["assignee"] for s in api.ok(api.get(f"/applications/{app_id}", "researcher1"))["current_steps"]}
    assert consent_for == {"researcher1", "researcher2", "researcher3"}
    api.consent(app_id)

    review = api.task_id(app_id, "review", "tto1")
    assert review in [t["id"] for t in api.ok(api.get("/tasks?step=review", "tto1"))]
    claimed = api.ok(api.post(f"/tasks/{review}/claim", "tto1"))
    assert claimed["assignee"] == "tto1"
    api.complete(app_id, "review", "tto1", example("review"))
    after_decision = api.complete(app_id, "unit_decision", "decider1", api.decision())
    assert after_decision["status"] == "publicity"

    # The public board lists the notice; anyone may object without a token.
    notices = [n for n in api.ok(api.get("/publicity")) if n["application_id"] == app_id]
    assert len(notices) == 1 and notices[0]["number"] == created["number"]
    receipt = api.ok(api.post(f"/publicity/{notices[0]['id']}/objections", None,
                              example("objection")), 201)
    assert receipt["receipt"].startswith("YY")
    assert api.post(f"/applications/{app_id}/withdraw", "researcher1").status_code == 409  # decided already

    handling = api.task_id(app_id, "handle_objection", "tto1")
    api.ok(api.post(f"/tasks/{handling}/complete", "tto1", example("objection_handling")))

    ends_at = clock.as_utc(datetime.fromisoformat(notices[0]["ends_at"]))
    with freeze_time(ends_at + timedelta(hours=1)):
        api.forget()  # tokens issued 15 days ago have expired
        assert _tick(app) == 1
        assert api.ok(api.get(f"/applications/{app_id}", "tto1"))["status"] == "agreement"
        api.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
        api.complete(app_id, "sign_representative", "researcher1", {"decision": "sign", "password": PASSWORD})
        api.complete(app_id, "sign_unit", "signer1", {"decision": "sign", "password": PASSWORD})
        api.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
        done = api.complete(app_id, "complete_archive", "tto1", example("completion"))
    assert done["status"] == "completed" and done["current_steps"] == []

    api.forget()
    history = api.ok(api.get(f"/applications/{app_id}", "auditor1"))["history"]
    assert [e["action"] for e in history][:2] == ["start", "complete_task"]
    assert {"objection", "timer"} <= {e["action"] for e in history}

    documents = api.ok(api.get(f"/applications/{app_id}/documents", "auditor1"))
    final = [d for d in documents if d["kind"] == "agreement_final"]
    assert len(final) == 1
    response = api.get(f"/documents/{final[0]['id']}", "auditor1")
    assert response.status_code == 200
    body = response.get_data()
    assert body.startswith(b"%PDF")
    assert response.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"' == f'"{final[0]["sha256"]}"'
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "filename" in response.headers["Content-Disposition"]

    again = api.get(f"/documents/{final[0]['id']}", "auditor1",
                    headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    gc.collect()
