"""Applications, downloads checked against SHA-256, the diagram, auditors' list and CSV, admin."""
from __future__ import annotations

import hashlib
import io

from sqlalchemy import update

from workflows.models import Document

from .conftest import login, text_of

PDF = b"%PDF-1.4\n%%EOF\n"


def test_new_application_redirects_to_its_first_task(client, driver):
    login(client, "researcher1")
    assert "赋予所有权" in text_of(client.get("/applications/new"))
    response = client.post("/applications/new", data={"unit_id": "1", "kind": "ownership"})
    assert response.status_code == 302 and response.location.startswith("/tasks/")
    assert "<h1>起草申请 " in client.get(response.location).get_data(as_text=True)  # headed by its first step
    listing = text_of(client.get("/applications"))
    assert "SZDU-" in listing and "起草中" in listing


def test_new_application_errors(client):
    login(client, "researcher1")
    bad_kind = client.post("/applications/new", data={"unit_id": "1", "kind": "lottery"})
    assert bad_kind.status_code == 422 and "申请类型只能是" in text_of(bad_kind)
    no_origin = client.post("/applications/new", data={"unit_id": "1", "kind": "extension",
                                                       "original_number": "SZDU-2020-0001"})
    assert no_origin.status_code == 404 and "原赋权申请不存在" in text_of(no_origin)
    other_unit = client.post("/applications/new", data={"unit_id": "2", "kind": "ownership"})
    assert other_unit.status_code == 403


def test_application_page_shows_summary_team_history_and_diagram(client, driver):
    app_id = driver.start()
    driver.draft(app_id)
    login(client, "researcher2")
    page = client.get(f"/applications/{app_id}")
    text = text_of(page)
    for expected in ("一种低功耗图像识别芯片架构", "待成员确认", "王芳 30%", "办理记录", "创建申请", "提交", "团队成员确认"):
        assert expected in text, expected
    assert "data-bpmn-url" in page.get_data(as_text=True)  # the suite runs with bpmn-js installed
    assert "流程图查看器未安装" not in text
    xml = client.get(f"/applications/{app_id}/diagram.bpmn")
    assert xml.status_code == 200
    assert xml.mimetype == "application/xml"
    assert b"bpmndi:BPMNDiagram" in xml.data


def test_viewer_missing_is_said_not_crashed(client, driver, monkeypatch):
    from webapp import filters
    monkeypatch.setattr(filters, "VIEWER_JS", "vendor/missing.js")
    app_id = driver.start()
    login(client, "researcher1")
    assert "流程图查看器未安装" in text_of(client.get(f"/applications/{app_id}"))


def _uploaded(client, driver, app_id) -> int:
    task = driver.task_id(app_id, "draft", "researcher1")
    response = client.post(f"/tasks/{task}/upload", data={"file": (io.BytesIO(PDF), "a.pdf")},
                           headers={"Accept": "application/json"})
    return response.get_json()["id"]


def test_download_sets_etag_to_sha256_and_refuses_tampered_bytes(client, app, driver):
    app_id = driver.start()
    login(client, "researcher1")
    doc_id = _uploaded(client, driver, app_id)
    response = client.get(f"/documents/{doc_id}")
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["ETag"].strip('"') == hashlib.sha256(PDF).hexdigest()
    with app.extensions["grants_sessions"]() as s:
        s.execute(update(Document).where(Document.id == doc_id).values(content=b"%PDF-1.4 forged"))
        s.commit()
    tampered = client.get(f"/documents/{doc_id}")
    assert tampered.status_code == 500
    assert b"forged" not in tampered.data and "可能已被篡改" in text_of(tampered)


def test_auditor_list_filters_and_csv(client, driver):
    first = driver.start()
    driver.draft(first)
    driver.start()
    login(client, "auditor1")
    page = text_of(client.get("/audit"))
    assert page.count("SZDU-2") >= 2
    assert "一种低功耗图像识别芯片架构" in text_of(client.get("/audit?q=芯片"))
    assert "SZDU-" not in text_of(client.get("/audit?status=completed"))
    assert "SZDU-" not in text_of(client.get("/audit?kind=use_right"))
    csv = client.get("/audit/export.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.data.startswith(b"\xef\xbb\xbf")
    lines = csv.data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("申请编号,单位") and len(lines) == 3
    client.post("/logout")
    login(client, "auditor2")
    assert "SZDU-" not in text_of(client.get("/audit"))
    assert len(client.get("/audit/export.csv").data.decode("utf-8-sig").splitlines()) == 1


def test_admin_units_users_and_process_versions(client, driver):
    driver.start()
    login(client, "admin")
    assert client.post("/admin/units", data={"code": "SZH", "name": "深圳示范医院"}).status_code == 302
    assert "深圳示范医院" in text_of(client.get("/admin/units"))
    dup = client.post("/admin/units", data={"code": "SZH", "name": "重复"})
    assert dup.status_code == 422 and "单位代码已存在" in text_of(dup)
    created = client.post("/admin/users", data={"username": "doc1", "name": "钱医生", "password": "doctor-pass-2026",
                                                 "email": "", "role": ["researcher", ""], "unit": ["SZH", ""]})
    assert created.status_code == 302
    assert "钱医生" in text_of(client.get("/admin/users"))
    dup_user = client.post("/admin/users", data={"username": "doc1", "name": "x", "password": "doctor-pass-2026"})
    assert dup_user.status_code == 422 and "已存在" in text_of(dup_user)
    from sqlalchemy import select

    from workflows.models import User
    with driver.sessions() as s:
        doc = s.execute(select(User).where(User.username == "doc1")).scalar_one()
        assert [(g.role, g.unit.code) for g in doc.roles] == [("researcher", "SZH")]
        doc_id = doc.id
    assert client.post(f"/admin/users/{doc_id}/active", data={"active": "0"}).status_code == 302
    client.post("/logout")
    assert client.post("/login", data={"username": "doc1", "password": "doctor-pass-2026"}).status_code == 401
    login(client, "admin")
    versions = text_of(client.get("/admin/processes"))
    assert "ownership_grant" in versions
