"""Who does a task: lanes name roles; some tasks are personal to one team member."""
from __future__ import annotations

from typing import Any

from workflows.catalogue import LANE_ROLES, PERSONAL_ROLES, RoleCode
from workflows.catalogue import ROLE_LABELS as ROLE_NAMES
from workflows.errors import Forbidden
from workflows.i18n import msg
from workflows.models import Application, HumanTask, User

__all__ = ["LANE_ROLES", "PERSONAL_ROLES", "ROLE_NAMES"]


def role_for_lane(lane: str) -> str:
    try:
        return LANE_ROLES[lane]
    except KeyError:
        raise ValueError(f"lane {lane!r} names no role; see docs/PROCESS.md") from None


def personal_assignee_username(role: str, app: Application, data: dict[str, Any]) -> str | None:
    if role == RoleCode.REPRESENTATIVE:
        return app.representative.username
    if role == RoleCode.MEMBER:
        return (data.get("member") or {}).get("username")
    return None


def check_may_complete(user: User, task: HumanTask) -> None:
    """The person matches a personal task; the role (in the task's unit) matches a queue task."""
    if task.role in PERSONAL_ROLES:
        if task.assignee_id != user.id:
            raise Forbidden(msg("这是其他成员的个人任务，您无权处理"))
        return
    check_may_claim(user, task)
    if task.assignee_id not in (None, user.id):
        raise Forbidden(msg("该任务已由{name}认领", name=task.assignee.name if task.assignee else ""))


def check_may_claim(user: User, task: HumanTask) -> None:
    if task.role in PERSONAL_ROLES:
        raise Forbidden(msg("个人任务无需认领"))
    if not user.has_role(task.role, task.unit_id):
        raise Forbidden(msg("该任务需由{role}处理，您没有该角色", role=ROLE_NAMES[task.role]))
    if user.id in task.application.member_ids():
        raise Forbidden(msg("您是该成果团队成员，应当回避，不得以单位身份处理本申请"))
