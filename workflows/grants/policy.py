"""The rules of the policy (Shenzhen implementation plan, §三), one function per step.

Each check returns nothing when the data complies and raises ValidationFailed naming every
failing field in Chinese. Checks are plain functions of data so each can be tested alone.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from workflows.catalogue import (
    MIN_INVENTOR_INCOME,
    MIN_PUBLICITY_DAYS,
    MIN_TEAM_SHARE,
    MIN_TTO_INCOME,
    MIN_USE_RIGHT_YEARS,
    KindCode,
)
from workflows.errors import ValidationFailed
from workflows.i18n import Message, msg

__all__ = ["MIN_INVENTOR_INCOME", "MIN_PUBLICITY_DAYS", "MIN_TEAM_SHARE", "MIN_TTO_INCOME", "MIN_USE_RIGHT_YEARS"]
EQUITY_MODES = ("equity", "contribution_share")
GRANTABLE_FUNDING = ("fiscal", "commissioned")  # §三(一)1
UNFILED_IP_TYPE = "joint_application_right"
NUMBERLESS_IP_TYPES = ("technical_secret", UNFILED_IP_TYPE)

OWNERSHIP_CLAUSES = {
    "income_distribution": msg("收益分配比例"), "conversion_decision_mechanism": msg("转化决策机制"),
    "conversion_period_months": msg("转化期限"), "cost_sharing": msg("转化费用分担"),
    "ip_maintenance_fees": msg("知识产权维持费用"), "rights_and_duties": msg("双方权利义务"),
}
USE_RIGHT_CLAUSES = {
    "conversion_obligations": msg("成果转化义务"), "licence_mode": msg("许可方式"), "licence_term_years": msg("许可期限"),
    "licence_fee_payment": msg("许可费支付方式"), "income_distribution": msg("转化收益分配"),
}
SUPPLEMENTARY_CLAUSES = {"extension_years": msg("延长年限"), "new_end_date": msg("延长后到期日"),
                         "licence_fee_payment": msg("延长期许可费支付方式")}


class Problems:
    """Collects every failing field so the person sees all of them at once."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def check_draft(kind: str, draft: dict[str, Any], representative: str,
                accounts: Mapping[str, str], granted_ip_numbers: Iterable[str] = ()) -> None:
    """Rules on the application itself (§三(一)1–3, §三(二)1, §三(五)1, §三(六)2–3).

    `accounts` maps each known member username to the account holder's registered name."""
    p = Problems()
    _check_team(draft.get("members", []), representative, accounts, p)
    _check_achievement(draft.get("achievement", {}), set(granted_ip_numbers), p)
    if kind == KindCode.OWNERSHIP:
        _check_ownership_mode(draft, p)
        if draft.get("achievement", {}).get("funding_source") not in GRANTABLE_FUNDING:
            p.add("achievement.funding_source", msg("可赋予所有权的是利用财政性资金形成或接受企业、其他社会组织委托形成的"
                                                    "职务科技成果（§三(一)1）"))
    else:
        if int(draft.get("term_years", 0)) < MIN_USE_RIGHT_YEARS:
            p.add("term_years", msg("长期使用权期限不得低于{years}年（§三(二)1）", years=MIN_USE_RIGHT_YEARS))
        if draft.get("implementation") == "with_partner" and not str(draft.get("partner", "")).strip():
            p.add("partner", msg("与其他单位共同实施的，应填写合作单位"))
    if draft.get("incentive_mode") != "rights_grant":
        p.add("incentive_mode", msg("选择转化后现金或股权奖励的，不得同时申请赋权：同一成果不重复激励（§三(一)3）"))
    if draft.get("prior_reward_received"):
        p.add("prior_reward_received", msg("本成果已获得转化奖励，不得再申请赋权：同一成果不重复激励（§三(六)2）"))
    if draft.get("pricing_method") == "agreement" and draft.get("proposed_price") is None:
        p.add("proposed_price", msg("协议定价的，应填写拟交易价格，并随公示不少于{days}日（§三(五)1）", days=MIN_PUBLICITY_DAYS))
    p.raise_if_any()


