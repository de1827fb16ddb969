"""The two parties' signatures of an agreement as a step: the password again (never stored),
then the person's PAdES signature added to the PDF (workflows/evidence/signing.py does the PDF), and the
Signature row that indexes the signed bytes."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import SIGN_STEP_PARTY, SIGNERS
from workflows.documents import document_store
from workflows.errors import ValidationFailed, WrongState
from workflows.evidence import signing
from workflows.i18n import msg
from workflows.models import Application, Document, Signature, User
from workflows.people import accounts

from . import policy

SIGN_LABELS = {party: (label, title) for party, (_step, label, title, _doc) in SIGNERS.items()}


def sign_step(session: Session, actor: User, app: Application, step: str, data: dict[str, Any]) -> dict[str, Any]:
    """Password again, never stored; then the server adds this person's PAdES signature to the PDF
    (on top of the other party's, if any) and the Signature row indexes the signed bytes."""
    policy.check_signature_decision(data)
    payload = {k: v for k, v in data.items() if k != "password"}
    if data.get("decision") != "sign":
        return payload
    if not accounts.check_password(actor, data.get("password", "")):
        raise ValidationFailed([{"field": "password", "message": msg("密码不正确，签署未生效")}])
    document = latest_document(session, app, "agreement_draft")
    if document is None:
        raise WrongState(msg("协议文本尚未生成，不能签署"))
    role = SIGN_STEP_PARTY[step]
    base = signed_so_far(session, app, document)
    label, title = SIGN_LABELS[role]  # printed in the PDF stamp: Chinese, never translated
    pdf = signing.sign_as(document_store.read(base), app.unit, f"Sig_{role}", actor.name, f"{label}（{actor.username}）",
                          title, username=actor.username)
    signed = document_store.store(session, app, "agreement_signed", f"{app.number}-协议（{label}已签署）.pdf", pdf,
                           actor=actor)
    signature = Signature(application_id=app.id, document_id=document.id, role=role,
                          user_id=actor.id, signed_at=clock.now(), sha256=signed.sha256)
    session.add(signature)
    session.flush()
    payload.update(signed_sha256=signed.sha256, signature_id=signature.id, signed_document_id=signed.id,
                   draft_sha256=document.sha256)
    return payload


def signed_so_far(session: Session, app: Application, draft: Document) -> Document:
    """The latest signed copy of this draft (signatures accumulate as incremental updates), or the draft."""
    signed = session.execute(select(Document).where(
        Document.application_id == app.id, Document.kind == "agreement_signed", Document.id > draft.id)
        .order_by(Document.id.desc()).limit(1)).scalar_one_or_none()
    return signed or draft


def latest_document(session: Session, app: Application, kind: str) -> Document | None:
    return session.execute(select(Document).where(Document.application_id == app.id, Document.kind == kind)
                           .order_by(Document.id.desc()).limit(1)).scalar_one_or_none()
