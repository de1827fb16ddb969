"""Income from a conversion and its distribution (§三(六)): receipts and evidenced deductions give
net income; a distribution plan gives at least 70% of it to the inventors and key contributors and
at least 3% to the tech-transfer office. Money is Decimal yuan with two places, never float."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import KindCode, NoticeKind, NoticeOutcome, RoleCode, StatusCode
from workflows.errors import ValidationFailed, WrongState
from workflows.evidence import audit
from workflows.grants.policy import EQUITY_MODES, MIN_INVENTOR_INCOME, MIN_TTO_INCOME
from workflows.i18n import msg
from workflows.models import (
    Application,
    Distribution,
    DistributionShare,
    Document,
    IncomeDeduction,
    IncomeReceipt,
    PublicityNotice,
    User,
)
from workflows.people.access import require_role

from . import yuan

DEDUCTIONS = {  # §三(六)2, each a separate evidenced line
    "development_cost": msg("自筹经费投入的开发成本"),
    "taxes": msg("相关税费"),
    "maintenance": msg("单位维护该科技成果的费用"),
    "service_fees": msg("第三方服务机构的服务费用"),
    "valuation_fees": msg("评估、鉴定等直接费用"),
}
REWARD_MODES = ("cash", "equity", "contribution_share")
LEADER_POSTS = ("none", "principal", "other")
CENT = Decimal("0.01")


def _conversion(session: Session, actor: User, conversion_id: int) -> Application:
    """Only the unit's tech-transfer office keeps the ledger, and only once the contract is in."""
    conv = session.get(Application, conversion_id)
    if conv is None or conv.kind != KindCode.CONVERSION:
        raise WrongState(msg("成果转化记录不存在"))
    require_role(actor, RoleCode.TTO, conv.unit_id)
    if conv.status != StatusCode.COMPLETED:
        raise WrongState(msg("转化合同登记后才能登记收入和分配"))
    return conv


def _day(value: Any, field: str) -> str:
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed([{"field": field, "message": msg("日期格式不正确")}]) from None
    if day > clock.local_date(clock.now()):
        raise ValidationFailed([{"field": field, "message": msg("日期不能晚于今天")}])
    return day.isoformat()


def _evidence(session: Session, conv: Application, document_id: Any) -> int:
    doc = session.get(Document, document_id) if isinstance(document_id, int) else None
    if doc is None or doc.application_id != conv.id:
        raise ValidationFailed([{"field": "evidence_document_id", "message": msg("请上传本次转化的证明材料")}])
    return doc.id


def record_income(session: Session, actor: User, conversion_id: int, data: dict[str, Any]) -> IncomeReceipt:
    conv = _conversion(session, actor, conversion_id)
    amount = yuan(data.get("amount"), "amount")
    if amount <= 0:
        raise ValidationFailed([{"field": "amount", "message": msg("收入金额须大于0")}])
    receipt = IncomeReceipt(conversion_id=conv.id, received_on=_day(data.get("received_on"), "received_on"),
                            amount=amount, evidence_document_id=_evidence(session, conv, data.get("evidence_document_id")),
                            note=str(data.get("note") or "")[:500], recorded_by_id=actor.id)
    session.add(receipt)
    session.flush()
    audit.record(session, actor=actor.username, action="record_income", unit_id=conv.unit_id,
                 application_id=conv.id, data=data, detail={"receipt_id": receipt.id, "amount": str(amount)})
    return receipt


def record_deduction(session: Session, actor: User, conversion_id: int, data: dict[str, Any]) -> IncomeDeduction:
    conv = _conversion(session, actor, conversion_id)
    if data.get("category") not in DEDUCTIONS:
        raise ValidationFailed([{"field": "category", "message": msg(
            "扣除项目只能是开发成本、相关税费、维护费用、第三方服务费用或评估鉴定费用（§三(六)2）")}])
    amount = yuan(data.get("amount"), "amount")
    if amount <= 0:
        raise ValidationFailed([{"field": "amount", "message": msg("扣除金额须大于0")}])
    line = IncomeDeduction(conversion_id=conv.id, category=data["category"],
                           incurred_on=_day(data.get("incurred_on"), "incurred_on"), amount=amount,
                           evidence_document_id=_evidence(session, conv, data.get("evidence_document_id")),
                           note=str(data.get("note") or "")[:500], recorded_by_id=actor.id)
    session.add(line)
    session.flush()
    audit.record(session, actor=actor.username, action="record_deduction", unit_id=conv.unit_id,
                 application_id=conv.id, data=data, detail={"deduction_id": line.id, "amount": str(amount)})
    return line