def _check_team(members: list[dict[str, Any]], representative: str, known: Mapping[str, str], p: Problems) -> None:
    usernames: list[str] = [m.get("username", "") for m in members]
    if representative not in usernames:
        p.add("members", msg("指定代表必须是团队成员，请将申请人列入团队成员（§三(一)3）"))
    if len(set(usernames)) != len(usernames):
        p.add("members", msg("团队成员不得重复"))
    for i, (member, name) in enumerate(zip(members, usernames, strict=True)):
        if name not in known:
            p.add(f"members.{i}.username", msg("第{row}行：系统中没有用户“{name}”，每位成员都须在线确认", row=i + 1, name=name))
        elif str(member.get("name", "")).strip() != known[name]:
            # Documents print the account holder's registered name: a typed name must agree with it.
            p.add(f"members.{i}.name", msg('第{row}行：用户 {username} 的姓名为"{registered}"，与填写的"{typed}"不一致',
                                           row=i + 1, username=name, registered=known[name],
                                           typed=str(member.get("name", "")).strip()))
    total = sum((_dec(m.get("share", 0)) for m in members), Decimal(0))
    if total != 100:
        p.add("members", msg("团队内部收益分配比例合计须为100%，当前为{total}%（§三(一)3）", total=f"{total.normalize():f}"))
    for i, m in enumerate(members):
        if m.get("is_principal_leader") and not m.get("is_leader"):
            p.add(f"members.{i}.is_leader", msg("第{row}行：单位正职领导应同时勾选“担任领导职务”", row=i + 1))
        if m.get("is_principal_leader") and m.get("reward_mode") in EQUITY_MODES:
            p.add(f"members.{i}.reward_mode",
                  msg("第{row}行：单位正职领导可以获得现金奖励，原则上不得获取股权激励（§三(六)3）", row=i + 1))
        if m.get("is_leader") and not str(m.get("contribution", "")).strip():
            p.add(f"members.{i}.contribution",
                  msg("第{row}行：担任领导职务的成员须填写贡献情况，将予以公示（§三(六)3）", row=i + 1))


def _check_achievement(achievement: dict[str, Any], granted: set[str], p: Problems) -> None:
    ip_type, numbers = achievement.get("ip_type"), achievement.get("ip_numbers", [])
    if ip_type == UNFILED_IP_TYPE and numbers:
        p.add("achievement.ip_numbers", msg("知识产权共同申请权仅适用于尚未申请知识产权的成果，不应填写知识产权编号（§三(一)2）"))
    if ip_type not in NUMBERLESS_IP_TYPES and not numbers:
        p.add("achievement.ip_numbers", msg("请填写知识产权编号（专利号、登记号等）"))
    _check_claims(numbers, granted, p)


def _check_claims(numbers: Iterable[str], claimed: set[str], p: Problems) -> None:
    for number in numbers:
        if number in claimed:
            p.add("achievement.ip_numbers", msg("成果“{number}”已有赋权申请或已获赋权，同一成果不重复激励（§三(一)3）", number=number))


def check_unclaimed(numbers: Iterable[str], claimed: Iterable[str]) -> None:
    """The no-double-reward refusal alone: a number another application claimed at the same time
    (the claims table's unique index refused the second, workflows/models.py claim_numbers)."""
    p = Problems()
    _check_claims(numbers, set(claimed), p)
    p.raise_if_any()


def _check_ownership_mode(draft: dict[str, Any], p: Problems) -> None:
    if draft.get("ownership_mode") == "shares":
        share = draft.get("team_share")
        if share is None:
            p.add("team_share", msg("按份共有的，须填写团队持有份额"))
        elif _dec(share) < MIN_TEAM_SHARE:
            p.add("team_share", msg("按份共有的，成果完成人（团队）持有的份额不得低于{share}%（§三(一)1）", share=MIN_TEAM_SHARE))
    elif draft.get("team_share") is not None:
        p.add("team_share", msg("共同共有不按份额划分，请勿填写团队持有份额"))


def leaders_to_publish(draft: dict[str, Any]) -> list[dict[str, Any]]:
    """Members holding leadership posts: their reward is posted with the notice (§三(六)3)."""
    return [m for m in draft.get("members", []) if m.get("is_leader")]


def check_review(review: dict[str, Any], draft: dict[str, Any]) -> None:
    """The office's review: eligibility (§三(一)2) and the excluded categories, never granted."""
    p = Problems()
    decision, excluded = review.get("decision"), review.get("excluded_category", "none")
    declared = draft.get("security_categories") or []
    if decision == "approve":
        if excluded != "none" or declared:
            p.add("decision", msg("涉及国家安全、国防安全、公共安全、经济安全、社会稳定等国家利益和重大社会公共利益，"
                                  "或涉及国家秘密的成果，不纳入赋权范围，只能不予赋权（§三(一)2）"))
        failing = [k for k, v in review.get("checks", {}).items() if not v]
        if failing:  # one message for all the unmet conditions, at the first of them
            p.add(f"checks.{failing[0]}", msg("赋权成果应具备权属清晰、应用前景明朗、承接对象明确、转化意愿强烈等条件，未满足的不得通过（§三(一)2）"))
    elif decision == "return" and excluded != "none":
        p.add("decision", msg("属于不纳入赋权范围的情形，应不予赋权并说明理由，而不是退回修改（§三(一)2）"))
    if decision in ("return", "refuse") and not str(review.get("comments", "")).strip():
        p.add("comments", msg("退回或不予赋权的，须填写审查意见说明理由"))
    p.raise_if_any()


def check_unit_decision(decision: dict[str, Any], today_iso: str) -> None:
    """A collective decision (§三(七)1(2)): the result must follow the votes, reasons recorded."""
    p = Problems()
    cast = sum(int(decision.get(k, 0)) for k in ("votes_for", "votes_against", "votes_abstain"))
    if cast == 0:
        p.add("votes_for", msg("集体决策须记录表决情况"))
    elif decision.get("result") == "approve" and int(decision.get("votes_for", 0)) * 2 <= cast:
        p.add("result", msg("赞成票未超过参加表决人数的半数，不能作出同意赋权的决定"))
    if decision.get("result") in ("refuse", "return") and not str(decision.get("reason", "")).strip():
        p.add("reason", msg("不同意或退回的，须填写决策理由"))
    if str(decision.get("meeting_date", "")) > today_iso:
        p.add("meeting_date", msg("会议日期不能晚于今天"))
    p.raise_if_any()


