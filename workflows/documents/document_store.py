"""Stored documents: bytes kept with their SHA-256, verified on every read."""
from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from workflows.errors import TamperedDocument
from workflows.evidence import audit
from workflows.i18n import msg
from workflows.models import Application, Document, User

PDF = "application/pdf"


def store(session: Session, app: Application | None, kind: str, filename: str, content: bytes,
          content_type: str = PDF, actor: User | None = None) -> Document:
    doc = Document(application_id=app.id if app else None, kind=kind, filename=filename,
                   content_type=content_type, sha256=hashlib.sha256(content).hexdigest(), size=len(content),
                   content=content, created_by_id=actor.id if actor else None)
    session.add(doc)
    session.flush()
    # The hash goes into the signed audit log: a pack's copy can then be checked without us.
    audit.record(session, actor=actor.username if actor else "system", action="document",
                 unit_id=app.unit_id if app else None, application_id=app.id if app else None,
                 detail={"document_id": doc.id, "kind": kind, "filename": filename, "sha256": doc.sha256,
                         "size": doc.size})
    return doc


def read(doc: Document) -> bytes:
    """The stored bytes, only if they still hash to the recorded SHA-256."""
    content = doc.content
    if hashlib.sha256(content).hexdigest() != doc.sha256:
        raise TamperedDocument(msg("文件“{filename}”的内容与存档时的SHA-256不符，可能已被篡改，已拒绝提供", filename=doc.filename))
    return content
