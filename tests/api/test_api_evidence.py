"""The evidence pack (ZIP) goes to auditors, the unit's tech-transfer office and the team only."""
from __future__ import annotations

import io
import json
import zipfile

import pytest


@pytest.mark.parametrize(("user", "status"), [
    ("auditor1", 200), ("tto1", 200), ("researcher2", 200), ("researcher1", 200),
    ("signer1", 403), ("decider1", 403), ("researcher9", 404), ("tto2", 404), ("auditor2", 404), (None, 401),
])
def test_evidence_pack_access(api, user, status):
    app_id = api.to_review()
    response = api.get(f"/applications/{app_id}/evidence", user)
    assert response.status_code == status
    if status == 200:
        assert response.mimetype == "application/zip"
        assert "attachment" in response.headers["Content-Disposition"]
        archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
        assert archive.testzip() is None
        number = api.get(f"/applications/{app_id}", "auditor1").get_json()["number"]
        assert json.loads(archive.read("application.json"))["number"] == number
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["number"] == number
        assert "application.json" in {f["name"] for f in manifest["files"]}


def test_a_downloaded_pack_verifies_offline_and_names_objectors_only_for_auditors(api):
    from workflows.evidence import pack_verify
    app_id = api.to_review()
    pack = api.get(f"/applications/{app_id}/evidence", "auditor1").get_data()
    assert pack_verify.verify(pack) == []
    events = __import__("json").loads(zipfile.ZipFile(io.BytesIO(pack)).read("audit/events.json"))
    assert events[-1]["leaf"]["action"] == "evidence_pack" and events[-1]["leaf"]["actor"] == "auditor1"
    second = api.get(f"/applications/{app_id}/evidence", "researcher1").get_data()
    assert pack_verify.verify(second) == []  # the first download was committed and is part of the log
    assert len(__import__("json").loads(zipfile.ZipFile(io.BytesIO(second)).read("audit/events.json"))) == len(events) + 1