TERMS_CLAUSES: dict[str, dict[str, Message]] = {
    KindCode.OWNERSHIP: OWNERSHIP_CLAUSES, KindCode.USE_RIGHT: USE_RIGHT_CLAUSES, KindCode.EXTENSION: SUPPLEMENTARY_CLAUSES}


def check_terms(kind: str, terms: dict[str, Any]) -> None:
    """The agreement clauses (§三(一)4, §三(二)2) and the income floor (§三(六)1)."""
    p = Problems()
    for key, name in TERMS_CLAUSES[kind].items():
        if terms.get(key) is None or not str(terms.get(key)).strip():
            p.add(key, msg("协议条款“{name}”不能为空，否则不能生成协议", name=name))
    if kind == KindCode.USE_RIGHT and terms.get("licence_term_years") is not None \
            and int(terms["licence_term_years"]) < MIN_USE_RIGHT_YEARS:
        p.add("licence_term_years", msg("许可期限不得低于{years}年（§三(二)1）", years=MIN_USE_RIGHT_YEARS))
    if kind != KindCode.EXTENSION:
        inventors, tto = _dec(terms.get("inventor_income_percent", 0)), _dec(terms.get("tto_income_percent", 0))
        if inventors < MIN_INVENTOR_INCOME:
            p.add("inventor_income_percent", msg("用于奖励成果完成人的比例不得低于{percent}%（§三(六)1）", percent=MIN_INVENTOR_INCOME))
        if tto < MIN_TTO_INCOME:
            p.add("tto_income_percent", msg("技术转移机构运行经费比例不得低于{percent}%（§三(六)1）", percent=MIN_TTO_INCOME))
        if inventors + tto > 100:
            p.add("tto_income_percent", msg("各项提取比例合计不得超过100%"))
    p.raise_if_any()


LICENCE_MODE_NAMES = {"exclusive": msg("独占许可"), "sole": msg("排他许可"), "ordinary": msg("普通许可")}


def check_terms_as_publicized(kind: str, terms: dict[str, Any], draft: dict[str, Any]) -> None:
    """The agreement grants what the unit decided and publicized (§三(一)3, §三(二)1): the use-right
    term and licence mode typed at the agreement step must equal the draft's. Ownership mode, team
    share and the members with their shares are not re-entered: the agreement prints the draft's."""
    if kind != KindCode.USE_RIGHT:
        return
    p = Problems()
    if terms.get("licence_term_years") is not None and draft.get("term_years") is not None \
            and int(terms["licence_term_years"]) != int(draft["term_years"]):
        p.add("licence_term_years", msg("许可期限{terms}年与经决策并公示的使用权期限{draft}年不一致；"
                                        "变更须退回重新决策并公示", terms=terms["licence_term_years"],
                                        draft=draft["term_years"]))
    if draft.get("licence_mode") and terms.get("licence_mode") != draft["licence_mode"]:
        p.add("licence_mode", msg("许可方式与经决策并公示的“{mode}”不一致；变更须退回重新决策并公示",
                                  mode=LICENCE_MODE_NAMES.get(draft["licence_mode"], draft["licence_mode"])))
    p.raise_if_any()


def check_ip_transfer(data: dict[str, Any], today_iso: str) -> None:
    """A filing is recorded after it happened: its date cannot lie in the future."""
    if str(data.get("filing_date", "")) > today_iso:
        raise ValidationFailed([{"field": "filing_date", "message": msg("办理日期不能晚于今天")}])


def check_publicity_days(days: int) -> None:
    if days < MIN_PUBLICITY_DAYS:
        raise ValidationFailed([{"field": "publicity_days",
                                 "message": msg("公示期不得少于{days}日（§三(一)3）", days=MIN_PUBLICITY_DAYS)}])


def check_extension_review(review: dict[str, Any]) -> None:
    """Extension only when the team kept the agreement and conversion goes well (§三(二)2)."""
    p = Problems()
    if review.get("decision") == "approve":
        if not review.get("agreement_kept"):
            p.add("agreement_kept", msg("团队未履行协议的，不得延长长期使用权（§三(二)2）"))
        if not review.get("conversion_progressing"):
            p.add("conversion_progressing", msg("成果转化未取得积极进展、收益情况不佳的，不得延长长期使用权（§三(二)2）"))
    if review.get("decision") in ("return", "refuse") and not str(review.get("comments", "")).strip():
        p.add("comments", msg("退回或不予延长的，须填写审查意见"))
    p.raise_if_any()


def check_signature_decision(data: dict[str, Any]) -> None:
    if data.get("decision") == "request_changes" and not str(data.get("comment", "")).strip():
        raise ValidationFailed([{"field": "comment", "message": msg("要求修改条款的，请说明需要修改的内容")}])