def net_income(session: Session, conversion_id: int, period_from: str, period_to: str) -> tuple[Decimal, Decimal]:
    """(received, deducted) in the period, as §三(六)2 defines net income = received − deducted."""
    received = session.execute(select(func.coalesce(func.sum(IncomeReceipt.amount), 0)).where(
        IncomeReceipt.conversion_id == conversion_id, IncomeReceipt.received_on >= period_from,
        IncomeReceipt.received_on <= period_to)).scalar_one()
    deducted = session.execute(select(func.coalesce(func.sum(IncomeDeduction.amount), 0)).where(
        IncomeDeduction.conversion_id == conversion_id, IncomeDeduction.incurred_on >= period_from,
        IncomeDeduction.incurred_on <= period_to)).scalar_one()
    return Decimal(received).quantize(CENT), Decimal(deducted).quantize(CENT)


def propose_distribution(session: Session, actor: User, conversion_id: int, data: dict[str, Any]) -> Distribution:
    """A plan for one period, checked against every rule of §三(六) before it is kept."""
    conv = _conversion(session, actor, conversion_id)
    period_from, period_to = _day(data.get("period_from"), "period_from"), _day(data.get("period_to"), "period_to")
    if period_from > period_to:
        raise ValidationFailed([{"field": "period_to", "message": msg("分配期间的结束日期不能早于开始日期")}])
    received, deducted = net_income(session, conv.id, period_from, period_to)
    net = received - deducted
    amounts = {k: yuan(data.get(k), k) for k in ("net_income", "to_people", "to_office", "to_unit")}
    problems = _check_totals(net, received, deducted, amounts)
    shares = [_share(session, conv, i, s, problems) for i, s in enumerate(data.get("shares") or [])]
    if not shares:
        problems.append({"field": "shares", "message": msg("请列出获得奖励的人员")})
    elif sum((s.amount for s in shares), Decimal("0.00")) != amounts["to_people"]:
        problems.append({"field": "shares", "message": msg("个人奖励合计须等于奖励成果完成人和重要贡献人员的金额")})
    if problems:
        raise ValidationFailed(problems)
    plan = Distribution(conversion_id=conv.id, period_from=period_from, period_to=period_to, received=received,
                        deducted=deducted, net_income=net, to_people=amounts["to_people"],
                        to_office=amounts["to_office"], to_unit=amounts["to_unit"], proposed_by_id=actor.id,
                        shares=shares)
    session.add(plan)
    session.flush()
    from workflows.process import engine  # the engine runs steps, and steps check this module's rules
    process = engine.start_application(session, actor, conv.unit, KindCode.DISTRIBUTION, conv.number, extra={
        "distribution_id": plan.id, "has_leaders": any(sh.leader_post != "none" for sh in shares)})
    plan.process_id = process.id
    audit.record(session, actor=actor.username, action="propose_distribution", unit_id=conv.unit_id,
                 application_id=conv.id, data=data, detail={"distribution_id": plan.id, "net_income": str(net)})
    return plan


def _check_totals(net: Decimal, received: Decimal, deducted: Decimal, amounts: dict[str, Decimal]) -> list[dict[str, Any]]:
    problems = []
    if amounts["net_income"] != net:
        problems.append({"field": "net_income", "message": msg(
            "净收入应为期间收入{received}元减去扣除项{deducted}元，即{net}元（§三(六)2）",
            received=received, deducted=deducted, net=net)})
        return problems
    if net <= 0:
        problems.append({"field": "net_income", "message": msg("该期间没有可分配的净收入")})
        return problems
    if amounts["to_people"] + amounts["to_office"] + amounts["to_unit"] != net:
        problems.append({"field": "to_unit", "message": msg("奖励、转化机构经费与单位留存之和须等于净收入")})
    if amounts["to_people"] * 100 < net * MIN_INVENTOR_INCOME:
        problems.append({"field": "to_people", "message": msg(
            "用于奖励成果完成人和重要贡献人员的比例不得低于净收入的70%（§三(六)1）")})
    if amounts["to_office"] * 100 < net * MIN_TTO_INCOME:
        problems.append({"field": "to_office", "message": msg(
            "提取作为内部技术转移机构运行经费的比例不得低于净收入的3%（§三(六)1）")})
    return problems


