"""Which clauses each document must carry (§三(一)4, §三(二)2) and the checks that refuse
to print a document with an empty or policy-breaking clause."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..catalogue import (
    MIN_INVENTOR_INCOME,
    MIN_TEAM_SHARE,
    MIN_TTO_INCOME,
    MIN_USE_RIGHT_YEARS,
    SIGNERS,
    KindCode,
    StepId,
)
from ..i18n import msg


class DocumentError(ValueError):
    """A document cannot be produced from this context; `clause` names the clause (Chinese)."""

    prefix = msg("文书内容有误")

    def __init__(self, clause: str, detail: str = ""):
        self.clause = clause
        self.detail = detail
        self.message = (msg("{prefix}：{clause}（{detail}）", prefix=self.prefix, clause=clause, detail=detail)
                        if detail else msg("{prefix}：{clause}", prefix=self.prefix, clause=clause))
        super().__init__(self.message)


class MissingClause(DocumentError):
    """A required clause is missing or empty: an agreement must never show a blank clause."""

    prefix = msg("缺少必备条款")


class InvalidClause(DocumentError):
    """A clause is present but breaks the policy (e.g. team share below 70%)."""

    prefix = msg("条款不符合规定")


# IP types that have no registration number yet (not filed / kept secret).
NO_NUMBER_IP_TYPES = {"joint_application_right", "technical_secret"}

_PARTIES = [
    (msg("申请编号"), ("number",)),
    (msg("甲方名称"), ("unit", "name")),
    (msg("乙方代表"), ("representative", "name")),
    (msg("生成日期"), ("generated_at",)),
]
_ACHIEVEMENT = [
    (msg("成果名称"), (StepId.DRAFT, "achievement", "title")),
    (msg("知识产权类型"), (StepId.DRAFT, "achievement", "ip_type")),
    (msg("团队成员及内部分配"), (StepId.DRAFT, "members")),
]
_INCOME = [
    (msg("收益分配"), ("terms", "income_distribution")),
    (msg("成果完成人收益比例"), ("terms", "inventor_income_percent")),
    (msg("技术转移机构提取比例"), ("terms", "tto_income_percent")),
]

REQUIRED = {
    KindCode.OWNERSHIP: _PARTIES + _ACHIEVEMENT + [
        (msg("共有方式"), (StepId.DRAFT, "ownership_mode")),
        *_INCOME,
        (msg("转化决策机制"), ("terms", "conversion_decision_mechanism")),
        (msg("转化期限"), ("terms", "conversion_period_months")),
        (msg("转化费用分担"), ("terms", "cost_sharing")),
        (msg("知识产权维持费用"), ("terms", "ip_maintenance_fees")),
        (msg("双方权利义务"), ("terms", "rights_and_duties")),
        (msg("争议解决"), ("terms", "dispute_resolution")),
    ],
    KindCode.USE_RIGHT: _PARTIES + _ACHIEVEMENT + [
        (msg("成果转化实施方案"), (StepId.DRAFT, "conversion_plan")),
        (msg("实施方式"), (StepId.DRAFT, "implementation")),
        (msg("成果转化义务"), ("terms", "conversion_obligations")),
        (msg("许可方式"), ("terms", "licence_mode")),
        (msg("许可期限"), ("terms", "licence_term_years")),
        (msg("许可起始日"), ("terms", "licence_start_date")),
        (msg("许可费支付方式"), ("terms", "licence_fee_payment")),
        *_INCOME,
        (msg("对外许可实施"), ("terms", "sublicensing_allowed")),
        (msg("争议解决"), ("terms", "dispute_resolution")),
    ],
    "supplementary": [*_PARTIES,
        (msg("原协议编号"), ("original_number",)),
        (msg("协议履行情况"), ("request", "agreement_performance")),
        (msg("成果转化进展"), ("request", "conversion_progress")),
        (msg("收益情况"), ("request", "income_report")),
        (msg("延长年限"), ("terms", "extension_years")),
        (msg("延长后到期日"), ("terms", "new_end_date")),
        (msg("延长期许可费支付方式"), ("terms", "licence_fee_payment")),
        (msg("其他约定"), ("terms", "other_terms")),
    ],
    "publicity": [
        (msg("公示编号"), ("number",)),
        (msg("单位名称"), ("unit", "name")),
        (msg("成果名称"), (StepId.DRAFT, "achievement", "title")),
        (msg("团队成员"), (StepId.DRAFT, "members")),
        (msg("公示开始时间"), ("starts_at",)),
        (msg("公示结束时间"), ("ends_at",)),
        (msg("异议联系方式"), ("contact",)),
        (msg("公示网址"), ("board_url",)),
    ],
    "decision": [
        (msg("申请编号"), ("number",)),
        (msg("单位名称"), ("unit", "name")),
        (msg("成果名称"), (StepId.DRAFT, "achievement", "title")),
        (msg("决策形式"), ("decision", "meeting_type")),
        (msg("会议日期"), ("decision", "meeting_date")),
        (msg("参会人员"), ("decision", "participants")),
        (msg("赞成票"), ("decision", "votes_for")),
        (msg("反对票"), ("decision", "votes_against")),
        (msg("弃权票"), ("decision", "votes_abstain")),
        (msg("决策结果"), ("decision", "result")),
        (msg("记录人"), ("recorded_by", "name")),
        (msg("记录时间"), ("recorded_at",)),
    ],
}


def lookup(ctx: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = ctx
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def is_empty(value: object) -> bool:
    """None, blank strings and empty lists/dicts are empty; 0 and False are real values."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return not value
    return False


