"""Failures change nothing; timers fire exactly at their due time; the audit chain exposes
any edit; concurrent completions of one task let exactly one through."""
from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from freezegun import freeze_time
from sqlalchemy import delete, select, text
from sqlalchemy.exc import OperationalError

from tests.driver import Driver, example
from tests.engine.test_policy import snapshot
from workflows import clock
from workflows.errors import Conflict
from workflows.evidence import audit, keys, pack_verify
from workflows.models import Application, AuditCheckpoint, AuditEvent, AuditLog, HumanTask, PublicityNotice, Unit
from workflows.process import engine, operations


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def test_an_exception_inside_a_step_leaves_everything_as_it_was(drive, monkeypatch):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id)
    drive.review(app_id)
    before = snapshot(drive, app_id)

    def broken(ctx, data, params):
        raise RuntimeError("renderer crashed")
    monkeypatch.setitem(operations.OPERATIONS, "record_decision", broken)
    with pytest.raises(Exception, match="renderer crashed"):
        drive.decide(app_id)
    assert snapshot(drive, app_id) == before
    monkeypatch.undo()
    drive.decide(app_id)
    assert drive.status(app_id) == "publicity"


def test_publicity_ends_at_its_due_time_and_not_a_second_earlier(drive):
    app_id = drive.to_publicity()
    with drive.sessions() as s:
        notice = s.query(PublicityNotice).filter_by(application_id=app_id).one()
        ends_at, starts_at = notice.ends_at, notice.starts_at
    assert ends_at - starts_at >= timedelta(days=15)
    with freeze_time(ends_at - timedelta(seconds=1)):
        assert drive.tick() == 0
        assert drive.status(app_id) == "publicity"
    with freeze_time(ends_at):
        assert drive.tick() == 1
        assert drive.status(app_id) == "agreement"


def test_tick_reads_only_due_instances(drive):
    waiting = drive.to_publicity()
    statements = []
    from sqlalchemy import event
    engine_ = drive.sessions.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine_, "before_cursor_execute", listener)
    try:
        drive.tick()
    finally:
        event.remove(engine_, "before_cursor_execute", listener)
    assert any("timer_due_at <=" in s for s in statements)
    assert not any("FROM workflow_states" in s and "timer_due_at" not in s for s in statements)
    assert drive.status(waiting) == "publicity"  # not due for 15 days: the tick left it alone


