"""The evidence pack (ZIP) goes to auditors, the unit's tech-transfer office and the team only."""
from __future__ import annotations

import io
import zipfile

import pytest

pytest.importorskip("workflows.archive", reason="workflows/archive.py (evidence_pack) is not deployed yet")


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
        assert zipfile.ZipFile(io.BytesIO(response.get_data())).testzip() is None