def _share(session: Session, conv: Application, i: int, data: dict[str, Any], problems: list[dict[str, Any]]) -> DistributionShare:
    """One reward: leaders' rules (§三(六)3) and no double reward for the grant's team (§三(六)2)."""
    field = f"shares.{i}"
    user = None
    if data.get("username"):
        user = session.execute(select(User).where(User.username == data["username"])).scalar_one_or_none()
        if user is None:
            problems.append({"field": f"{field}.username", "message": msg("第{n}行：用户不存在", n=i + 1)})
    mode, post = data.get("mode"), data.get("leader_post", "none")
    if mode not in REWARD_MODES or post not in LEADER_POSTS:
        problems.append({"field": field, "message": msg("第{n}行：奖励方式或领导职务不正确", n=i + 1)})
    elif post == "principal" and mode in EQUITY_MODES:
        problems.append({"field": f"{field}.mode", "message": msg(
            "第{n}行：单位正职领导只能获得现金奖励，不得获取股权激励（§三(六)3）", n=i + 1)})
    if post != "none" and not str(data.get("contribution") or "").strip():
        problems.append({"field": f"{field}.contribution", "message": msg(
            "第{n}行：担任领导职务的人员须说明其贡献情况，以便公示（§三(六)3）", n=i + 1)})
    if user is not None and user.id in _grant_team(session, conv) and not conv.unit.reward_after_grant:
        problems.append({"field": f"{field}.username", "message": msg(
            "第{n}行：{name}所在团队已获得该成果的所有权或长期使用权，不再给予转化奖励（§三(一)3、§三(六)2）",
            n=i + 1, name=user.name)})
    return DistributionShare(user_id=user.id if user else None, name=str(data.get("name") or (user.name if user else "")),
                             role="inventor" if user is not None and user.id in _grant_team(session, conv) else "contributor",
                             leader_post=post if post in LEADER_POSTS else "none", mode=str(mode),
                             amount=yuan(data.get("amount"), f"{field}.amount"),
                             contribution=str(data.get("contribution") or "")[:1000])


def _grant_team(session: Session, conv: Application) -> set[int]:
    return session.get_one(Application, conv.original_id).member_ids()


def plan_of(session: Session, process: Application) -> Distribution:
    return session.execute(select(Distribution).where(Distribution.process_id == process.id)).scalar_one()


def check_decision_after_publicity(session: Session, process: Application) -> None:
    """Leaders' rewards are decided only after their publicity has run its term (§三(六)3)."""
    plan = plan_of(session, process)
    if not any(sh.leader_post != "none" for sh in plan.shares):
        return
    passed = session.execute(select(PublicityNotice.id).where(
        PublicityNotice.application_id == process.id, PublicityNotice.kind == NoticeKind.LEADER_REWARD,
        PublicityNotice.outcome == NoticeOutcome.PASSED)).first()
    if passed is None:
        raise WrongState(msg("担任领导职务人员的奖励公示期满前，不得对分配方案作出决策（§三(六)3）"))


def check_payments(session: Session, process: Application, data: dict[str, Any]) -> None:
    """Every reward of the approved plan is paid exactly once, on a day that has come."""
    plan = plan_of(session, process)
    ids = sorted(p["share_id"] for p in data["payments"])
    if ids != sorted(sh.id for sh in plan.shares):
        raise ValidationFailed([{"field": "payments", "message": msg("须为分配方案中的每一位人员各登记一次发放")}])
    for i, payment in enumerate(data["payments"]):
        _day(payment["paid_on"], f"payments.{i}.paid_on")


def record_payments(session: Session, process: Application, data: dict[str, Any]) -> None:
    plan = plan_of(session, process)
    paid = {p["share_id"]: p for p in data["payments"]}
    for share in plan.shares:
        share.paid_on, share.payment_reference = paid[share.id]["paid_on"], paid[share.id]["reference"]
    plan.status = "paid"


def ledger(session: Session, conv: Application) -> dict[str, Any]:
    """What the application page and the API show, with the rule each amount satisfies."""
    receipts = session.execute(select(IncomeReceipt).where(IncomeReceipt.conversion_id == conv.id)
                               .order_by(IncomeReceipt.received_on, IncomeReceipt.id)).scalars().all()
    deductions = session.execute(select(IncomeDeduction).where(IncomeDeduction.conversion_id == conv.id)
                                 .order_by(IncomeDeduction.incurred_on, IncomeDeduction.id)).scalars().all()
    plans = session.execute(select(Distribution).where(Distribution.conversion_id == conv.id)
                            .order_by(Distribution.id)).scalars().all()
    return {
        "receipts": [{"id": r.id, "received_on": r.received_on, "amount": str(r.amount),
                      "evidence_document_id": r.evidence_document_id, "note": r.note} for r in receipts],
        "deductions": [{"id": d.id, "category": d.category, "incurred_on": d.incurred_on, "amount": str(d.amount),
                        "evidence_document_id": d.evidence_document_id, "note": d.note} for d in deductions],
        "distributions": [{"id": p.id, "period_from": p.period_from, "period_to": p.period_to,
                           "received": str(p.received), "deducted": str(p.deducted), "net_income": str(p.net_income),
                           "to_people": str(p.to_people), "to_office": str(p.to_office), "to_unit": str(p.to_unit),
                           "status": p.status, "process_id": p.process_id,
                           "shares": [{"id": s.id, "paid_on": s.paid_on, "name": s.name, "role": s.role, "leader_post": s.leader_post, "mode": s.mode,
                                       "amount": str(s.amount), "contribution": s.contribution} for s in p.shares]}
                          for p in plans],
    }
