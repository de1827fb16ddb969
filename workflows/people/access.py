"""Who may see what: team members see their applications; unit staff and auditors their unit's."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from workflows.catalogue import GRANTABLE_ROLES, READ_ONLY_ROLES, KindCode, RoleCode
from workflows.errors import Forbidden, NotFound, ValidationFailed, WrongState
from workflows.i18n import Message, msg
from workflows.models import CLOSED_STATUSES, Application, ApplicationMember, Document, User

STAFF_ROLES = (RoleCode.TTO, RoleCode.DECIDER, RoleCode.SIGNER, RoleCode.AUDITOR, RoleCode.ADMIN, RoleCode.CITY_AUDITOR)
WRITER_ROLES = tuple(r for r in GRANTABLE_ROLES if r not in READ_ONLY_ROLES)


class SystemActor:
    """A command run on the server itself (the `grants` CLI, demo seeding): whoever can run it
    administers the machine, so it acts as an administrator of every unit, and only that. It is
    named in the audit log as `system:<name>`; it holds no unit role, so it completes no task."""

    id = None
    roles: tuple[Any, ...] = ()

    def __init__(self, name: str):
        self.username = self.name = f"system:{name}"

    def has_role(self, role: str, unit_id: int | None = None) -> bool:
        return role == RoleCode.ADMIN

    def units_for(self, role: str) -> set[int | None]:
        return {None} if role == RoleCode.ADMIN else set()


def require_admin(actor: User | SystemActor | None, message: Message | str | None = None) -> None:
    """Administrators whose role spans every unit (or a system command); checked here, not only by
    the admin pages, so a CLI or another front end cannot skip it."""
    if actor is None or None not in actor.units_for(RoleCode.ADMIN):
        raise Forbidden(message or msg("只有系统管理员可以执行此操作"))


def check_may_write(user: User) -> None:
    """Auditors read and never write: someone whose only roles are read-only changes nothing,
    whichever front end asks."""
    roles = {grant.role for grant in user.roles}
    if roles and roles <= set(READ_ONLY_ROLES):
        raise Forbidden(msg("审计人员只能查看，不能执行任何操作"))


def staff_unit_ids(user: User) -> set[int | None]:
    """Units whose applications the user may read as staff; None inside means every unit."""
    units: set[int | None] = set()
    for role in STAFF_ROLES:
        units |= user.units_for(role)
    return units


def can_view(user: User, app: Application) -> bool:
    units = staff_unit_ids(user)
    return None in units or app.unit_id in units or user.id in app.member_ids()


def get_visible(session: Session, user: User, application_id: int, options: Sequence[ORMOption] = ()) -> Application:
    """The application if the user may see it (`options`: loader options, as Session.get takes)."""
    return visible(user, session.get(Application, application_id, options=options))


def visible(user: User, app: Application | None) -> Application:
    """The application read by the caller, if the user may see it (`get_visible`'s check)."""
    if app is None or not can_view(user, app):
        # Not yours looks the same as not there: ids of other teams' work leak nothing.
        raise NotFound(msg("申请不存在或您无权查看"))
    return app


class Sources(NamedTuple):
    """Where the applications a user may read come from, one condition each: `units`, each unit
    they are staff of; `personal`, those they represent and those they are on the team of."""

    units: list[ColumnElement[bool]]
    personal: list[ColumnElement[bool]]

    @property
    def all(self) -> list[ColumnElement[bool]]:
        return [*self.units, *self.personal]


def application_sources(user: User) -> Sources | None:
    """The user's sources (None: every application). Lists read each from its own index
    (`queries.application_page`)."""
    units = staff_unit_ids(user)
    if None in units:
        return None
    mine = select(ApplicationMember.application_id).where(ApplicationMember.user_id == user.id)
    return Sources([Application.unit_id == u for u in sorted(u for u in units if u is not None)],
                   [Application.representative_id == user.id, Application.id.in_(mine)])


def visible_applications(user: User) -> Select[Application]:
    """A query for every application the user may read."""
    sources = application_sources(user)
    query = select(Application)
    return query if sources is None else query.where(or_(*sources.all))


def require_role(user: User, role: str, unit_id: int | None) -> None:
    if not user.has_role(role, unit_id):
        raise Forbidden(msg("您没有执行此操作的权限"))


def check_may_attach(user: User, app: Application) -> None:
    """The team adds its material, and the unit's tech-transfer office its evidence, while open."""
    if user.id not in app.member_ids() and not user.has_role(RoleCode.TTO, app.unit_id):
        raise Forbidden(msg("只有团队成员或成果转化部门经办人可以上传附件"))
    if app.status in CLOSED_STATUSES and app.kind != KindCode.CONVERSION:  # a conversion's ledger stays open
        raise WrongState(msg("申请已结束，不能再上传附件"))


def may_download_evidence(user: User, app: Application) -> bool:
    """Auditors and the unit's tech-transfer office hold the evidence; the team may see its own."""
    return (user.id in app.member_ids() or user.has_role(RoleCode.AUDITOR, app.unit_id)
            or user.has_role(RoleCode.TTO, app.unit_id))


def check_may_download_evidence(user: User, app: Application) -> None:
    if not may_download_evidence(user, app):
        raise Forbidden(msg("只有审计人员、成果转化部门经办人和团队成员可以下载证据包"))


def get_visible_document(session: Session, user: User, document_id: int) -> Document:
    """A stored document of an application the user may see; any other id looks absent."""
    doc = session.get(Document, document_id)
    if doc is None or doc.application_id is None or not can_view(user, session.get_one(Application, doc.application_id)):
        raise NotFound(msg("文件不存在或您无权查看"))
    return doc


def may_see_objectors(user: User, app: Application) -> bool:
    """Who objected (name, contact) is told only to the tech-transfer office handling the
    objection, and to the unit's auditors unless the unit turned that off
    (`Unit.auditors_see_objectors`, default yes: an auditor must be able to check that each
    objection was answered). Never to the team, the signatory or the decision-maker — the
    people an objection is about, or who could put pressure on the objector."""
    if user.id in app.member_ids():
        return False
    if user.has_role(RoleCode.TTO, app.unit_id):
        return True
    return bool(app.unit.auditors_see_objectors) and user.has_role(RoleCode.AUDITOR, app.unit_id)


def own_document(session: Session, app: Application, document_id: object) -> Document | None:
    """The document if it belongs to this application; any other id names nothing."""
    if not isinstance(document_id, int) or isinstance(document_id, bool) or not 0 < document_id < 2**31:
        return None
    doc = session.get(Document, document_id)
    return doc if doc is not None and doc.application_id == app.id else None


def document_ids(data: Any) -> list[Any]:
    """Every value under a key ending in `document_id`, at any depth of a form's data."""
    found: list[Any] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and key.endswith("document_id") and not isinstance(value, (dict, list)):
                    found.append(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def check_own_documents(session: Session, app: Application, data: Any) -> None:
    """A saved draft may only name this application's documents (else others' filenames leak)."""
    if any(own_document(session, app, i) is None for i in document_ids(data) if i not in (None, "")):
        raise ValidationFailed([{"field": "attachments", "message": msg("附件不存在或不属于本申请")}])
