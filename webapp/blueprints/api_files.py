"""Who may fetch or add files through the API. The engine has no such checks yet (documents are
read on the application page, uploads happen inside forms), so the API states them here."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from workflows import access
from workflows.errors import Forbidden, GrantError, NotFound, WrongState
from workflows.models import CLOSED_STATUSES, Application, Document, User


class NotAvailable(GrantError):
    status = 501


def document_for(s: Session, user: User, document_id: int) -> Document:
    """A stored document of an application the user may see; any other id looks absent (404)."""
    doc = s.get(Document, document_id)
    if doc is None or doc.application_id is None:
        raise NotFound(_("文件不存在或您无权查看"))
    try:
        access.get_visible(s, user, doc.application_id)
    except NotFound as exc:
        raise NotFound(_("文件不存在或您无权查看")) from exc
    return doc


def may_attach(user: User, app: Application) -> None:
    """The team adds its material, and the unit's tech-transfer office its evidence, while open."""
    if user.id not in app.member_ids() and not user.has_role("tto", app.unit_id):
        raise Forbidden(_("只有团队成员或成果转化部门经办人可以上传附件"))
    if app.status in CLOSED_STATUSES:
        raise WrongState(_("申请已结束，不能再上传附件"))


def evidence_pack(s: Session, user: User, app: Application) -> tuple[str, bytes]:
    """The evidence ZIP goes to auditors and the tech-transfer office of the unit, and to the team."""
    if not (user.id in app.member_ids() or user.has_role("auditor", app.unit_id)
            or user.has_role("tto", app.unit_id)):
        raise Forbidden(_("只有审计人员、成果转化部门经办人和团队成员可以下载证据包"))
    try:
        from workflows import archive
    except ImportError as exc:  # the archive module is not deployed in this build
        raise NotAvailable(_("证据包功能暂不可用")) from exc
    return archive.evidence_pack(s, app)