@pytest.mark.postgres
def test_two_sessions_completing_one_task_exactly_one_wins(postgres_sessions):
    factory = postgres_sessions
    drive = Driver(factory)
    for round_ in range(3):
        app_id = drive.start()
        drive.draft_for_ip(app_id, f"ZL-{round_}")
        drive.consent_all(app_id)
        task_id = drive.task_id(app_id, "review")
        barrier = threading.Barrier(2)
        results: list[str] = []
        threads = [threading.Thread(target=_attempt, args=(factory, task_id, barrier, results)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == ["conflict", "ok"]
        assert drive.status(app_id) == "deciding"
        with factory() as s:
            assert s.execute(select(HumanTask).where(HumanTask.application_id == app_id,
                                                     HumanTask.bpmn_id == "unit_decision")).scalars().all()
            assert audit.verify(s) == []


def _attempt(factory, task_id: str, barrier: threading.Barrier, results: list[str]) -> None:
    """One of two people pressing submit on the same review at the same moment."""
    with factory() as session:
        user = Driver.user(session, "tto1")
        barrier.wait()
        try:
            engine.complete_task(session, user, task_id, example("review"))
            session.commit()
            results.append("ok")
        except Conflict:
            session.rollback()
            results.append("conflict")


# -- the audit log: tampering by someone with database write access is detected -------------------
def _events(drive: Driver, extra: int = 60) -> int:
    """A real application's events plus `extra` system events in unit 1's log, then a checkpoint."""
    app_id = drive.start()
    drive.draft(app_id)
    with drive.sessions() as s:
        unit_id = drive.app(app_id).unit_id
        for n in range(extra):
            audit.record(s, actor="system", action="reminder", unit_id=unit_id, detail={"n": n})
        s.commit()
    _checkpoint(drive)
    return unit_id


def _checkpoint(drive: Driver) -> None:
    with drive.sessions() as s:
        audit.checkpoint_all(s)
        s.commit()


def _rewrite(s, log_id: int, forge_checkpoints: bool = True) -> None:
    """What an attacker with DB access does after tampering: recompute every leaf and the head
    (nothing secret is needed), and re-sign the checkpoints with a key of their own."""
    frontier = []
    rows = s.execute(select(AuditEvent).where(AuditEvent.log_id == log_id).order_by(AuditEvent.seq)).scalars().all()
    for row in rows:
        row.leaf_hash = pack_verify.leaf_hash(audit.leaf_fields(row))
        pack_verify.frontier_append(frontier, row.leaf_hash)
    head = s.get(AuditLog, log_id)
    head.size, head.frontier, head.root = len(rows), frontier, pack_verify.frontier_root(frontier)
    s.execute(delete(AuditCheckpoint).where(AuditCheckpoint.log_id == log_id, AuditCheckpoint.size > len(rows)))
    if forge_checkpoints:
        forger = Ed25519PrivateKey.generate()
        for cp in s.execute(select(AuditCheckpoint).where(AuditCheckpoint.log_id == log_id)).scalars():
            root = _root_of(s, log_id, cp.size)
            body = dict(cp.body, root=root)
            body["signature"] = base64.b64encode(forger.sign(pack_verify.checkpoint_body(body))).decode()
            cp.root, cp.body = root, body
    s.flush()


def _root_of(s, log_id: int, size: int) -> str:
    frontier = []
    for leaf in s.execute(select(AuditEvent.leaf_hash).where(AuditEvent.log_id == log_id, AuditEvent.seq < size)
                          .order_by(AuditEvent.seq)).scalars():
        pack_verify.frontier_append(frontier, leaf)
    return pack_verify.frontier_root(frontier)


def _renumber(s, log_id: int) -> None:
    rows = s.execute(select(AuditEvent).where(AuditEvent.log_id == log_id).order_by(AuditEvent.seq)).scalars().all()
    for row in rows:
        row.seq = -1 - row.seq  # out of the way of the unique (log_id, seq)
    s.flush()
    for n, row in enumerate(rows):
        row.seq = n
    s.flush()


def _edit(s, log_id):
    row = s.execute(select(AuditEvent).where(AuditEvent.log_id == log_id, AuditEvent.action == "complete_task")
                    ).scalars().first()
    row.actor = "someone_else"


def _delete_tail(count):
    def tamper(s, log_id):
        rows = s.execute(select(AuditEvent).where(AuditEvent.log_id == log_id).order_by(AuditEvent.seq.desc())
                         .limit(count)).scalars().all()
        for row in rows:
            s.delete(row)
        s.flush()
    return tamper


def _insert(s, log_id):
    s.execute(text("UPDATE audit_events SET seq = seq + 1000 WHERE log_id = :l AND seq >= 3"), {"l": log_id})
    s.add(AuditEvent(log_id=log_id, seq=3, leaf_version=2, at=clock.now(), unit_id=log_id, actor="tto1",
                     action="reminder", step="", detail={}, data_digest=audit.digest({}), leaf_hash=""))
    s.flush()
    _renumber(s, log_id)


def _swap(s, log_id):
    a, b = s.execute(select(AuditEvent).where(AuditEvent.log_id == log_id, AuditEvent.action == "reminder")
                     .order_by(AuditEvent.seq).limit(2)).scalars().all()
    first, second = a.seq, b.seq
    a.seq = -5
    s.flush()
    b.seq = first
    s.flush()
    a.seq = second
    s.flush()


TAMPERINGS = {"edited": _edit, "last-1-deleted": _delete_tail(1), "last-50-deleted": _delete_tail(50),
              "inserted": _insert, "swapped": _swap}


@pytest.mark.parametrize("forge", [True, False], ids=["checkpoints-forged", "checkpoints-kept"])
@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_verify_audit_detects_a_rewrite_by_someone_with_database_access(database_url, sessions, tampering, forge):
    drive = Driver(sessions)
    log_id = _events(drive)
    assert _verify_cli(database_url) == (0, "审计记录完整，与签名检查点一致，未发现篡改")
    with sessions() as s:
        TAMPERINGS[tampering](s, log_id)
        _rewrite(s, log_id, forge_checkpoints=forge)
        s.commit()
        assert s.execute(select(AuditLog.size).where(AuditLog.log_id == log_id)).scalar() > 0
    code, output = _verify_cli(database_url)
    assert code == 1, output
    assert "日志" in output and "核验未通过" in output


def test_verify_audit_sees_checkpoints_deleted_from_the_database_in_the_anchor_file(database_url, sessions):
    drive = Driver(sessions)
    log_id = _events(drive)
    with sessions() as s:
        _delete_tail(50)(s, log_id)
        _rewrite(s, log_id)
        s.execute(delete(AuditCheckpoint))
        s.commit()
    code, output = _verify_cli(database_url)
    assert code == 1 and "末尾记录被删除" in output, output


def test_swapping_two_events_is_detected_even_without_the_head_row(sessions):
    drive = Driver(sessions)
    log_id = _events(drive, extra=4)
    with sessions() as s:
        _swap(s, log_id)
        s.execute(delete(AuditLog))
        assert any("检查点" in p for p in audit.verify(s))
        s.rollback()
        assert audit.verify(s) == []


def test_checkpoints_are_signed_kept_in_the_database_and_the_anchor_file(sessions):
    drive = Driver(sessions)
    log_id = _events(drive, extra=2)
    with sessions() as s:
        latest = audit.latest_checkpoint(s, log_id)
        size = s.get(AuditLog, log_id).size
    assert latest["size"] == size and latest["log_id"] == log_id and latest["time"].endswith("+08:00")
    assert pack_verify.checkpoint_signature_ok(latest, keys.checkpoint_public_key())
    lines = [json.loads(line) for line in audit.anchor_path().read_text().splitlines()]
    assert latest in lines
    with sessions() as s:  # nothing moved: no new checkpoint; a rolled-back one never reaches the file
        assert audit.checkpoint_all(s) == 0
        audit.record(s, actor="system", action="reminder", unit_id=log_id)
        assert audit.checkpoint_all(s) == 1
        s.rollback()
    assert len(audit.anchor_path().read_text().splitlines()) == len(lines)


def test_an_anchor_file_line_altered_is_reported(database_url, sessions):
    drive = Driver(sessions)
    _events(drive, extra=1)
    path = audit.anchor_path()
    path.write_text(path.read_text().replace('"size":', '"size":1', 1))
    code, output = _verify_cli(database_url)
    assert code == 1 and "锚定文件" in output, output


def _verify_cli(database_url: str) -> tuple[int, str]:
    from webapp import create_app
    from webapp.cli import verify_audit
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    try:
        result = CliRunner().invoke(verify_audit, obj=_script_info(app))
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output.strip()
    finally:
        app.extensions["grants_engine"].dispose()


def _script_info(app):
    from flask.cli import ScriptInfo
    return ScriptInfo(create_app=lambda: app)


@pytest.mark.postgres
def test_two_units_appending_to_their_logs_do_not_wait_on_each_other(postgres_sessions):
    """Each thread holds its unit's head lock while the other appends; with one global head the
    second would block (shown by the same-unit case, which times out on the lock)."""
    with postgres_sessions() as s:
        units = [u.id for u in s.execute(select(Unit).order_by(Unit.id)).scalars().all()[:2]]
    assert len(units) == 2
    assert _both_hold_their_lock(postgres_sessions, units) == ["ok", "ok"]
    assert sorted(_both_hold_their_lock(postgres_sessions, [units[0], units[0]])) == ["blocked", "ok"]
    with postgres_sessions() as s:
        assert audit.verify(s) == []


def _both_hold_their_lock(factory, units: list[int]) -> list[str]:
    results: list[str] = []
    first_holds = threading.Event()
    both = threading.Barrier(2, timeout=15)

    def append(unit_id: int, first: bool) -> None:
        with factory() as s:
            if not first:
                first_holds.wait(15)
                s.execute(text("SET LOCAL lock_timeout = '2s'"))
            try:
                audit.record(s, actor="system", action="reminder", unit_id=unit_id)
                audit.append_pending(s)  # takes the head lock (a commit would do it last)
            except OperationalError:
                s.rollback()
                results.append("blocked")
                both.abort()
                return
            if first:
                first_holds.set()
            try:
                both.wait()  # both hold their head lock at once
                results.append("ok")
            except threading.BrokenBarrierError:
                results.append("ok")
            s.commit()

    threads = [threading.Thread(target=append, args=(unit, n == 0)) for n, unit in enumerate(units)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


# -- keys ----------------------------------------------------------------------------------------
def test_keys_init_makes_private_files_once_and_refuses_readable_ones(tmp_path):
    created = keys.init(tmp_path)
    assert set(created) == {keys.CHECKPOINT_KEY, keys.CHECKPOINT_PUBLIC, keys.SECRET_KEY}
    for name in (keys.CHECKPOINT_KEY, keys.SECRET_KEY):
        assert (tmp_path / "keys" / name).stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "keys" / keys.CHECKPOINT_KEY).read_bytes()
    assert keys.init(tmp_path) == [] and (tmp_path / "keys" / keys.CHECKPOINT_KEY).read_bytes() == before
    assert keys.problems(tmp_path, keys.secret_key(tmp_path)) == []
    (tmp_path / "keys" / keys.CHECKPOINT_KEY).chmod(0o640)
    with pytest.raises(keys.KeyProblem, match="chmod 600"):
        keys.checkpoint_key(tmp_path)
    (tmp_path / "keys" / keys.SECRET_KEY).chmod(0o604)
    with pytest.raises(keys.KeyProblem, match="可被其他用户读取"):
        keys.secret_key(tmp_path)


def test_keys_init_runs_the_hooks_the_lead_adds(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(keys, "INIT_HOOKS", [lambda instance: seen.append(instance) or ["unit-ca"]])
    assert "unit-ca" in keys.init(tmp_path) and seen == [tmp_path]


def test_create_app_reads_the_secret_key_file(tmp_path, monkeypatch):
    from webapp import create_app
    monkeypatch.delenv("GRANTS_SECRET_KEY", raising=False)
    monkeypatch.setenv("GRANTS_INSTANCE", str(tmp_path))
    keys.init(tmp_path)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    try:
        assert app.config["SECRET_KEY"] == (tmp_path / "keys" / keys.SECRET_KEY).read_text().strip()
        assert len(app.config["SECRET_KEY"]) >= 48
    finally:
        app.extensions["grants_engine"].dispose()


@pytest.mark.parametrize("command", ["run", "tick"])
@pytest.mark.parametrize("setup", ["no-keys", "old-secret", "old-audit-key"])
def test_run_and_tick_refuse_without_real_keys(tmp_path, monkeypatch, command, setup):
    from webapp import cli, create_app
    monkeypatch.setenv("GRANTS_INSTANCE", str(tmp_path))
    monkeypatch.delenv("GRANTS_SECRET_KEY", raising=False)
    config = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    if setup != "no-keys":
        keys.init(tmp_path)
    if setup == "old-secret":
        config["SECRET_KEY"] = "dev-secret-change-me"
    if setup == "old-audit-key":
        monkeypatch.setenv("GRANTS_AUDIT_KEY", "dev-audit-key")
    app = create_app(config)
    try:
        result = CliRunner().invoke(getattr(cli, command), obj=_script_info(app))
    finally:
        app.extensions["grants_engine"].dispose()
    assert result.exit_code == 1 and "grants keys init" in result.output, result.output
    assert not (tmp_path / "x.db").exists() or command == "tick"


def test_keys_init_and_demo_commands_create_the_keys(tmp_path, monkeypatch):
    from webapp import cli, create_app
    monkeypatch.setenv("GRANTS_INSTANCE", str(tmp_path))
    monkeypatch.delenv("GRANTS_SECRET_KEY", raising=False)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    try:
        result = CliRunner().invoke(cli.keys_group, ["init"], obj=_script_info(app))
        assert result.exit_code == 0 and keys.CHECKPOINT_KEY in result.output, result.output
        result = CliRunner().invoke(cli.keys_group, ["init"], obj=_script_info(app))
        assert "新建：无" in result.output
        assert keys.problems(tmp_path, app.config["SECRET_KEY"]) == []
    finally:
        app.extensions["grants_engine"].dispose()


def test_the_sweep_signs_every_log_whose_head_moved(database_url, sessions):
    from webapp import create_app
    from webapp.cli import tick_once
    drive = Driver(sessions)
    app_id = drive.start()
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    try:
        tick_once(app)
        with sessions() as s:
            unit_id = s.get(Application, app_id).unit_id
            assert audit.latest_checkpoint(s, unit_id)["size"] == s.get(AuditLog, unit_id).size
    finally:
        app.extensions["grants_engine"].dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path):
    """A database with no schema at all (to migrate step by step)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    from tests.conftest import POSTGRES_URL
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not started")
    from tests.conftest import _postgres_db
    url, drop = _postgres_db(None)
    yield url
    drop()


def test_migration_0003_turns_the_hmac_chain_into_verifiable_logs(empty_database_url):
    from alembic import command
    from alembic.config import Config

    from workflows import db
    engine_ = db.make_engine(empty_database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine_
    try:
        command.upgrade(cfg, "0002")
        with engine_.begin() as conn:
            for n, (unit, app) in enumerate([(1, 7), (None, None), (1, 7), (2, 8), (1, 7)], start=1):
                conn.execute(text("INSERT INTO audit_events (id, at, unit_id, application_id, actor, action, step, "
                                  "detail, data_digest, prev_hash, hash) VALUES (:id, :at, :u, :a, 'tto1', 'claim', "
                                  "'review', :d, :dd, :p, :h)"),
                             {"id": n, "at": clock.now(), "u": unit, "a": app, "d": json.dumps({"n": n, "名": "值"}),
                              "dd": audit.digest({}), "p": "0" * 64, "h": f"{n:064d}"})
            conn.execute(text("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 5, :h)"), {"h": f"{5:064d}"})
        command.upgrade(cfg, "head")
        factory = db.session_factory(engine_)
        with factory() as s:
            assert audit.verify(s) == []
            logs = {h.log_id: h.size for h in s.execute(select(AuditLog)).scalars()}
            assert logs == {0: 1, 1: 3, 2: 1}
            seqs = s.execute(select(AuditEvent.app_seq).where(AuditEvent.application_id == 7)
                             .order_by(AuditEvent.seq)).scalars().all()
            assert seqs == [1, 2, 3]
            event = audit.record(s, actor="tto1", action="claim", unit_id=1, application_id=7)
            assert event.seq is None and audit.pending(s) == 1  # queued: appended when the transaction commits
            audit.append_pending(s)
            assert (event.id, event.seq, event.app_seq) == (6, 3, 4)
            audit.checkpoint_all(s)
            s.commit()
            assert audit.verify(s) == []
            s.execute(text("UPDATE audit_events SET actor = 'x' WHERE id = 1"))
            assert audit.verify(s)
            s.rollback()
    finally:
        engine_.dispose()


def test_verify_audit_streams_in_bounded_memory(tmp_path, monkeypatch):
    """Memory does not grow with the log: nine times the events, about the same peak."""
    import tracemalloc

    from bench.bench_audit import fill
    from workflows import db, settings
    monkeypatch.setattr(audit, "BATCH", 200)
    peaks = []
    for events in (1000, 9000):
        instance = tmp_path / f"i{events}"  # its own anchor file, the suite's keys
        instance.mkdir()
        (instance / "keys").symlink_to(keys.keys_dir(), target_is_directory=True)
        settings.configure(instance_dir=str(instance))
        engine_ = db.make_engine(f"sqlite:///{instance}/grants.db")
        db.create_schema(engine_)
        factory = db.session_factory(engine_)
        try:
            fill(factory, events)
            with factory() as s:
                tracemalloc.start()
                assert audit.verify(s) == []
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
        finally:
            engine_.dispose()
    assert peaks[1] < 1.5 * peaks[0] + 256 * 1024, peaks


def test_verify_audit_names_the_unsigned_window(sessions):
    drive = Driver(sessions)
    log_id = _events(drive, extra=1)
    with sessions() as s:
        audit.record(s, actor="system", action="reminder", unit_id=log_id)
        audit.record(s, actor="system", action="reminder", unit_id=log_id)
        s.commit()
        notes: list[str] = []
        assert audit.verify(s, notes=notes) == []
        assert notes == [f"提示：日志{log_id}最新的2条记录尚未被签名检查点覆盖（下一次定时任务将签名）"]