def require(ctx: dict[str, Any], doc: str) -> None:
    """Raise MissingClause for the first required clause of `doc` that is missing or empty."""
    for clause, path in REQUIRED[doc]:
        if is_empty(lookup(ctx, path)):
            raise MissingClause(clause)


def check_members(members: list[dict[str, Any]]) -> None:
    """Every member has a name and share, and the team's internal shares add up to 100%."""
    total = Decimal(0)
    for member in members:
        if is_empty(member.get("name")) or member.get("share") is None:
            raise MissingClause(msg("团队成员及内部分配"))
        total += Decimal(str(member["share"]))
    if total != 100:
        raise InvalidClause(msg("团队成员及内部分配"), msg("内部分配比例合计为{total}%，应为100%", total=total))


def check_ip_numbers(draft: dict[str, Any]) -> None:
    achievement = draft["achievement"]
    if achievement["ip_type"] not in NO_NUMBER_IP_TYPES and is_empty(achievement.get("ip_numbers")):
        raise MissingClause(msg("知识产权编号"))


def check_income(terms: dict[str, Any]) -> None:
    """§三(六)1: the floors of net income to the inventors and to the tech-transfer office."""
    inventors = Decimal(str(terms["inventor_income_percent"]))
    office = Decimal(str(terms["tto_income_percent"]))
    if inventors < MIN_INVENTOR_INCOME:
        raise InvalidClause(msg("收益分配"), msg("成果完成人收益比例不得低于{percent}%", percent=MIN_INVENTOR_INCOME))
    if office < MIN_TTO_INCOME:
        raise InvalidClause(msg("收益分配"), msg("技术转移机构提取比例不得低于{percent}%", percent=MIN_TTO_INCOME))
    if inventors + office > 100:
        raise InvalidClause(msg("收益分配"), msg("各方比例合计超过100%"))


def check_ownership_share(draft: dict[str, Any]) -> None:
    """§三(一)1: co-ownership by shares leaves the team at least its floor."""
    if draft["ownership_mode"] != "shares":
        return
    share = draft.get("team_share")
    if share is None:
        raise MissingClause(msg("团队持有份额"))
    if not MIN_TEAM_SHARE <= Decimal(str(share)) <= 100:
        raise InvalidClause(msg("团队持有份额"), msg("按份共有的，团队持有份额不得低于{share}%", share=MIN_TEAM_SHARE))


def check_licence_term(terms: dict[str, Any]) -> None:
    """§三(二)1: a long-term use right runs for no less than its floor in years."""
    if terms["licence_term_years"] < MIN_USE_RIGHT_YEARS:
        raise InvalidClause(msg("许可期限"), msg("长期使用权期限不得低于{years}年", years=MIN_USE_RIGHT_YEARS))


def check_signatures(ctx: dict[str, Any]) -> None:
    """A final agreement carries both parties' signatures, each on the current draft."""
    if is_empty(ctx.get("draft_sha256")):
        raise MissingClause(msg("协议草稿SHA-256"))
    signatures = ctx.get("signatures") or []
    roles = {s.get("role") for s in signatures}
    if not set(SIGNERS) <= roles:
        raise MissingClause(msg("双方签署记录"))
    for sig in signatures:
        for field, clause in (("name", msg("签署人")), ("signed_at", msg("签署时间")),
                             ("sha256", msg("签署文件SHA-256"))):
            if is_empty(sig.get(field)):
                raise MissingClause(clause)
        if sig["sha256"].lower() != ctx["draft_sha256"].lower():
            raise InvalidClause(msg("双方签署记录"), msg("{name}签署的文件与本协议草稿不一致", name=sig["name"]))
