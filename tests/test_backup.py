"""`grants backup` / `grants restore` on SQLite and PostgreSQL: a completed grant survives the
round trip with its audit chain and every document intact, secrets stay out unless asked for,
a non-empty target is refused, a damaged backup is refused, and a backup taken while writes go
on is one consistent moment."""
from __future__ import annotations

import json
import os
import threading

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from tests.conftest import _postgres_db
from tests.driver import Driver
from workflows import backup as backups
from workflows import db
from workflows.documents import document_store
from workflows.evidence import audit
from workflows.models import Application, AuditEvent, Document


@pytest.fixture
def empty_url(database_url, tmp_path):
    """A second database of the same kind with nothing in it (not even the schema)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'grants.db'}"
        return
    url, drop = _postgres_db(None)
    yield url
    drop()


def _instance(path):
    (path / "keys" / "units" / "SZDU").mkdir(parents=True)
    (path / "keys" / "unit-SZDU.pub").write_text("PUBLIC KEY SZDU\n")
    (path / "keys" / "unit-SZDU.key").write_text("SECRET KEY SZDU\n")
    # the names `grants keys init` writes: public key and unit CA certificate in, secrets out
    (path / "keys" / "checkpoint-ed25519.pub.pem").write_text("PUBLIC CHECKPOINT KEY\n")
    (path / "keys" / "checkpoint-ed25519.key.pem").write_text("SECRET CHECKPOINT KEY\n")
    (path / "keys" / "flask-secret.key").write_text("SECRET\n")
    (path / "keys" / "units" / "SZDU" / "ca.cert.pem").write_text("UNIT CA CERTIFICATE\n")
    (path / "keys" / "units" / "SZDU" / "ca.key.pem").write_text("UNIT CA KEY\n")
    (path / "anchors" / "2026").mkdir(parents=True)
    (path / "anchors" / "2026" / "12.json").write_text('{"last_hash": "abc"}')
    return path


def _counts(url):
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as s:
            return {"apps": s.scalar(select(func.count()).select_from(Application)),
                    "events": s.scalar(select(func.count()).select_from(AuditEvent)),
                    "docs": sorted(s.execute(select(Document.id, Document.sha256)).all()),
                    "statuses": sorted(s.execute(select(Application.status)).scalars())}
    finally:
        engine.dispose()


def test_a_completed_grant_survives_backup_and_restore(database_url, sessions, empty_url, tmp_path):
    drive = Driver(sessions)
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    assert drive.status(app_id) == "completed"
    instance = _instance(tmp_path / "served-instance")

    manifest = backups.backup(database_url, instance, tmp_path / "backup")

    assert len(manifest["documents"]) >= 4  # decision record, notice, agreement, evidence...
    assert {f["path"] for f in manifest["files"]} == {
        "instance/keys/unit-SZDU.pub", "instance/keys/checkpoint-ed25519.pub.pem",
        "instance/keys/units/SZDU/ca.cert.pem", "instance/anchors/2026/12.json"}
    assert not (tmp_path / "backup" / "instance" / "keys" / "unit-SZDU.key").exists()
    restored = tmp_path / "restored-instance"
    result = backups.restore(tmp_path / "backup", empty_url, restored)
    assert result["problems"] == []
    assert _counts(empty_url) == _counts(database_url)
    assert (restored / "keys" / "unit-SZDU.pub").read_text() == "PUBLIC KEY SZDU\n"
    assert (restored / "anchors" / "2026" / "12.json").exists()
    assert not (restored / "keys" / "unit-SZDU.key").exists()
    engine = db.make_engine(empty_url)
    with db.session_factory(engine)() as s:
        assert audit.verify(s) == []
        for doc in s.execute(select(Document)).scalars():
            document_store.read(doc)  # raises if the bytes do not hash to the recorded SHA-256
    engine.dispose()


def test_restore_refuses_a_non_empty_target_unless_forced(database_url, sessions, empty_url, tmp_path):
    drive = Driver(sessions)
    drive.draft(drive.start())
    backups.backup(database_url, tmp_path / "none", tmp_path / "backup")
    before = _counts(database_url)
    drive.start()  # the live database moves on; restoring over it must be asked for
    with pytest.raises(backups.BackupError, match="--force"):
        backups.restore(tmp_path / "backup", database_url, tmp_path / "target-instance")
    assert _counts(database_url)["apps"] == before["apps"] + 1
    result = backups.restore(tmp_path / "backup", database_url, tmp_path / "target-instance", force=True)
    assert result["problems"] == []
    assert _counts(database_url) == before
    with pytest.raises(backups.BackupError, match="不是空目录"):
        backups.backup(database_url, tmp_path / "none", tmp_path / "backup")


def test_a_damaged_backup_is_refused_before_anything_is_touched(sqlite_url, tmp_path):
    backups.backup(sqlite_url, _instance(tmp_path / "served-instance"), tmp_path / "backup")
    (tmp_path / "backup" / "instance" / "anchors" / "2026" / "12.json").write_text('{"last_hash": "forged"}')
    target = tmp_path / "target" / "grants.db"
    with pytest.raises(backups.BackupError, match="SHA-256"):
        backups.restore(tmp_path / "backup", f"sqlite:///{target}", tmp_path / "restored")
    assert not target.exists() and not (tmp_path / "restored").exists()


def test_secrets_only_with_secrets(sqlite_url, tmp_path):
    manifest = backups.backup(sqlite_url, _instance(tmp_path / "served-instance"), tmp_path / "backup", with_secrets=True)
    assert "instance/keys/unit-SZDU.key" in {f["path"] for f in manifest["files"]}
    assert manifest["with_secrets"] is True


def test_a_backup_taken_while_writes_go_on_is_consistent(database_url, sessions, empty_url, tmp_path):
    """A writer keeps adding documents and audit events; the backup is one moment of it."""
    stop, written, errors = threading.Event(), [0], []

    def write():
        while not stop.is_set() and written[0] < 400:
            try:
                db.in_transaction(sessions, lambda s: (
                    document_store.store(s, None, "test", "load.bin", os.urandom(2000), "application/octet-stream"),
                    audit.record(s, actor="writer", action="load_write")))
                written[0] += 1
            except Exception as exc:
                errors.append(exc)
                return

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 20 and writer.is_alive():
            stop.wait(0.01)
        manifest = backups.backup(database_url, tmp_path / "none", tmp_path / "backup")
        during = written[0]
    finally:
        stop.set()
        writer.join(30)
    assert not errors, errors
    assert manifest["audit"]["last_id"] >= 20
    assert written[0] > manifest["audit"]["last_id"] or during < 400  # writes went on around the backup
    result = backups.restore(tmp_path / "backup", empty_url, tmp_path / "restored")
    assert result["problems"] == []
    engine = db.make_engine(empty_url)
    with db.session_factory(engine)() as s:  # one document per event: the same moment for both
        loads = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "load_write"))
        assert loads == len(manifest["documents"]) >= 20
        assert s.scalar(select(func.max(AuditEvent.id))) == manifest["audit"]["last_id"]
    engine.dispose()


def test_the_grants_commands_back_up_and_restore(sqlite_url, sessions_sqlite_app, tmp_path):
    app, restored_app = sessions_sqlite_app
    runner = CliRunner()
    from webapp.cli import backup_command, restore_command, verify_audit
    result = runner.invoke(backup_command, [str(tmp_path / "bk")], obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    assert "备份完成" in result.output
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["backend"] == "sqlite" and manifest["database"]["sha256"]
    result = runner.invoke(restore_command, [str(tmp_path / "bk")], obj=ScriptInfo(create_app=lambda: restored_app))
    assert result.exit_code == 0, result.output
    assert "恢复完成并已核验" in result.output
    result = runner.invoke(verify_audit, obj=ScriptInfo(create_app=lambda: restored_app))
    assert result.exit_code == 0, result.output
    result = runner.invoke(restore_command, [str(tmp_path / "bk")], obj=ScriptInfo(create_app=lambda: restored_app))
    assert result.exit_code == 1 and "--force" in result.output


@pytest.fixture
def sessions_sqlite_app(sqlite_url, tmp_path):
    """An app on a seeded SQLite database with one draft, and one on an empty database."""
    from webapp import create_app
    from workflows import demo
    engine = db.make_engine(sqlite_url)
    drive = Driver(db.session_factory(engine))
    drive.run(demo.seed)
    drive.draft(drive.start())
    engine.dispose()
    apps = [create_app({"TESTING": True, "DATABASE_URL": url, "AUDIT_KEY": "test-audit-key"})
            for url in (sqlite_url, f"sqlite:///{tmp_path / 'restored' / 'grants.db'}")]
    apps[1].instance_path = str(tmp_path / "restored-instance")
    yield apps
    for app in apps:
        app.extensions["grants_engine"].dispose()
