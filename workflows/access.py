"""Who may see what: team members see their applications; unit staff and auditors their unit's."""
from __future__ import annotations

from sqlalchemy import Select, or_, select

from .errors import Forbidden, NotFound
from .models import Application, ApplicationMember, User

STAFF_ROLES = ("tto", "decider", "signer", "auditor", "admin")


def staff_unit_ids(user: User) -> set[int | None]:
    """Units whose applications the user may read as staff; None inside means every unit."""
    units: set[int | None] = set()
    for role in STAFF_ROLES:
        units |= user.units_for(role)
    return units


def can_view(user: User, app: Application) -> bool:
    units = staff_unit_ids(user)
    return None in units or app.unit_id in units or user.id in app.member_ids()


def get_visible(session, user: User, application_id: int) -> Application:
    app = session.get(Application, application_id)
    if app is None or not can_view(user, app):
        # Not yours looks the same as not there: ids of other teams' work leak nothing.
        raise NotFound("申请不存在或您无权查看")
    return app


def visible_applications(user: User) -> Select:
    """A query for every application the user may read."""
    units = staff_unit_ids(user)
    query = select(Application)
    if None in units:
        return query
    mine = select(ApplicationMember.application_id).where(ApplicationMember.user_id == user.id)
    return query.where(or_(Application.unit_id.in_([u for u in units if u is not None]),
                           Application.representative_id == user.id, Application.id.in_(mine)))


def require_role(user: User, role: str, unit_id: int | None) -> None:
    if not user.has_role(role, unit_id):
        raise Forbidden("您没有执行此操作的权限")
