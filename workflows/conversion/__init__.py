"""Conversion of a granted achievement (转让、许可、作价投资, §三(三)2, §三(五)1): who may start one,
and the rules of its plan and contract. The process itself is bpmn/conversion.bpmn; price
publicity reuses bpmn/publicity.bpmn as its called process."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import GRANT_KINDS, KindCode, RegistryState, RoleCode, StatusCode
from workflows.errors import Forbidden, NotFound, ValidationFailed, WrongState
from workflows.i18n import msg
from workflows.models import Application, RegistryEntry, Unit, User

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_origin(session: Session, actor: User, unit: Unit, number: str | None) -> Application:
    """A conversion starts from a completed grant of this unit, by its representative or the office."""
    grant = session.execute(select(Application).where(Application.number == (number or ""))).scalar_one_or_none()
    if grant is None or grant.unit_id != unit.id:
        raise NotFound(msg("原赋权申请不存在"))
    if grant.kind not in GRANT_KINDS or grant.status != StatusCode.COMPLETED:
        raise ValidationFailed([{"field": "original_number",
                                 "message": msg("只有已完成的赋权申请才能登记成果转化")}])
    if actor.id != grant.representative_id and not actor.has_role(RoleCode.TTO, unit.id):
        raise Forbidden(msg("只有团队指定代表或成果转化部门可以发起成果转化"))
    from . import watch
    watch.check_not_lapsed(session, grant)
    entry = _registry_entry(session, grant)
    if entry is not None and entry.status == RegistryState.LEFT:
        raise WrongState(msg("该成果已转让或作价投资并已出库，不能再登记转化"))
    return grant


def _registry_entry(session: Session, grant: Application) -> RegistryEntry | None:
    return session.execute(select(RegistryEntry).where(RegistryEntry.application_id == grant.id)).scalar_one_or_none()


def on_start(session: Session, actor: User, grant: Application, conv: Application) -> None:
    """The achievement is 转化中 in the registry from the first conversion on."""
    from workflows.reporting import registry
    entry = _registry_entry(session, grant)
    if entry is not None and entry.status in (RegistryState.REGISTERED, RegistryState.GRANTED):
        registry.start_conversion(session, entry, actor.username, application_id=conv.id)


def uscc_is_valid(code: str) -> bool:
    """统一社会信用代码 check character (GB 32100-2015)."""
    if len(code) != len(USCC_WEIGHTS) + 1 or any(c not in USCC_ALPHABET for c in code):
        return False
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(code[:17], USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


def yuan(value: Any, field: str) -> Decimal:
    """Money as exact Decimal yuan with at most two places; floats are refused, never rounded."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationFailed([{"field": field, "message": msg("金额须以字符串填写，如\"1200.00\"，不能使用浮点数")}])
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed([{"field": field, "message": msg("金额格式不正确")}])
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed([{"field": field, "message": msg("金额最多保留两位小数")}])
    return amount.quantize(Decimal("0.01"))


def check_plan(plan: dict[str, Any], team_usernames: list[str]) -> None:
    """The plan names its counterparty properly, every team member declares relations, and a
    decision not to value the asset says who took it and why (§三(三)2)."""
    problems = []
    if plan["mode"] == "licence" and not plan.get("licence_type"):
        problems.append({"field": "licence_type", "message": msg("许可方式须选择独占、排他或普通许可")})
    if plan["mode"] != "licence" and plan.get("licence_type"):
        problems.append({"field": "licence_type", "message": msg("只有许可方式的转化才填写许可类型")})
    if not uscc_is_valid(plan["counterparty"]["credit_code"]):
        problems.append({"field": "counterparty.credit_code", "message": msg("统一社会信用代码校验位不正确")})
    declared = [p["username"] for p in plan["related_parties"]]
    if sorted(declared) != sorted(team_usernames):
        problems.append({"field": "related_parties",
                         "message": msg("每位成果完成人须各作一次关联关系声明：{names}", names="、".join(team_usernames))})
    for i, party in enumerate(plan["related_parties"]):
        if party["related"] and not (party.get("note") or "").strip():
            problems.append({"field": f"related_parties.{i}.note", "message": msg("存在关联关系的，须说明关联关系")})
    if yuan(plan["price"], "price") <= 0:
        problems.append({"field": "price", "message": msg("拟交易价格须大于0")})
    valuation = plan["valuation"]
    if not valuation["made"] and not ((valuation.get("decided_by") or "").strip() and (valuation.get("reason") or "").strip()):
        problems.append({"field": "valuation", "message": msg(
            "不进行资产评估的，须记录作出决定的机构或人员及理由（§三(三)2）")})
    if problems:
        raise ValidationFailed(problems)


def check_contract(contract: dict[str, Any], plan: dict[str, Any]) -> None:
    """The contract carries the publicized price, its schedule adds up, and it was signed by now."""
    problems = []
    amount = yuan(contract["amount"], "amount")
    if date.fromisoformat(contract["signed_on"]) > clock.local_date(clock.now()):
        problems.append({"field": "signed_on", "message": msg("签订日期不能晚于今天")})
    scheduled = sum((yuan(p["amount"], f"payment_schedule.{i}.amount")
                     for i, p in enumerate(contract["payment_schedule"])), Decimal("0.00"))
    if scheduled != amount:
        problems.append({"field": "payment_schedule", "message": msg(
            "付款安排合计{scheduled}元，与合同金额{amount}元不一致", scheduled=scheduled, amount=amount)})
    if plan.get("pricing_method") == "agreement" and amount != yuan(plan["price"], "price"):
        problems.append({"field": "amount", "message": msg(
            "协议定价的合同金额须与公示的拟交易价格{price}元一致（§三(五)1）", price=yuan(plan["price"], "price"))})
    if problems:
        raise ValidationFailed(problems)


def check_distribution_origin(session: Session, actor: User, unit: Unit, number: str | None,
                              extra: dict[str, Any] | None) -> Application:
    """A distribution process runs only for a plan the office proposed on a completed conversion."""
    if not extra or not isinstance(extra.get("distribution_id"), int):
        raise ValidationFailed([{"field": "kind", "message": msg("收益分配方案须在成果转化记录中由成果转化部门提出")}])
    conv = session.execute(select(Application).where(Application.number == (number or ""))).scalar_one_or_none()
    if conv is None or conv.unit_id != unit.id or conv.kind != KindCode.CONVERSION:
        raise NotFound(msg("成果转化记录不存在"))
    if not actor.has_role(RoleCode.TTO, unit.id):
        raise Forbidden(msg("您没有执行此操作的权限"))
    return conv
