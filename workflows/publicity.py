"""The public board: notices under publicity and objections anyone may file without an account."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from . import audit, clock, engine, forms
from .errors import Forbidden, NotFound, WrongState
from .i18n import msg
from .models import Objection, PublicityNotice

MAX_PER_CLIENT_PER_DAY = 5


def open_notices(unit_id: int | None = None) -> Select[PublicityNotice]:
    now = clock.now()
    query = (select(PublicityNotice).where(PublicityNotice.closed_at.is_(None), PublicityNotice.starts_at <= now,
                                           PublicityNotice.ends_at > now).order_by(PublicityNotice.ends_at))
    return query if unit_id is None else query.where(PublicityNotice.unit_id == unit_id)


def client_key(remote_addr: str) -> str:
    """Clients are counted by a hash of their address: enough to limit abuse, nothing to leak."""
    return hashlib.sha256(remote_addr.encode()).hexdigest()[:32]


def file_objection(session: Session, notice_id: int, data: dict[str, Any], client: str,
                   attachment_id: int | None = None) -> Objection:
    """Record an objection and hand it to the process; refused once the term is over."""
    notice = session.get(PublicityNotice, notice_id)
    if notice is None:
        raise NotFound(msg("公示不存在"))
    if notice.closed_at is not None or notice.ends_at <= clock.now():
        raise WrongState(msg("公示期已结束，不再受理异议"))
    forms.validate("objection.schema.json", data)
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
                 application_id=notice.application_id, step="publicity", data=data,
                 detail={"receipt": objection.receipt})
    return objection
