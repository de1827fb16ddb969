"""Every path of every diagram, end to end through the database (state reloaded each step)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time

from tests.driver import PASSWORD, Driver, SnapshotDriver, example
from workflows import clock, publicity
from workflows.errors import WrongState
from workflows.models import Application, Objection, PublicityNotice, RegistryEntry, RegistryHistory, Signature
from workflows.process import queries


@pytest.fixture
def drive(database_url, snapshot) -> Driver:
    """A test that starts with to_publicity gets a copy of one walk made per backend and kind."""
    driver = SnapshotDriver(database_url, snapshot)
    yield driver
    driver.close()


def _objection(drive: Driver, app_id: int, client: str = "client-a") -> Objection:
    notice_id = drive.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id, closed_at=None).one().id)
    return drive.run(lambda s: publicity.file_objection(s, notice_id, example("objection"), client))


@pytest.mark.parametrize("kind", ["ownership", "use_right"])
def test_grant_runs_from_draft_to_completion(drive, kind):
    app_id = drive.start(kind)
    assert drive.steps(app_id) == ["draft"] and drive.status(app_id) == "draft"
    drive.draft(app_id, kind)
    assert drive.steps(app_id) == ["consent"] * 3
    drive.consent_all(app_id)
    assert drive.status(app_id) == "in_review"
    drive.review(app_id)
    assert drive.status(app_id) == "deciding"
    drive.decide(app_id)
    assert drive.status(app_id) == "publicity"
    drive.pass_publicity(app_id)
    drive.complete(app_id, "agreement_terms", "tto1", example(f"{kind}_terms"))
    assert drive.status(app_id) == "signing"
    drive.sign_both(app_id)
    assert drive.status(app_id) == "ip_transfer"
    drive.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
    drive.complete(app_id, "complete_archive", "tto1", example("completion"))
    app = drive.app(app_id)
    assert app.status == "completed" and app.closed_at is not None
    with drive.sessions() as s:
        kinds = [d.kind for d in queries.documents(s, s.get(Application, app_id))]
        assert {"decision_record", "publicity_notice", "agreement_draft", "agreement_final"} <= set(kinds)
        entry = s.query(RegistryEntry).filter_by(application_id=app_id).one()
        assert (entry.status, entry.grant_kind) == ("granted", kind)


def test_return_for_revision_and_resubmit(drive):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id)
    drive.review(app_id, "return")
    assert drive.steps(app_id) == ["draft"] and drive.status(app_id) == "draft"
    drive.draft(app_id, conversion_plan="补充后的转化方案。")
    drive.consent_all(app_id)
    drive.review(app_id)
    assert drive.status(app_id) == "deciding"


def test_refusal_at_review_is_final_and_kept(drive):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id)
    drive.review(app_id, "refuse")
    assert drive.status(app_id) == "refused" and drive.steps(app_id) == []


def test_refusal_by_unit_decision(drive):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id)
    drive.review(app_id)
    drive.decide(app_id, "refuse")
    assert drive.status(app_id) == "refused"


def test_unit_may_send_back_to_review(drive):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id)
    drive.review(app_id)
    drive.decide(app_id, "return")
    assert drive.steps(app_id) == ["review"]


def test_member_refusal_sends_back_to_draft_and_a_second_round_works(drive):
    app_id = drive.start()
    drive.draft(app_id)
    drive.consent_all(app_id, refuse="researcher3")
    assert drive.steps(app_id) == ["draft"]
    drive.draft(app_id)
    drive.consent_all(app_id)
    assert drive.status(app_id) == "in_review"


@pytest.mark.parametrize("stage", ["draft", "consent", "review", "unit_decision"])
def test_withdrawal_until_the_unit_decides(drive, stage):
    from workflows.process import engine
    app_id = drive.start()
    if stage != "draft":
        drive.draft(app_id)
    if stage in ("review", "unit_decision"):
        drive.consent_all(app_id)
    if stage == "unit_decision":
        drive.review(app_id)
    drive.run(lambda s: engine.withdraw(s, drive.user(s, "researcher1"), app_id))
    assert drive.status(app_id) == "withdrawn" and drive.steps(app_id) == []


def test_withdrawal_refused_after_decision(drive):
    from workflows.process import engine
    app_id = drive.to_publicity()
    with pytest.raises(WrongState):
        drive.run(lambda s: engine.withdraw(s, drive.user(s, "researcher1"), app_id))
    assert drive.status(app_id) == "publicity"


def test_objection_dismissed_publicity_goes_on(drive):
    app_id = drive.to_publicity()
    objection = _objection(drive, app_id)
    assert drive.steps(app_id) == ["handle_objection"]
    drive.complete(app_id, "handle_objection", "tto1", {"decision": "dismiss", "reasoning": "不成立。"})
    assert drive.status(app_id) == "publicity"
    drive.pass_publicity(app_id)
    with drive.sessions() as s:
        assert s.get(Objection, objection.id).status == "dismissed"
        assert s.query(PublicityNotice).filter_by(application_id=app_id).one().outcome == "passed"


def test_two_objections_in_one_term(drive):
    app_id = drive.to_publicity()
    _objection(drive, app_id, "a")
    _objection(drive, app_id, "b")
    assert drive.steps(app_id) == ["handle_objection", "handle_objection"]
    for _ in range(2):
        drive.complete(app_id, "handle_objection", "tto1", {"decision": "dismiss", "reasoning": "不成立。"})
    drive.pass_publicity(app_id)


def test_open_objection_holds_the_next_step_after_the_term(drive):
    app_id = drive.to_publicity()
    _objection(drive, app_id)
    with freeze_time(clock.now() + timedelta(days=17)):
        drive.tick()
        assert drive.steps(app_id) == ["handle_objection"]
        drive.complete(app_id, "handle_objection", "tto1", {"decision": "dismiss", "reasoning": "不成立。"})
    assert drive.status(app_id) == "agreement"


def test_objection_upheld_goes_back_to_review(drive):
    app_id = drive.to_publicity()
    _objection(drive, app_id)
    drive.complete(app_id, "handle_objection", "tto1", {"decision": "uphold", "reasoning": "成员名单有误。"})
    assert drive.steps(app_id) == ["review"]
    with drive.sessions() as s:
        notice = s.query(PublicityNotice).filter_by(application_id=app_id).one()
        assert notice.outcome == "upheld" and notice.closed_at is not None
    drive.review(app_id, "refuse")
    assert drive.status(app_id) == "refused"


def test_objection_dismissed_with_restart_posts_a_fresh_term(drive):
    app_id = drive.to_publicity()
    _objection(drive, app_id)
    with freeze_time(clock.now() + timedelta(days=5)):
        drive.complete(app_id, "handle_objection", "tto1", {"decision": "dismiss_restart", "reasoning": "修正后重新公示。"})
        restarted_at = clock.now()
    with drive.sessions() as s:
        first, second = s.query(PublicityNotice).filter_by(application_id=app_id).order_by(PublicityNotice.id).all()
        assert first.outcome == "restarted" and second.round == 2 and second.closed_at is None
        assert second.starts_at >= restarted_at - timedelta(seconds=1)
    assert drive.status(app_id) == "publicity"
    with freeze_time(clock.now() + timedelta(days=17)):  # the first term would be over, the second is not
        drive.tick()
        assert drive.status(app_id) == "publicity"
    drive.pass_publicity(app_id)


def test_objection_after_the_term_is_refused(drive):
    app_id = drive.to_publicity()
    notice_id = drive.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id).one().id)
    with freeze_time(clock.now() + timedelta(days=17)), pytest.raises(WrongState):
        drive.run(lambda s: publicity.file_objection(s, notice_id, example("objection"), "late"))


def test_signature_request_changes_returns_to_terms_and_voids_signatures(drive):
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    drive.complete(app_id, "sign_representative", "researcher1", {"decision": "sign", "password": PASSWORD})
    drive.complete(app_id, "sign_unit", "signer1", {"decision": "request_changes", "comment": "转化期限改为48个月。"})
    assert drive.steps(app_id) == ["agreement_terms"]
    terms = example("ownership_terms")
    terms["conversion_period_months"] = 48
    drive.complete(app_id, "agreement_terms", "tto1", terms)
    with drive.sessions() as s:
        sigs = s.query(Signature).filter_by(application_id=app_id).all()
        assert len(sigs) == 1 and not sigs[0].valid and sigs[0].invalidated_at is not None
    assert drive.steps(app_id) == ["sign_representative"]
    drive.sign_both(app_id)
    assert drive.status(app_id) == "ip_transfer"


def _completed_use_right(drive: Driver) -> str:
    app_id = drive.to_publicity("use_right")
    drive.pass_publicity(app_id)
    drive.finish(app_id, "use_right")
    return drive.app(app_id).number


def test_use_right_extension_completed(drive):
    number = _completed_use_right(drive)
    ext = drive.start("extension", original_number=number)
    request = example("extension_request")
    request["original_number"] = number
    drive.complete(ext, "extension_request", "researcher1", request)
    drive.complete(ext, "extension_review", "tto1", example("extension_review"))
    drive.decide(ext, step="extension_decision")
    drive.complete(ext, "supplementary_terms", "tto1", example("supplementary_terms"))
    drive.sign_both(ext)
    drive.complete(ext, "complete_archive", "tto1", example("completion"))
    assert drive.status(ext) == "completed"
    with drive.sessions() as s:
        kinds = [d.kind for d in queries.documents(s, s.get(Application, ext))]
        assert {"decision_record", "agreement_draft", "agreement_final"} <= set(kinds)
        entry = s.query(RegistryEntry).filter_by(application_id=drive.app(ext).original_id).one()
        assert (entry.status, entry.grant_kind) == ("granted", "use_right")
        # the original grant's registry entry notes the extension in its history
        assert [h.action for h in s.query(RegistryHistory).filter_by(entry_id=entry.id)][-1] == "extend"


def test_use_right_extension_refused(drive):
    number = _completed_use_right(drive)
    ext = drive.start("extension", original_number=number)
    request = example("extension_request")
    request["original_number"] = number
    drive.complete(ext, "extension_request", "researcher1", request)
    review = example("extension_review")
    review.update(decision="refuse", comments="转化进展不足。")
    drive.complete(ext, "extension_review", "tto1", review)
    assert drive.status(ext) == "refused"
