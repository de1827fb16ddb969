"""回避 without a stranded application: a team member may not act for the unit, so a role whose
only holders in the unit are team members leaves its task with nobody to take it. The draft
form and its submission warn about it; an administrator granting the role to someone else
makes the queued task claimable (queues are read from the grants, nothing to migrate)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from workflows.catalogue import RoleCode
from workflows.i18n import Message, msg
from workflows.models import Application, RoleGrant, User
from workflows.process.assignment import ROLE_NAMES

UNIT_ROLES = (RoleCode.TTO, RoleCode.DECIDER, RoleCode.SIGNER)  # the queue roles a grant needs after the draft


def stranded_roles(session: Session, unit_id: int, usernames: Iterable[str]) -> dict[str, list[User]]:
    """Role -> the team members holding it, for each role nobody outside the team holds."""
    team = set(usernames)
    stranded: dict[str, list[User]] = {}
    for role in UNIT_ROLES:
        holders = session.execute(select(User).join(RoleGrant).where(
            RoleGrant.role == role, or_(RoleGrant.unit_id == unit_id, RoleGrant.unit_id.is_(None)),
            User.active.is_(True)).order_by(User.username)).scalars().unique().all()
        if holders and all(u.username in team for u in holders):
            stranded[role] = list(holders)
    return stranded


def warnings(session: Session, app: Application, draft: dict[str, Any] | None) -> list[Message]:
    """Warnings for the draft form: the typed members, and the representative who is always one."""
    usernames: set[str] = {m.get("username", "") for m in (draft or {}).get("members", []) if isinstance(m, dict)}
    usernames.add(app.representative.username)
    return [msg("{names}是本单位仅有的{role}，作为团队成员须回避，申请到该环节将无人处理；"
                "请联系管理员为团队以外的人员授予“{role}”角色", role=ROLE_NAMES[role],
                names="、".join(f"{u.name}（{u.username}）" for u in holders))
            for role, holders in stranded_roles(session, app.unit_id, usernames).items()]
