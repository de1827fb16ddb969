"""Running instances keep the BPMN version they started with; concurrent sweeps fire each
due timer exactly once."""
from __future__ import annotations

import shutil
import threading

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from tests.driver import Driver
from workflows.models import Application, AuditEvent, HumanTask, ProcessVersion, PublicityNotice
from workflows.process import engine, specs


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def test_running_instances_keep_their_bpmn_version(drive, tmp_path, monkeypatch):
    old_app = drive.start()
    changed = tmp_path / "bpmn"
    shutil.copytree(specs.BPMN_DIR, changed)
    path = changed / "ownership_grant.bpmn"
    path.write_text(path.read_text(encoding="utf-8").replace('name="起草申请"', 'name="起草赋权申请（新版）"'),
                    encoding="utf-8")
    monkeypatch.setattr(specs, "BPMN_DIR", changed)
    monkeypatch.setattr(specs, "current", lambda process_id: specs.library(str(changed))[process_id])
    new_app = drive.start()
    assert [t.name for t in drive.ready(new_app)] == ["起草赋权申请（新版）"]
    assert [t.name for t in drive.ready(old_app)] == ["起草申请"]
    with drive.sessions() as s:
        versions = {a.id: a.state.process_version_id for a in s.execute(select(Application)).scalars()}
        assert versions[old_app] != versions[new_app]
        assert s.execute(select(func.count()).select_from(ProcessVersion)).scalar_one() == 2
    drive.draft(old_app)  # the old instance runs on, on its own version
    assert drive.steps(old_app) == ["consent"] * 3


@pytest.mark.postgres
def test_two_sweeps_at_once_fire_each_timer_once(postgres_sessions):
    factory = postgres_sessions
    drive = Driver(factory)
    for i in range(4):
        app_id = drive.start()
        drive.draft_for_ip(app_id, f"S-{i}")
        drive.consent_all(app_id)
        drive.review(app_id)
        drive.decide(app_id)
    with factory() as s:
        latest_end = s.execute(select(func.max(PublicityNotice.ends_at))).scalar_one()
    counts: list[int] = []
    barrier = threading.Barrier(2)
    with freeze_time(latest_end):
        threads = [threading.Thread(target=_sweep, args=(factory, barrier, counts)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sum(counts) == 4
    with factory() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "timer")) \
            .scalar_one() == 4
        agreement_tasks = s.execute(select(func.count()).select_from(HumanTask).where(
            HumanTask.bpmn_id == "agreement_terms")).scalar_one()
        assert agreement_tasks == 4


def _sweep(factory, barrier: threading.Barrier, counts: list[int]) -> None:
    with factory() as session:
        barrier.wait()
        counts.append(engine.tick(session))
        session.commit()
