"""The evidence pack of a completed grant holds every document, the submitted data, the audit
trail and the publicity record, and its manifest proves each file."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest

from tests.driver import Driver, example
from tests.engine.test_paths import _objection
from workflows import archive, documents, queries
from workflows.errors import Forbidden
from workflows.models import Application


def test_evidence_pack_of_a_completed_grant(sessions):
    drive = Driver(sessions)
    app_id = drive.to_publicity()
    _objection(drive, app_id)
    drive.complete(app_id, "handle_objection", "tto1", {"decision": "dismiss", "reasoning": "异议不成立。"})
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    with sessions() as s:
        app = s.get(Application, app_id)
        name, pack = archive.evidence_pack(s, app, drive.user(s, "auditor1"))
        stored = {d.sha256 for d in queries.documents(s, app)}
        with pytest.raises(Forbidden):
            archive.evidence_pack(s, app, drive.user(s, "signer1"))
    assert name.startswith(app.number)
    assert documents.verify_evidence_pack(pack) == []
    z = zipfile.ZipFile(io.BytesIO(pack))
    pdfs = [n for n in z.namelist() if n.startswith("documents/")]
    assert {hashlib.sha256(z.read(n)).hexdigest() for n in pdfs} == stored
    assert any("协议（已签署）" in n for n in pdfs)
    form = json.loads(z.read("form_data.json"))
    assert form["submitted"]["draft"]["achievement"]["title"] == example("ownership_draft")["achievement"]["title"]
    assert {s["role"] for s in form["signatures"]} == {"representative", "unit"}
    assert "demo-pass-2026" not in z.read("form_data.json").decode()
    publicity = json.loads(z.read("publicity.json"))
    notice = publicity["notices"][0]
    assert notice["outcome"] == "passed" and notice["objections"][0]["status"] == "dismissed"
    trail = list(csv.DictReader(io.StringIO(z.read("audit_trail.csv").decode("utf-8-sig"))))
    assert {"start", "complete_task", "objection", "timer"} <= {row["action"] for row in trail}
