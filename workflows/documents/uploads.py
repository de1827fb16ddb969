"""Attachments people upload: size-limited, and only PDF or common images, judged by content."""
from __future__ import annotations

import re

from sqlalchemy.orm import Session

from workflows import settings
from workflows.errors import ValidationFailed
from workflows.i18n import msg
from workflows.models import Application, Document, User
from workflows.people import access

from . import document_store

SIGNATURES = {
    b"%PDF-": ("application/pdf", ".pdf"),
    b"\x89PNG\r\n\x1a\n": ("image/png", ".png"),
    b"\xff\xd8\xff": ("image/jpeg", ".jpg"),
}


def sniff(content: bytes) -> tuple[str, str] | None:
    for magic, kind in SIGNATURES.items():
        if content.startswith(magic):
            return kind
    return None


def safe_filename(name: str, extension: str) -> str:
    """Keep Chinese and plain characters; drop paths and anything a shell or header would mind."""
    stem = re.sub(r"[^\w\u4e00-\u9fff.-]+", "_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{(stem or '附件')[:80]}{extension}"


def accept(session: Session, app: Application | None, filename: str, content: bytes,
           actor: User | None, field: str = "file") -> Document:
    """Store an upload after checking its size and real type; refuse anything else in Chinese."""
    if app is not None and actor is not None:
        access.check_may_attach(actor, app)
    limit = settings.get().max_upload_bytes
    if not content:
        raise ValidationFailed([{"field": field, "message": msg("上传的文件为空")}])
    if len(content) > limit:
        raise ValidationFailed([{"field": field, "message": msg("文件不得超过{size}MB", size=limit // (1024 * 1024))}])
    kind = sniff(content)
    if kind is None:
        raise ValidationFailed([{"field": field, "message": msg("只能上传PDF、PNG或JPEG文件")}])
    content_type, extension = kind
    return document_store.store(session, app, "attachment", safe_filename(filename, extension), content,
                         content_type, actor)
