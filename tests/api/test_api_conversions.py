"""The conversion endpoints: start from a completed grant, the plan and contract through the task
endpoints, income, deductions and a distribution; who may read and who may write."""
from __future__ import annotations

import io

from tests.driver import Driver, example
from workflows import clock

from .conftest import PDF


def completed_grant(app) -> int:
    drive = Driver(app.extensions["grants_sessions"])
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    return app_id


def test_a_conversion_through_the_api(app, api):
    grant_id = completed_grant(app)
    created = api.ok(api.post(f"/applications/{grant_id}/conversions", "researcher1"), 201)
    conv_id = created["id"]
    assert created["kind"] == "conversion" and created["plan"] is None
    assert api.get(f"/conversions/{conv_id}", "researcher9").status_code == 404
    assert api.post(f"/applications/{grant_id}/conversions", "researcher2").status_code == 403
    api.complete(conv_id, "conversion_plan", "tto1", example("conversion_plan"))
    Driver(app.extensions["grants_sessions"]).pass_publicity(conv_id)
    today = clock.local_date(clock.now()).isoformat()
    contract = dict(example("conversion_contract"), signed_on=today)
    api.complete(conv_id, "conversion_contract", "tto1", contract)
    doc = api.ok(api.client.post(f"/api/v1/applications/{conv_id}/attachments", headers=api.headers("tto1"),
                                 data={"file": (io.BytesIO(PDF), "回单.pdf")}), 201)["id"]
    receipt = {"received_on": today, "amount": "1000000.00", "evidence_document_id": doc}
    assert api.post(f"/conversions/{conv_id}/income", "auditor1", receipt).status_code == 403
    assert api.post(f"/conversions/{conv_id}/income", "researcher1", receipt).status_code == 403
    assert api.post(f"/conversions/{conv_id}/income", "tto1", dict(receipt, amount=1000000.0)).status_code == 422
    api.ok(api.post(f"/conversions/{conv_id}/income", "tto1", receipt), 201)
    api.ok(api.post(f"/conversions/{conv_id}/income", "tto1", {
        "category": "taxes", "incurred_on": today, "amount": "100000.00", "evidence_document_id": doc}), 201)
    plan = {"period_from": "2026-01-01", "period_to": today, "net_income": "900000.00", "to_people": "630000.00",
            "to_office": "27000.00", "to_unit": "243000.00",
            "shares": [{"name": "陈强", "amount": "630000.00", "mode": "cash"}]}
    low = dict(plan, to_office="26000.00", to_unit="244000.00")
    refused = api.post(f"/conversions/{conv_id}/distributions", "tto1", low)
    assert refused.status_code == 422 and "3%" in refused.get_json()["errors"][0]["message"]
    made = api.ok(api.post(f"/conversions/{conv_id}/distributions", "tto1", plan), 201)
    assert made["net_income"] == "900000.00" and made["shares"][0]["amount"] == "630000.00"
    shown = api.ok(api.get(f"/conversions/{conv_id}", "researcher2"))
    assert shown["status"] == "completed" and shown["contract"]["amount"] == "1200000.00"
    assert [r["amount"] for r in shown["receipts"]] == ["1000000.00"] and len(shown["distributions"]) == 1
    listed = api.ok(api.get(f"/applications/{grant_id}/conversions", "auditor1"))
    assert [c["id"] for c in listed] == [conv_id]
