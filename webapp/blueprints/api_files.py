"""Thin API adapters over the engine's access rules for files."""
from __future__ import annotations

from sqlalchemy.orm import Session

from workflows.evidence import evidence_pack as packs
from workflows.models import Application, Document, User
from workflows.people import access


def document_for(s: Session, user: User, document_id: int) -> Document:
    return access.get_visible_document(s, user, document_id)


def may_attach(user: User, app: Application) -> None:
    access.check_may_attach(user, app)


def evidence_pack(s: Session, user: User, app: Application) -> tuple[str, bytes]:
    return packs.evidence_pack(s, app, user)
