"""The public board: notices under publicity and objections anyone may file without an account."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import NoticeKind, NoticeOutcome, ObjectionStatus, Process
from workflows.documents import uploads
from workflows.errors import Forbidden, GrantError, NotFound, ValidationFailed, WrongState
from workflows.evidence import audit
from workflows.i18n import msg
from workflows.models import Objection, PublicityNotice
from workflows.people import accounts
from workflows.process import engine, forms

MAX_PER_CLIENT_PER_DAY = 5
# Receipt look-ups (回执查询): wrong guesses from one address lock it like sign-in does
# (1, 2, 4 … 15 minutes); guesses on one receipt from anywhere lock that receipt for 15 minutes.
LOOKUP_FAILURES_PER_CLIENT = 10
LOOKUP_FAILURES_PER_RECEIPT = 20
NOTICE_KINDS = (NoticeKind.GRANT, NoticeKind.PRICE, NoticeKind.LEADER_REWARD)


def open_notices(unit_id: int | None = None) -> Select[PublicityNotice]:
    now = clock.now()
    query = (select(PublicityNotice).where(PublicityNotice.closed_at.is_(None), PublicityNotice.starts_at <= now,
                                           PublicityNotice.ends_at > now).order_by(PublicityNotice.ends_at))
    return query if unit_id is None else query.where(PublicityNotice.unit_id == unit_id)


def ended_notices(unit_id: int | None = None) -> Select[PublicityNotice]:
    """Past notices (往期公示): closed, or their term is over though the sweep has not closed them
    yet. Both conditions read the index on (closed_at, ends_at) alone."""
    query = select(PublicityNotice).where(or_(PublicityNotice.closed_at.is_not(None),
                                              PublicityNotice.ends_at <= clock.now()))
    return query if unit_id is None else query.where(PublicityNotice.unit_id == unit_id)


def is_open(notice: PublicityNotice) -> bool:
    now = clock.now()
    return notice.closed_at is None and clock.as_utc(notice.starts_at) <= now < clock.as_utc(notice.ends_at)


def objection_counts(session: Session, notice_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(objections filed, still open) per notice, for a whole page in one grouped query."""
    if not notice_ids:
        return {}
    rows = session.execute(select(Objection.notice_id, func.count(),
                                  func.sum(case((Objection.status == ObjectionStatus.OPEN, 1), else_=0)))
                           .where(Objection.notice_id.in_(notice_ids)).group_by(Objection.notice_id)).all()
    found = dict.fromkeys(notice_ids, (0, 0))
    found.update({int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows})
    return found


def outcome_of(notice: PublicityNotice, filed: int, still_open: int) -> str:
    """What the public is told about a notice: open, or how it ended.

    open · closing (term over, the sweep has not closed it yet) · handling (objections still
    being handled) · no_objection · dismissed (objections found unfounded) · restarted · upheld."""
    if is_open(notice):
        return "open"
    if notice.outcome in (NoticeOutcome.RESTARTED, NoticeOutcome.UPHELD):
        return notice.outcome
    if notice.closed_at is None:
        return "closing"
    if still_open:
        return "handling"
    return "dismissed" if filed else "no_objection"


def client_key(remote_addr: str) -> str:
    """Clients are counted by a hash of their address: enough to limit abuse, nothing to leak."""
    return hashlib.sha256(remote_addr.encode()).hexdigest()[:32]


def file_objection(session: Session, notice_id: int, data: dict[str, Any], client: str,
                   attachment: tuple[str, bytes] | None = None) -> Objection:
    """Record an objection and hand it to the process; refused once the term is over. Every
    problem of the fields and of the attachment (filename, bytes) is reported at once."""
    notice = session.get(PublicityNotice, notice_id)
    if notice is None:
        raise NotFound(msg("公示不存在"))
    if notice.closed_at is not None or clock.as_utc(notice.ends_at) <= clock.now():
        raise WrongState(msg("公示期已结束，不再受理异议"))
    problems = _problems(lambda: forms.validate("objection.schema.json", data))
    attachment_id = None
    if attachment is not None:
        stored = []
        problems += _problems(lambda: stored.append(uploads.accept(
            session, notice.application, attachment[0], attachment[1], None, field="attachment")))
        attachment_id = stored[0].id if stored else None
    if problems:
        raise ValidationFailed(problems)
    since = clock.now() - timedelta(days=1)
    recent = session.execute(select(func.count()).select_from(Objection).where(
        Objection.client == client, Objection.filed_at >= since)).scalar_one()
    if recent >= MAX_PER_CLIENT_PER_DAY:
        raise Forbidden(msg("提交过于频繁，请明天再试或联系公示单位"))
    objection = Objection(receipt=f"YY{clock.local_date(clock.now()):%Y%m%d}-{secrets.token_hex(4).upper()}",
                          notice_id=notice.id, application_id=notice.application_id, name=data["name"],
                          contact=data["contact"], reason=data["reason"], client=client,
                          attachment_id=attachment_id)
    session.add(objection)
    session.flush()
    engine.deliver_message(session, notice.application, "objection", {"objection_id": objection.id})
    audit.record(session, actor="public", action="objection", unit_id=notice.unit_id,
                 application_id=notice.application_id, step=Process.PUBLICITY, data=data,
                 detail={"receipt": objection.receipt})
    return objection


def _problems(check: Callable[[], object]) -> list[dict[str, Any]]:
    try:
        check()
    except ValidationFailed as exc:
        return list(exc.errors)
    return []


def _normalized_contact(text: str) -> str:
    """People retype a phone number or address with spaces, dashes or capitals: ignore those."""
    return re.sub(r"[\s\-()（）]", "", text or "").lower()


def lookup_receipt(session: Session, receipt: str, contact: str, client: str) -> Objection:
    """An objection by its receipt number and the contact given when filing (the second factor,
    so numbers cannot be tried one after another); throttled like sign-in. The same message for
    an unknown number and a wrong contact. The caller commits even on refusal (the counters)."""
    receipt = (receipt or "").strip().upper()
    by_client = accounts.throttle_key("receipt-client", client)
    by_receipt = accounts.throttle_key("receipt", receipt)
    accounts.take_attempts(session, (by_client, by_receipt))
    objection = session.execute(select(Objection).where(Objection.receipt == receipt)).scalar_one_or_none() \
        if receipt else None
    given, kept = _normalized_contact(contact), _normalized_contact(objection.contact if objection else "")
    if objection is None or not given or not hmac.compare_digest(given.encode(), kept.encode()):
        accounts.note_failures(session, ((by_client, LOOKUP_FAILURES_PER_CLIENT, True),
                                         (by_receipt, LOOKUP_FAILURES_PER_RECEIPT, False)))
        raise GrantError(msg("回执编号或联系方式不正确"))
    accounts.clear_attempts(session, (by_receipt,))
    return objection


def receipt_status(session: Session, objection: Objection) -> dict[str, Any]:
    """What the objector may read: the state of their own objection and the notice's outcome,
    nothing about anyone else (a superseded objection does not name the one that decided)."""
    notice = session.get(PublicityNotice, objection.notice_id)
    if notice is None:
        raise NotFound(msg("公示不存在"))
    filed, still_open = objection_counts(session, [notice.id])[notice.id]
    handled = objection.status in (ObjectionStatus.DISMISSED, ObjectionStatus.UPHELD)
    return {"receipt": objection.receipt, "status": objection.status, "filed_at": objection.filed_at,
            "handled_at": objection.handled_at, "reasoning": objection.reasoning if handled else None,
            "notice": notice, "notice_outcome": outcome_of(notice, filed, still_open)}
