"""Every rule of DOMAIN.md refuses bad input at its step, with a Chinese message naming the
field, and leaves the application exactly as it was."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.driver import PASSWORD, Driver, example
from workflows import clock, settings
from workflows.errors import Forbidden, GrantError, NotFound, ValidationFailed, WrongState
from workflows.models import Application, AuditEvent, Document, HumanTask, Signature, WorkflowState
from workflows.people import accounts
from workflows.people.access import SystemActor
from workflows.process import engine


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def snapshot(drive: Driver, app_id: int) -> tuple:
    with drive.sessions() as s:
        state = s.get(WorkflowState, app_id)
        tasks = s.execute(select(HumanTask.id, HumanTask.state, HumanTask.assignee_id)
                          .where(HumanTask.application_id == app_id).order_by(HumanTask.id)).all()
        counts = tuple(s.execute(select(func.count()).select_from(m)).scalar_one()
                       for m in (AuditEvent, Document, Signature))
        app = s.get(Application, app_id)
        return state.serialized, state.version, tuple(tasks), counts, app.status, app.title


def refused(drive: Driver, app_id: int, step: str, who: str, data: dict, field: str, words: str) -> None:
    before = snapshot(drive, app_id)
    with pytest.raises(ValidationFailed) as info:
        drive.complete(app_id, step, who, data)
    fields: dict[str, list[str]] = {}
    for error in info.value.errors:
        fields.setdefault(error["field"], []).append(error["message"])
    assert field in fields, info.value.errors
    assert any(words in message for message in fields[field]), fields[field]
    assert snapshot(drive, app_id) == before


def draft_with(kind="ownership", **changes):
    data = example(f"{kind}_draft")
    data.update(changes)
    return data


def members_with(**changes):
    members = example("ownership_draft")["members"]
    members[1].update(changes)
    return members


DRAFT_RULES = [
    ("team share below 70%", "ownership", {"ownership_mode": "shares", "team_share": 69.99}, "team_share", "不得低于70%"),
    ("shares without a team share", "ownership", {"ownership_mode": "shares", "team_share": None}, "team_share", "须填写"),
    ("joint co-ownership with a share", "ownership", {"ownership_mode": "joint", "team_share": 80}, "team_share", "共同共有"),
    ("shares not summing to 100", "ownership", {"members": members_with(share=29.5)}, "members", "合计须为100%"),
    ("use right under 10 years", "use_right", {"term_years": 9}, "term_years", "不得低于10年"),
    ("representative not a member", "ownership",
     {"members": [dict(example("ownership_draft")["members"][1], share=100)]}, "members", "指定代表必须是团队成员"),
    ("principal leader taking equity", "ownership",
     {"members": members_with(is_principal_leader=True, reward_mode="equity")}, "members.1.reward_mode", "不得获取股权激励"),
    ("principal leader taking contribution shares", "ownership",
     {"members": members_with(is_principal_leader=True, reward_mode="contribution_share")}, "members.1.reward_mode",
     "不得获取股权激励"),
    ("leader without a published contribution", "ownership", {"members": members_with(contribution="")},
     "members.1.contribution", "予以公示"),
    ("post-conversion reward chosen too", "ownership", {"incentive_mode": "post_conversion_reward"},
     "incentive_mode", "不重复激励"),
    ("already rewarded", "ownership", {"prior_reward_received": True}, "prior_reward_received", "不重复激励"),
    ("unknown member", "ownership", {"members": members_with(username="nobody")}, "members.1.username", "没有用户"),
    ("ip type outside the eligible list", "ownership",
     {"achievement": dict(example("ownership_draft")["achievement"], ip_type="trademark")}, "achievement.ip_type",
     "不在允许范围"),
    ("joint application right with filed numbers", "ownership",
     {"achievement": dict(example("ownership_draft")["achievement"], ip_type="joint_application_right")},
     "achievement.ip_numbers", "尚未申请知识产权"),
    ("patent without a number", "ownership",
     {"achievement": dict(example("ownership_draft")["achievement"], ip_numbers=[])}, "achievement.ip_numbers",
     "请填写知识产权编号"),
    ("ownership of an achievement outside the pilot's scope", "ownership",
     {"achievement": dict(example("ownership_draft")["achievement"], funding_source="other")},
     "achievement.funding_source", "财政性资金"),
    ("agreement pricing without a price", "ownership", {"pricing_method": "agreement"}, "proposed_price", "不少于15日"),
    ("duplicate members", "ownership",
     {"members": [*example("ownership_draft")["members"][:2], example("ownership_draft")["members"][1]]},
     "members", "团队成员不得重复"),
    ("joint implementation without the partner", "use_right", {"implementation": "with_partner", "partner": "  "},
     "partner", "应填写合作单位"),
    ("missing achievement title", "ownership",
     {"achievement": {k: v for k, v in example("ownership_draft")["achievement"].items() if k != "title"}},
     "achievement.title", "必填"),
]


@pytest.mark.parametrize(("kind", "changes", "field", "words"), [r[1:] for r in DRAFT_RULES], ids=[r[0] for r in DRAFT_RULES])
def test_draft_rules_refuse(drive, kind, changes, field, words):
    app_id = drive.start(kind)
    data = draft_with(kind, **changes)
    data = {k: v for k, v in data.items() if v is not None}
    refused(drive, app_id, "draft", "researcher1", data, field, words)


def test_the_same_achievement_cannot_be_granted_twice(drive):
    first = drive.start()
    drive.draft(first)
    drive.consent_all(first)
    second = drive.start()
    refused(drive, second, "draft", "researcher1", draft_with(), "achievement.ip_numbers", "不重复激励")


def _in_review(drive: Driver, **draft_changes) -> int:
    app_id = drive.start()
    drive.draft(app_id, **draft_changes)
    drive.consent_all(app_id)
    return app_id


@pytest.mark.parametrize("category", ["national_security", "state_secret", "social_stability"])
def test_excluded_category_can_never_be_approved(drive, category):
    app_id = _in_review(drive)
    review = example("review")
    review["excluded_category"] = category
    refused(drive, app_id, "review", "tto1", review, "decision", "不纳入赋权范围")
    review.update(decision="return", comments="x")
    refused(drive, app_id, "review", "tto1", review, "decision", "应不予赋权")
    review.update(decision="refuse", comments="涉及国家秘密，不纳入赋权范围。")
    drive.complete(app_id, "review", "tto1", review)
    assert drive.status(app_id) == "refused"


def test_declared_security_category_blocks_approval(drive):
    app_id = _in_review(drive, security_categories=["defence_security"])
    refused(drive, app_id, "review", "tto1", example("review"), "decision", "不纳入赋权范围")


def test_eligibility_conditions_must_hold_to_approve(drive):
    app_id = _in_review(drive)
    review = example("review")
    review["checks"]["recipient_identified"] = False
    refused(drive, app_id, "review", "tto1", review, "checks.recipient_identified", "承接对象明确")


def test_refusal_needs_a_reason(drive):
    app_id = _in_review(drive)
    review = example("review")
    review.update(decision="refuse", comments="")
    refused(drive, app_id, "review", "tto1", review, "comments", "须填写")


def test_unit_decision_must_follow_the_votes(drive):
    app_id = _in_review(drive)
    drive.review(app_id)
    decision = example("unit_decision")
    decision.update(votes_for=3, votes_against=3, votes_abstain=1)
    refused(drive, app_id, "unit_decision", "decider1", decision, "result", "半数")


def _agreement_step(drive: Driver, kind: str = "ownership") -> int:
    app_id = drive.to_publicity(kind)
    drive.pass_publicity(app_id)
    return app_id


@pytest.mark.parametrize("clause", ["income_distribution", "conversion_decision_mechanism", "cost_sharing",
                                    "ip_maintenance_fees", "rights_and_duties", "conversion_period_months"])
def test_agreement_not_generated_with_an_empty_ownership_clause(drive, clause):
    app_id = _agreement_step(drive)
    terms = example("ownership_terms")
    terms[clause] = "  " if isinstance(terms[clause], str) else None
    terms = {k: v for k, v in terms.items() if v is not None}
    before = snapshot(drive, app_id)
    with pytest.raises(ValidationFailed) as info:
        drive.complete(app_id, "agreement_terms", "tto1", terms)
    assert any(e["field"] == clause for e in info.value.errors)
    assert snapshot(drive, app_id) == before


@pytest.mark.parametrize("clause", ["conversion_obligations", "licence_fee_payment", "income_distribution"])
def test_agreement_not_generated_with_an_empty_use_right_clause(drive, clause):
    app_id = _agreement_step(drive, "use_right")
    terms = example("use_right_terms")
    terms[clause] = " "
    refused(drive, app_id, "agreement_terms", "tto1", terms, clause, "不能为空")


def test_income_floors(drive):
    app_id = _agreement_step(drive)
    terms = example("ownership_terms")
    terms.update(inventor_income_percent=69, tto_income_percent=2)
    refused(drive, app_id, "agreement_terms", "tto1", terms, "inventor_income_percent", "不得低于70%")
    refused(drive, app_id, "agreement_terms", "tto1", terms, "tto_income_percent", "不得低于3%")


def test_licence_term_at_least_ten_years(drive):
    app_id = _agreement_step(drive, "use_right")
    terms = example("use_right_terms")
    terms["licence_term_years"] = 8
    refused(drive, app_id, "agreement_terms", "tto1", terms, "licence_term_years", "不得低于10年")


def test_signature_needs_the_right_password(drive):
    app_id = _agreement_step(drive)
    drive.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    refused(drive, app_id, "sign_representative", "researcher1", {"decision": "sign", "password": "wrong"},
            "password", "密码不正确")


def test_publicity_shorter_than_15_days_is_refused(drive):
    app_id = _in_review(drive)
    drive.review(app_id)
    settings.configure(publicity_days=14)
    try:
        before = snapshot(drive, app_id)
        with pytest.raises(GrantError) as info:
            drive.decide(app_id)
        assert "不得少于15日" in info.value.message
        assert snapshot(drive, app_id) == before
    finally:
        settings.configure(publicity_days=15)


def test_password_never_stored(drive):
    app_id = _agreement_step(drive)
    drive.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    drive.complete(app_id, "sign_representative", "researcher1", {"decision": "sign", "password": PASSWORD})
    with drive.sessions() as s:
        assert PASSWORD not in s.get(WorkflowState, app_id).serialized


def test_shares_with_two_decimals_that_sum_to_100_are_accepted(drive):
    app_id = drive.start()
    members = example("ownership_draft")["members"]
    for member, share in zip(members, (33.33, 33.33, 33.34), strict=True):
        member["share"] = share
    drive.draft(app_id, members=members)
    assert drive.steps(app_id) == ["consent"] * 3


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"result": "refuse", "reason": " "}, "reason", "须填写决策理由"),
    ({"result": "return", "reason": ""}, "reason", "须填写决策理由"),
    ({"meeting_date": "2999-01-01"}, "meeting_date", "不能晚于今天"),
    ({"votes_for": 0, "votes_against": 0, "votes_abstain": 0}, "votes_for", "须记录表决情况"),
], ids=["refuse without reason", "return without reason", "future meeting", "no votes"])
def test_unit_decision_refusals(drive, changes, field, words):
    app_id = _in_review(drive)
    drive.review(app_id)
    decision = example("unit_decision")
    decision["meeting_date"] = clock.local_date(clock.now()).isoformat()
    decision.update(changes)
    refused(drive, app_id, "unit_decision", "decider1", decision, field, words)


def _completed_use_right(drive: Driver) -> str:
    app_id = drive.to_publicity("use_right")
    drive.pass_publicity(app_id)
    drive.finish(app_id, "use_right")
    return drive.app(app_id).number


def _extension_at_review(drive: Driver) -> int:
    number = _completed_use_right(drive)
    ext = drive.start("extension", original_number=number)
    drive.complete(ext, "extension_request", "researcher1", dict(example("extension_request"), original_number=number))
    return ext


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"agreement_kept": False}, "agreement_kept", "团队未履行协议的，不得延长"),
    ({"conversion_progressing": False}, "conversion_progressing", "未取得积极进展"),
    ({"decision": "return", "comments": " "}, "comments", "须填写审查意见"),
    ({"decision": "refuse", "comments": ""}, "comments", "须填写审查意见"),
], ids=["agreement not kept", "no progress", "return without comments", "refuse without comments"])
def test_extension_rule_refusals(drive, changes, field, words):
    ext = _extension_at_review(drive)
    refused(drive, ext, "extension_review", "tto1", dict(example("extension_review"), **changes), field, words)


def _count_applications(drive: Driver) -> int:
    with drive.sessions() as s:
        return s.execute(select(func.count()).select_from(Application)).scalar_one()


def test_extension_origin_errors(drive):
    number = _completed_use_right(drive)
    ownership = drive.start()  # an open ownership grant, not a completed use right
    before = _count_applications(drive)
    for who, original, error, words in [
        ("researcher1", "SZDU-1999-0001", NotFound, "原赋权申请不存在"),
        ("researcher1", drive.app(ownership).number, ValidationFailed, "只有已完成的长期使用权"),
        ("researcher2", number, ValidationFailed, "只有原申请的团队指定代表"),
    ]:
        with pytest.raises(error) as info:
            drive.start("extension", who=who, original_number=original)
        assert words in str(info.value.errors if isinstance(info.value, ValidationFailed) else info.value.message)
        assert _count_applications(drive) == before
    drive.run(lambda s: accounts.grant_role(s, drive.user(s, "researcher1"), "researcher", "SZDI", actor=SystemActor("tests")))
    with pytest.raises(NotFound):  # another unit's grant is not found from this one
        drive.start("extension", who="researcher1", unit="SZDI", original_number=number)
    first = drive.start("extension", original_number=number)
    with pytest.raises(WrongState) as info:
        drive.start("extension", original_number=number)
    assert drive.app(first).number in info.value.message
    refused(drive, first, "extension_request", "researcher1",
            dict(example("extension_request"), original_number="SZDU-2026-9999"), "original_number", number)


def test_documents_of_another_application_are_refused(drive):
    other = _in_review(drive)
    drive.review(other)
    drive.decide(other)
    with drive.sessions() as s:
        foreign = s.execute(select(Document.id).where(Document.application_id == other)).scalars().first()
    app_id = drive.start()
    draft = draft_with(achievement=dict(example("ownership_draft")["achievement"], ip_numbers=["ZL202699999999.9"]),
                       attachments=[{"document_id": foreign, "label": "别的申请的文件"}])
    refused(drive, app_id, "draft", "researcher1", draft, "attachments", "不属于本申请")
    draft["attachments"] = [{"document_id": 999999}]
    refused(drive, app_id, "draft", "researcher1", draft, "attachments", "附件不存在")
    drive.pass_publicity(other)
    drive.complete(other, "agreement_terms", "tto1", example("ownership_terms"))
    drive.sign_both(other)
    filing = dict(example("ip_transfer"), filing_date=clock.local_date(clock.now()).isoformat())
    with drive.sessions() as s:
        elsewhere = s.execute(select(Document.id).where(Document.application_id != other)).scalars().first()
    refused(drive, other, "ip_transfer", "tto1", dict(filing, evidence_document_id=elsewhere or 999999),
            "evidence_document_id", "不属于本申请")


def test_a_team_member_holding_the_unit_role_must_recuse(drive):
    """回避: tto1 in the team may neither claim nor complete the review; nothing changes."""
    app_id = drive.start()
    members = example("ownership_draft")["members"]
    members[2].update(username="tto1", name="刘洋")
    drive.draft(app_id, members=members)
    for who in ("researcher1", "researcher2", "tto1"):
        drive.complete(app_id, "consent", who, {"agree": True, "comment": ""})
    review = drive.task_id(app_id, "review")
    before = snapshot(drive, app_id)
    with pytest.raises(Forbidden) as info:
        drive.run(lambda s: engine.claim_task(s, drive.user(s, "tto1"), review))
    assert "回避" in info.value.message
    with pytest.raises(Forbidden):
        drive.complete(app_id, "review", "tto1", example("review"))
    assert snapshot(drive, app_id) == before
