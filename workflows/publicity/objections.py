"""Objections to a publicity notice, once the office has handled one: what the diagram is told
(is the term over, what the notice's outcome becomes) and what the record keeps (the decision,
who made it, the other open objections closed on the record when a round ends early)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import NoticeOutcome, ObjectionDecision, ObjectionStatus
from workflows.i18n import msg
from workflows.models import HumanTask, Objection, PublicityNotice, User

# A notice's outcome once its term is over: the strongest decision on any late objection wins.
OUTCOME_RANK: dict[str, int] = {NoticeOutcome.PASSED: 0, NoticeOutcome.RESTARTED: 1, NoticeOutcome.UPHELD: 2}
NOTICE_OUTCOME: dict[str, str] = {ObjectionDecision.DISMISS: NoticeOutcome.PASSED,
                                  ObjectionDecision.DISMISS_RESTART: NoticeOutcome.RESTARTED,
                                  ObjectionDecision.UPHOLD: NoticeOutcome.UPHELD}
PUBLICITY_OUTCOME: dict[str, str] = {NoticeOutcome.PASSED: NoticeOutcome.PASSED, NoticeOutcome.RESTARTED: "restart",
                                     NoticeOutcome.UPHELD: NoticeOutcome.UPHELD}


def handling_payload(session: Session, row: HumanTask, data: dict[str, Any]) -> dict[str, Any]:
    """Tell the diagram whether the term is over (then no terminate end: the other open
    objections must still be handled) and what the notice's outcome becomes."""
    objection = session.get(Objection, row.context.get("objection_id"))
    notice = session.get(PublicityNotice, objection.notice_id) if objection else None
    term_over = notice is not None and notice.closed_at is not None
    outcome = _late_outcome(notice.outcome, data["decision"]) if term_over and notice else None
    return {**data, "term_over": term_over, "outcome": PUBLICITY_OUTCOME.get(outcome or "")}


def _late_outcome(current: str | None, decision: str) -> str:
    new = NOTICE_OUTCOME[decision]
    return max(current or NoticeOutcome.PASSED, new, key=OUTCOME_RANK.__getitem__)



def record_handling(session: Session, actor: User, row: HumanTask, payload: dict[str, Any]) -> None:
    objection = session.get(Objection, row.context.get("objection_id"))
    if objection is None:
        return
    objection.status = ObjectionStatus.UPHELD if payload["decision"] == ObjectionDecision.UPHOLD else ObjectionStatus.DISMISSED
    objection.decision, objection.reasoning = payload["decision"], payload["reasoning"]
    objection.handled_by_id, objection.handled_at = actor.id, clock.now()
    notice = session.get_one(PublicityNotice, objection.notice_id)
    if payload.get("term_over"):
        notice.outcome = _late_outcome(notice.outcome, payload["decision"])
    elif payload["decision"] in (ObjectionDecision.UPHOLD, ObjectionDecision.DISMISS_RESTART) and notice.closed_at is None:
        notice.closed_at = clock.now()
        notice.outcome = NOTICE_OUTCOME[payload["decision"]]
        _supersede_open_objections(session, notice, objection)


def _supersede_open_objections(session: Session, notice: PublicityNotice, handled: Objection) -> None:
    """The round ended during its term: the other open objections are closed on the record, not lost."""
    for other in session.execute(select(Objection).where(
            Objection.notice_id == notice.id, Objection.status == ObjectionStatus.OPEN, Objection.id != handled.id)).scalars():
        other.status, other.handled_at = ObjectionStatus.SUPERSEDED, clock.now()
        other.reasoning = msg("公示已因异议{receipt}的处理结论而结束", receipt=handled.receipt)
