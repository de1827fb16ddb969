"""Finding 2 of issue 11: during publicity, after an objection was handled, the application page
lost its 申请内容 (the summary read model had no draft). The summary must keep what was filed at
every point of the publicity sub-process; its trail marks the 公示 call activity running, then done
(finding 4)."""
from __future__ import annotations

import pytest

from tests.driver import Driver, example
from workflows import publicity
from workflows.models import PublicityNotice
from workflows.process import engine


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def _filed(drive: Driver, app_id: int) -> dict:
    return drive.run(lambda s: dict(drive.app(app_id).summary or {}))


def _object_and_dismiss(drive: Driver, app_id: int) -> None:
    notice_id = drive.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id).one().id)
    drive.run(lambda s: publicity.file_objection(s, notice_id, example("objection"), "c0"))
    task_id = drive.task_id(app_id, "handle_objection")
    drive.run(lambda s: engine.complete_task(s, drive.user(s, "tto1"), task_id,
                                             {"decision": "dismiss", "reasoning": "不成立。"}))


def test_summary_keeps_the_draft_through_publicity_with_a_handled_objection(drive):
    app_id = drive.to_publicity()
    members = example("ownership_draft")["members"]
    assert _filed(drive, app_id)["draft"]["members"] == members
    _object_and_dismiss(drive, app_id)
    assert drive.status(app_id) == "publicity" and drive.steps(app_id) == []
    summary = _filed(drive, app_id)
    assert summary.get("draft", {}).get("members") == members, summary
    assert summary["draft"]["achievement"]["title"] == example("ownership_draft")["achievement"]["title"]
    assert "publicity" in summary["trail"]["current"] and "publicity" not in summary["trail"]["completed"]
    assert {"draft", "consent", "review", "unit_decision", "record_decision"} <= set(summary["trail"]["completed"])
    drive.pass_publicity(app_id)
    after = _filed(drive, app_id)
    assert after["draft"]["members"] == members
    assert "publicity" in after["trail"]["completed"] and after["trail"]["current"] == ["agreement_terms"]
