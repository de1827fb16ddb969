"""Income and its distribution (§三(六)): receipts, evidenced deductions and net income; a plan
with ≥ 70% to people and ≥ 3% to the office, leaders' rules and no double reward — every refusal
leaves the ledger exactly as it was. SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.driver import Driver, example
from workflows import clock
from workflows.conversion import income
from workflows.documents import document_store
from workflows.errors import Forbidden, ValidationFailed, WrongState
from workflows.models import Application, Distribution, IncomeDeduction, IncomeReceipt, Unit

from .test_conversion import completed_grant, contract


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def converted(drive: Driver) -> int:
    grant = completed_grant(drive)
    conv_id = drive.start("conversion", "researcher1", original_number=grant.number)
    drive.complete(conv_id, "conversion_plan", "tto1", example("conversion_plan"))
    drive.pass_publicity(conv_id)
    drive.complete(conv_id, "conversion_contract", "tto1", contract())
    assert drive.status(conv_id) == "completed"
    return conv_id


def evidence(drive: Driver, conv_id: int) -> int:
    return drive.run(lambda s: document_store.store(s, s.get(Application, conv_id), "income_evidence", "回单.pdf",
                                             b"%PDF-1.4\n% bank slip\n%%EOF\n").id)


def today() -> str:
    return clock.local_date(clock.now()).isoformat()


def ledger_size(drive: Driver) -> tuple[int, int, int]:
    with drive.sessions() as s:
        return tuple(s.execute(select(func.count()).select_from(m)).scalar_one()
                     for m in (IncomeReceipt, IncomeDeduction, Distribution))


def plan(**changes) -> dict:
    data = {"period_from": "2026-01-01", "period_to": today(), "net_income": "900000.00",
            "to_people": "630000.00", "to_office": "27000.00", "to_unit": "243000.00",
            "shares": [{"name": "陈强", "amount": "430000.00", "mode": "cash", "leader_post": "none"},
                       {"name": "赵校长", "amount": "100000.00", "mode": "cash", "leader_post": "principal",
                        "contribution": "牵头完成转化谈判"},
                       {"name": "钱处长", "amount": "100000.00", "mode": "equity", "leader_post": "other",
                        "contribution": "组织中试"}]}
    data.update(changes)
    return data


def test_two_receipts_with_deductions_and_a_plan_that_keeps_every_rule(drive):
    conv_id = converted(drive)
    doc = evidence(drive, conv_id)

    def book(s):
        tto = drive.user(s, "tto1")
        income.record_income(s, tto, conv_id, {"received_on": today(), "amount": "600000.00", "evidence_document_id": doc})
        income.record_income(s, tto, conv_id, {"received_on": today(), "amount": "600000.00", "evidence_document_id": doc})
        for category, amount in (("taxes", "72000.00"), ("service_fees", "120000.00"), ("valuation_fees", "108000.00")):
            income.record_deduction(s, tto, conv_id, {"category": category, "incurred_on": today(), "amount": amount,
                                                      "evidence_document_id": doc})
    drive.run(book)
    with drive.sessions() as s:
        assert income.net_income(s, conv_id, "2026-01-01", today()) == (Decimal("1200000.00"), Decimal("300000.00"))
    plan_id = drive.run(lambda s: income.propose_distribution(s, drive.user(s, "tto1"), conv_id, plan()).id)
    with drive.sessions() as s:
        kept = s.get(Distribution, plan_id)
        assert (kept.net_income, kept.to_people, kept.to_office) == (Decimal("900000.00"), Decimal("630000.00"),
                                                                     Decimal("27000.00"))
        assert [(sh.leader_post, sh.mode) for sh in kept.shares] == [("none", "cash"), ("principal", "cash"),
                                                                     ("other", "equity")]
        shown = income.ledger(s, s.get(Application, conv_id))
        assert shown["distributions"][0]["net_income"] == "900000.00" and len(shown["receipts"]) == 2


def test_every_refusal_leaves_the_ledger_as_it_was(drive):
    conv_id = converted(drive)
    doc = evidence(drive, conv_id)
    drive.run(lambda s: income.record_income(s, drive.user(s, "tto1"), conv_id,
                                             {"received_on": today(), "amount": "1000000.00", "evidence_document_id": doc}))
    drive.run(lambda s: income.record_deduction(s, drive.user(s, "tto1"), conv_id, {
        "category": "taxes", "incurred_on": today(), "amount": "100000.00", "evidence_document_id": doc}))
    before = ledger_size(drive)
    team = [{"username": "researcher2", "amount": "630000.00", "mode": "cash"}]
    refusals = [
        (plan(to_people="620000.00", to_unit="253000.00",
              shares=[{"name": "陈强", "amount": "620000.00", "mode": "cash"}]), "不得低于净收入的70%"),
        (plan(to_office="26000.00", to_unit="244000.00"), "不得低于净收入的3%"),
        (plan(net_income="1000000.00"), "减去扣除项"),
        (plan(shares=[{"name": "赵校长", "amount": "630000.00", "mode": "equity", "leader_post": "principal",
                       "contribution": "牵头"}]), "不得获取股权激励"),
        (plan(shares=[{"name": "钱处长", "amount": "630000.00", "mode": "cash", "leader_post": "other"}]), "说明其贡献"),
        (plan(shares=team), "不再给予转化奖励"),
        (plan(to_people=630000.0), "不能使用浮点数"),
        (plan(to_office="27000.005"), "最多保留两位小数"),
        (plan(shares=[{"name": "陈强", "amount": "600000.00", "mode": "cash"}]), "个人奖励合计"),
    ]
    for data, message in refusals:
        with pytest.raises(ValidationFailed) as refused:
            drive.run(lambda s, d=data: income.propose_distribution(s, drive.user(s, "tto1"), conv_id, d))
        assert message in str(refused.value), (message, str(refused.value))
        assert ledger_size(drive) == before
    for bad, message in (({"received_on": today(), "amount": 5.5, "evidence_document_id": doc}, "浮点数"),
                         ({"received_on": "2999-01-01", "amount": "5.00", "evidence_document_id": doc}, "晚于今天"),
                         ({"received_on": today(), "amount": "5.00"}, "证明材料")):
        with pytest.raises(ValidationFailed, match=message):
            drive.run(lambda s, b=bad: income.record_income(s, drive.user(s, "tto1"), conv_id, b))
    with pytest.raises(ValidationFailed, match="扣除项目只能是"):
        drive.run(lambda s: income.record_deduction(s, drive.user(s, "tto1"), conv_id, {
            "category": "lunch", "incurred_on": today(), "amount": "1.00", "evidence_document_id": doc}))
    with pytest.raises(Forbidden):
        drive.run(lambda s: income.record_income(s, drive.user(s, "researcher1"), conv_id,
                                                 {"received_on": today(), "amount": "5.00", "evidence_document_id": doc}))
    assert ledger_size(drive) == before


def test_the_unit_may_allow_a_reward_to_the_granted_team(drive):
    conv_id = converted(drive)
    doc = evidence(drive, conv_id)
    drive.run(lambda s: income.record_income(s, drive.user(s, "tto1"), conv_id,
                                             {"received_on": today(), "amount": "900000.00", "evidence_document_id": doc}))

    def allow(s):
        s.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one().reward_after_grant = True
    drive.run(allow)
    team = plan(shares=[{"username": "researcher2", "amount": "630000.00", "mode": "cash"}])
    plan_id = drive.run(lambda s: income.propose_distribution(s, drive.user(s, "tto1"), conv_id, team).id)
    with drive.sessions() as s:
        assert s.get(Distribution, plan_id).shares[0].role == "inventor"


def test_no_ledger_before_the_contract(drive):
    grant = completed_grant(drive)
    conv_id = drive.start("conversion", "researcher1", original_number=grant.number)
    with pytest.raises(WrongState, match="转化合同登记后"):
        drive.run(lambda s: income.record_income(s, drive.user(s, "tto1"), conv_id,
                                                 {"received_on": today(), "amount": "5.00"}))


def _pass_term(drive: Driver, process_id: int) -> None:
    from datetime import timedelta

    from freezegun import freeze_time

    from workflows.models import PublicityNotice
    with drive.sessions() as s:
        ends_at = s.execute(select(PublicityNotice.ends_at).where(PublicityNotice.application_id == process_id,
                                                                  PublicityNotice.closed_at.is_(None))).scalar_one()
    with freeze_time(ends_at - timedelta(seconds=1)):
        drive.tick()
    assert drive.steps(process_id) == []  # not one second early
    with freeze_time(ends_at):
        drive.tick()


def test_leaders_rewards_are_publicized_then_decided_noticed_and_paid(drive):
    conv_id = converted(drive)
    doc = evidence(drive, conv_id)
    drive.run(lambda s: income.record_income(s, drive.user(s, "tto1"), conv_id,
                                             {"received_on": today(), "amount": "900000.00", "evidence_document_id": doc}))
    def propose(s):
        proposed = income.propose_distribution(s, drive.user(s, "tto1"), conv_id, plan())
        return proposed.id, proposed.process_id
    plan_id, process_id = drive.run(propose)
    from workflows.models import PublicityNotice
    with drive.sessions() as s:
        notice = s.execute(select(PublicityNotice).where(PublicityNotice.application_id == process_id)).scalar_one()
        assert notice.kind == "leader_reward" and (notice.ends_at - notice.starts_at).days >= 15
    assert drive.status(process_id) == "publicity" and drive.steps(process_id) == []  # no decision before the term
    _pass_term(drive, process_id)
    assert drive.steps(process_id) == ["distribution_decision"]
    decision = example("unit_decision")
    decision.update(meeting_date=today(), reason="同意。")
    drive.complete(process_id, "distribution_decision", "decider1", decision)
    assert drive.steps(process_id) == ["distribution_payments"]
    with drive.sessions() as s:
        shares = [sh.id for sh in s.get(Distribution, plan_id).shares]
    with pytest.raises(ValidationFailed, match="各登记一次"):
        drive.complete(process_id, "distribution_payments", "tto1",
                       {"payments": [{"share_id": shares[0], "paid_on": today(), "reference": "YH1"}]})
    drive.complete(process_id, "distribution_payments", "tto1", {"payments": [
        {"share_id": sid, "paid_on": today(), "reference": f"YH{sid}"} for sid in shares]})
    assert drive.status(process_id) == "completed"
    from pypdf import PdfReader

    from workflows.models import Document
    with drive.sessions() as s:
        kept = s.get(Distribution, plan_id)
        assert kept.status == "paid" and all(sh.paid_on == today() for sh in kept.shares)
        notice_pdf = s.execute(select(Document).where(Document.application_id == process_id,
                                                      Document.kind == "distribution_notice")).scalar_one()
        import io
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(document_store.read(notice_pdf))).pages)
    for expected in ("赵校长", "钱处长", "陈强", "900,000.00", "股权"):
        assert expected in text, expected


def test_a_plan_without_leaders_goes_straight_to_the_decision(drive):
    conv_id = converted(drive)
    doc = evidence(drive, conv_id)
    drive.run(lambda s: income.record_income(s, drive.user(s, "tto1"), conv_id,
                                             {"received_on": today(), "amount": "900000.00", "evidence_document_id": doc}))
    simple = plan(shares=[{"name": "陈强", "amount": "630000.00", "mode": "cash"}])
    process_id = drive.run(lambda s: income.propose_distribution(s, drive.user(s, "tto1"), conv_id, simple).process_id)
    assert drive.steps(process_id) == ["distribution_decision"]
    decision = dict(example("unit_decision"), meeting_date=today(), result="refuse", reason="比例需调整。")
    drive.complete(process_id, "distribution_decision", "decider1", decision)
    assert drive.status(process_id) == "refused"
    with drive.sessions() as s:
        assert s.execute(select(Distribution.status).where(Distribution.process_id == process_id)).scalar_one() == "refused"


def test_the_unit_statistics_count_the_ledger(drive):
    from workflows.reporting import statistics
    conv_id = converted(drive)
    doc = evidence(drive, conv_id)
    drive.run(lambda s: income.record_income(s, drive.user(s, "tto1"), conv_id,
                                             {"received_on": today(), "amount": "1000000.00", "evidence_document_id": doc}))
    drive.run(lambda s: income.record_deduction(s, drive.user(s, "tto1"), conv_id, {
        "category": "taxes", "incurred_on": today(), "amount": "100000.00", "evidence_document_id": doc}))
    simple = plan(shares=[{"name": "陈强", "amount": "630000.00", "mode": "cash"}])
    process_id = drive.run(lambda s: income.propose_distribution(s, drive.user(s, "tto1"), conv_id, simple).process_id)
    year = clock.local_date(clock.now()).year
    with drive.sessions() as s:
        unit_id = s.get(Application, conv_id).unit_id
        assert statistics.compute(s, unit_id, year)["income"] == {
            "received": "1000000.00", "net": "900000.00", "to_inventors": "0.00", "to_office": "0.00", "to_unit": "0.00"}
    decision = dict(example("unit_decision"), meeting_date=today(), reason="同意。")
    drive.complete(process_id, "distribution_decision", "decider1", decision)
    with drive.sessions() as s:
        figures = statistics.compute(s, unit_id, year)["income"]
        assert (figures["to_inventors"], figures["to_office"], figures["to_unit"]) == ("630000.00", "27000.00", "243000.00")
        assert statistics.compute(s, unit_id, year - 1)["income"]["received"] == "0.00"
