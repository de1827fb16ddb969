"""The evidence pack (尽职免责证据包): everything an auditor needs to show, years later, that
every procedure ran and the documents are the ones that were signed (§三(七))."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from . import access, queries, records
from .models import Application, User


def evidence_pack(session: Session, app: Application, user: User) -> tuple[str, bytes]:
    """A ZIP of every stored document (hash-checked), the form data, audit trail and publicity."""
    access.check_may_download_evidence(user, app)
    from .documents import build_evidence_pack
    files = [(f"{doc.id:04d}-{doc.filename}", records.read(doc)) for doc in queries.documents(session, app)]
    pack = build_evidence_pack(files, _form_data(session, app), _audit_rows(session, app), _publicity(session, app))
    return f"{app.number}-尽职免责证据包.zip", pack


def _form_data(session: Session, app: Application) -> dict[str, Any]:
    data = queries.application_data(app)
    return {"application": {"number": app.number, "kind": app.kind, "status": app.status, "title": app.title,
                            "unit": app.unit.name, "representative": app.representative.username,
                            "created_at": app.created_at.isoformat(),
                            "bpmn_version_sha256": app.state.process_version.sha256},
            "submitted": {k: v for k, v in data.items() if not k.startswith("spiff__")},
            "signatures": [{"role": s.role, "signer": s.user.username, "name": s.user.name,
                            "signed_at": s.signed_at.isoformat(), "document_sha256": s.sha256, "valid": s.valid}
                           for s in queries.signatures(session, app)]}


def _audit_rows(session: Session, app: Application) -> list[dict[str, Any]]:
    return [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "step": e.step,
             "data_digest": e.data_digest, "prev_hash": e.prev_hash, "hash": e.hash}
            for e in queries.history(session, app)]


def _publicity(session: Session, app: Application) -> dict[str, Any]:
    objections = queries.objections(session, app)
    return {"notices": [{"round": n.round, "starts_at": n.starts_at.isoformat(), "ends_at": n.ends_at.isoformat(),
                         "last_day": n.last_day, "closed_at": n.closed_at.isoformat() if n.closed_at else None,
                         "outcome": n.outcome,
                         "objections": [{"receipt": o.receipt, "filed_at": o.filed_at.isoformat(), "name": o.name,
                                         "reason": o.reason, "status": o.status, "decision": o.decision,
                                         "reasoning": o.reasoning,
                                         "handled_at": o.handled_at.isoformat() if o.handled_at else None}
                                        for o in objections if o.notice_id == n.id]}
                        for n in queries.notices(session, app)]}
