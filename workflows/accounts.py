"""Users and passwords: hashing, sign-in with lockout, roles per unit."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit, clock
from .errors import Forbidden, GrantError, ValidationFailed
from .i18n import msg
from .models import ROLES, RoleGrant, Unit, User
from .sso import check_password_sign_in

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(user: User, password: str) -> bool:
    return bool(password) and check_password_hash(user.password_hash, password)


def authenticate(session: Session, username: str, password: str) -> User:
    """Sign-in: the same message for unknown users and bad passwords; lockout after failures."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    refused = GrantError(msg("用户名或密码错误"))
    if user is None or not user.active:
        raise refused
    now = clock.now()
    if user.locked_until and user.locked_until > now:
        raise Forbidden(msg("登录失败次数过多，账户已暂时锁定，请15分钟后再试"))
    if not check_password(user, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        raise refused
    user.failed_logins, user.locked_until = 0, None
    check_password_sign_in(session, user)
    return user


def change_password(user: User, old: str, new: str) -> None:
    if not check_password(user, old):
        raise ValidationFailed([{"field": "old_password", "message": msg("原密码不正确")}])
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed([{"field": "new_password", "message": msg("新密码至少{n}位", n=MIN_PASSWORD_LENGTH)}])
    user.password_hash = hash_password(new)


def create_user(session: Session, username: str, name: str, password: str, email: str = "",
                roles: list[tuple[str, str | None]] = (), actor: User | None = None) -> User:
    """Create a user with (role, unit code or None) grants; refuses duplicates and unknown roles."""
    if not username or not username.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise ValidationFailed([{"field": "username", "message": msg("用户名只能包含字母、数字、下划线、点和连字符")}])
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise ValidationFailed([{"field": "username", "message": msg("用户名“{username}”已存在", username=username)}])
    if not name.strip():
        raise ValidationFailed([{"field": "name", "message": msg("请填写姓名")}])
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed([{"field": "password", "message": msg("密码至少{n}位", n=MIN_PASSWORD_LENGTH)}])
    user = User(username=username, name=name, email=email, password_hash=hash_password(password))
    session.add(user)
    for role, unit_code in roles:
        grant_role(session, user, role, unit_code)
    session.flush()
    audit.record(session, actor=actor.username if actor else "system", action="create_user",
                 detail={"user": username, "roles": [list(r) for r in roles]})
    return user


def grant_role(session: Session, user: User, role: str, unit_code: str | None) -> RoleGrant:
    if role not in ROLES:
        raise ValidationFailed([{"field": "role", "message": msg("未知角色“{role}”", role=role)}])
    unit = None
    if unit_code is not None:
        unit = session.execute(select(Unit).where(Unit.code == unit_code)).scalar_one_or_none()
        if unit is None:
            raise ValidationFailed([{"field": "unit", "message": msg("未知单位“{unit}”", unit=unit_code)}])
    grant = RoleGrant(unit=unit, role=role)
    user.roles.append(grant)
    return grant


def create_unit(session: Session, actor: User, code: str, name: str, contact: str = "") -> Unit:
    """A new pilot unit (试点单位) with its own numbering, board and data."""
    code, name = code.strip().upper(), name.strip()
    problems = []
    if not code.isalnum() or not 2 <= len(code) <= 16:
        problems.append({"field": "code", "message": msg("单位代码须为2至16位字母或数字")})
    elif session.execute(select(Unit).where(Unit.code == code)).scalar_one_or_none():
        problems.append({"field": "code", "message": msg("单位代码已存在")})
    if not name:
        problems.append({"field": "name", "message": msg("请填写单位名称")})
    if problems:
        raise ValidationFailed(problems)
    unit = Unit(code=code, name=name, contact=contact.strip())
    session.add(unit)
    session.flush()
    audit.record(session, actor=actor.username, action="create_unit", unit_id=unit.id, detail={"code": code})
    return unit


def set_active(session: Session, actor: User, user: User, active: bool) -> None:
    """Deactivated users cannot sign in; their records and past actions stay."""
    if user.id == actor.id:
        raise Forbidden(msg("不能停用自己的账户"))
    user.active = active
    audit.record(session, actor=actor.username, action="activate_user" if active else "deactivate_user",
                 detail={"user": user.username})
