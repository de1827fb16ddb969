"""Append-only audit trail, HMAC-chained so an edited, inserted or deleted row is detected.

Each row's hash is HMAC(key, previous hash + the row's canonical content). The head row holds
the last link: locking it serializes writers, and comparing it exposes a deleted tail.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock, settings
from .models import AuditEvent, AuditHead

GENESIS = "0" * 64


def digest(data: Any) -> str:
    """SHA-256 of canonical JSON: what was submitted, without keeping secrets."""
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def canonical(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _link(prev_hash: str, event: AuditEvent) -> str:
    body = canonical([event.id, event.at.isoformat(), event.unit_id, event.application_id, event.actor,
                      event.action, event.step, event.detail, event.data_digest])
    return hmac.new(settings.get().audit_key, (prev_hash + body).encode(), hashlib.sha256).hexdigest()


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(session: Session, *, actor: str, action: str, unit_id: int | None = None,
           application_id: int | None = None, step: str = "", data: Any = None,
           detail: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event in the caller's transaction."""
    head = _lock_head(session)
    event = AuditEvent(id=head.last_id + 1, at=clock.now(), unit_id=unit_id, application_id=application_id,
                       actor=actor, action=action, step=step, detail=detail or {},
                       data_digest=digest(data if data is not None else {}), prev_hash=head.last_hash)
    event.hash = _link(head.last_hash, event)
    head.last_id, head.last_hash = event.id, event.hash
    session.add(event)
    session.flush()
    return event


def verify(session: Session) -> list[str]:
    """Every problem in the chain, in Chinese; an empty list means the trail is intact."""
    problems, prev_hash, expected_id = [], GENESIS, 1
    for event in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        if event.id != expected_id:
            problems.append(f"审计记录缺失：第{expected_id}至{event.id - 1}条不存在")
        if event.prev_hash != prev_hash:
            problems.append(f"第{event.id}条记录与前一条不衔接")
        if not hmac.compare_digest(_link(event.prev_hash, event), event.hash):
            problems.append(f"第{event.id}条记录内容被修改")
        prev_hash, expected_id = event.hash, event.id + 1
    head = session.get(AuditHead, 1)
    last_id = expected_id - 1
    if head is not None and (head.last_id != last_id or head.last_hash != prev_hash):
        problems.append(f"审计链末端不符：应有{head.last_id}条记录，实有{last_id}条")
    if head is None and last_id:
        problems.append("审计链头记录缺失")
    return problems
