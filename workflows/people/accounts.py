"""Users and passwords: hashing, sign-in with lockout, roles per unit."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from workflows import clock
from workflows.errors import Forbidden, GrantError, ValidationFailed
from workflows.evidence import audit
from workflows.i18n import msg
from workflows.models import ROLES, LoginThrottle, RoleGrant, Unit, User

from .access import SystemActor, require_admin
from .sso import check_password_sign_in

MAX_FAILED_LOGINS = 5          # per (username, client address) before that pair is locked
FIRST_LOCK = timedelta(minutes=1)  # doubled at each further lock of the same pair …
LOCKOUT = timedelta(minutes=15)    # … up to this; also how long the per-username ceiling locks
USERNAME_CEILING = 100         # failures from all addresses together before the username locks
MIN_PASSWORD_LENGTH = 10
UNIT_CODE_LENGTH = (2, 16)   # shortest and longest unit code


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(user: User, password: str) -> bool:
    return bool(password) and _verify(user.password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


@cache
def _dummy_hash() -> str:
    """Checked against for unknown or inactive users, so they cost as long as a real one."""
    return generate_password_hash("no such user: the time is spent all the same")


def authenticate(session: Session, username: str, password: str, client: str = "") -> User:
    """Sign-in: the same message and the same cost for unknown users and bad passwords.

    Throttling (README, "Security and reliability"): each attempt first takes a counter for
    (username, client address) and one for the username in a single atomic UPDATE, which
    also makes parallel attempts on one username queue; a locked counter refuses without
    checking the password. 5 failures lock the pair for 1, 2, 4 … up to 15 minutes, so a
    stranger elsewhere cannot lock the owner out; 100 failures from anywhere lock the
    username for 15 minutes. A success clears both. The caller commits even on refusal."""
    pair, whole = _throttle_keys(username, client)
    take_attempts(session, (pair, whole))
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    known = user if user is not None and user.active else None
    if _verify(known.password_hash if known else _dummy_hash(), password) and known and password:
        clear_attempts(session, (pair, whole))
        known.failed_logins, known.locked_until = 0, None
        check_password_sign_in(session, known)
        return known
    note_failures(session, ((pair, MAX_FAILED_LOGINS, True), (whole, USERNAME_CEILING, False)))
    raise GrantError(msg("用户名或密码错误"))


def throttle_key(*parts: str) -> str:
    """A digest, so the table holds neither addresses nor what people mistyped."""
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _throttle_keys(username: str, client: str) -> tuple[str, str]:
    return throttle_key("pair", username, client), throttle_key("user", username)


def take_attempts(session: Session, keys: tuple[str, ...]) -> None:
    """Count one attempt on each counter before anything is checked (parallel attempts queue on
    the row); refuse at once if one is locked. Any guessable secret can be throttled like this."""
    now = clock.now()
    for key in keys:
        _refuse_if_locked(_count_attempt(session, key, now), now)


def note_failures(session: Session, limits: tuple[tuple[str, int, bool], ...]) -> None:
    """After a failed check: lock each (key, limit, progressive) counter that reached its limit."""
    now = clock.now()
    for key, limit, progressive in limits:
        _lock_if_exceeded(session, key, limit, now, progressive=progressive)


def clear_attempts(session: Session, keys: tuple[str, ...]) -> None:
    session.execute(update(LoginThrottle).where(LoginThrottle.key.in_(keys))
                    .values(failures=0, lockouts=0, locked_until=None, updated_at=clock.now()))


def _count_attempt(session: Session, key: str, now: datetime) -> tuple[int, datetime | None]:
    """failures += 1 in one statement (a lock that has run out starts the count afresh);
    returns the new count and the lock, as the database saw them."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(LoginThrottle).values(key=key, failures=0, lockouts=0, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["key"]))
    expired = LoginThrottle.locked_until.is_not(None) & (LoginThrottle.locked_until <= now)
    row = session.execute(
        update(LoginThrottle).where(LoginThrottle.key == key)
        .values(failures=case((expired, 1), else_=LoginThrottle.failures + 1),
                locked_until=case((expired, None), else_=LoginThrottle.locked_until), updated_at=now)
        .returning(LoginThrottle.failures, LoginThrottle.locked_until)
        .execution_options(synchronize_session=False)).one()
    return row.failures, clock.as_utc(row.locked_until) if row.locked_until else None


def _refuse_if_locked(counted: tuple[int, datetime | None], now: datetime) -> None:
    _failures, locked_until = counted
    if locked_until is not None and locked_until > now:
        raise Forbidden(msg("登录失败次数过多，已暂时锁定，请{minutes}分钟后再试",
                            minutes=max(1, math.ceil((locked_until - now).total_seconds() / 60))))


def _lock_if_exceeded(session: Session, key: str, limit: int, now: datetime, progressive: bool) -> None:
    row = session.get_one(LoginThrottle, key, populate_existing=True)  # _count_attempt made it
    if row.failures < limit:
        return
    length = min(LOCKOUT, FIRST_LOCK * 2 ** min(row.lockouts, 8)) if progressive else LOCKOUT
    row.locked_until, row.lockouts = now + length, row.lockouts + 1
    session.flush()


def prune_throttles(session: Session) -> int:
    """Forget counters idle for a day whose lock has run out: strangers' guesses must not
    fill the table for ever."""
    result = session.execute(delete(LoginThrottle).where(*stale_throttles(clock.now()))
                             .execution_options(synchronize_session=False))
    return cast("CursorResult[Any]", result).rowcount or 0


def stale_throttles(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Counters idle for a day (a range of `ix_login_throttles_updated_at`) whose lock has run out."""
    return (LoginThrottle.updated_at < now - timedelta(days=1),
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now))


def change_password(user: User, old: str, new: str) -> None:
    if not check_password(user, old):
        raise ValidationFailed([{"field": "old_password", "message": msg("原密码不正确")}])
    if len(new) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed([{"field": "new_password", "message": msg("新密码至少{n}位", n=MIN_PASSWORD_LENGTH)}])
    user.password_hash = hash_password(new)


def create_user(session: Session, username: str, name: str, password: str, email: str = "",
                roles: Sequence[tuple[str, str | None]] = (), *, actor: User | SystemActor) -> User:
    """An administrator creates a user with (role, unit code or None) grants; refuses duplicates
    and unknown roles."""
    require_admin(actor)
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
        _grant(session, user, role, unit_code)
    session.flush()
    audit.record(session, actor=actor.username, action="create_user",
                 detail={"user": username, "roles": [list(r) for r in roles]})
    return user


def grant_role(session: Session, user: User, role: str, unit_code: str | None, *,
               actor: User | SystemActor) -> RoleGrant:
    """An administrator grants a role in a unit (None: every unit); recorded in the audit log."""
    require_admin(actor)
    grant = _grant(session, user, role, unit_code)
    session.flush()
    audit.record(session, actor=actor.username, action="grant_role", unit_id=grant.unit_id,
                 detail={"user": user.username, "role": role, "unit": unit_code})
    return grant


def _grant(session: Session, user: User, role: str, unit_code: str | None) -> RoleGrant:
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
    """An administrator adds a pilot unit (试点单位) with its own numbering, board and data."""
    require_admin(actor)
    code, name = code.strip().upper(), name.strip()
    problems = []
    if not code.isalnum() or not UNIT_CODE_LENGTH[0] <= len(code) <= UNIT_CODE_LENGTH[1]:
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


# A unit's own settings where the policy leaves the choice to the unit (name: (kind, lowest, highest)).
UNIT_SETTINGS: dict[str, tuple[str, int, int]] = {
    "name": ("text", 1, 200), "contact": ("text", 0, 500),
    "leader_publicity_days": ("int", 1, 365),              # §三(六)3 names no term
    "conversion_reminder_first_days": ("int", 1, 3650),    # before the conversion period lapses
    "conversion_reminder_second_days": ("int", 1, 3650),
    "reward_after_grant": ("bool", 0, 1),                  # §三(六)2 "可以不再给予"
    "auditors_see_objectors": ("bool", 0, 1),
}


def update_unit_settings(session: Session, actor: User, unit: Unit, form: dict[str, str]) -> dict[str, Any]:
    """An administrator changes a unit's settings; every problem is named at once and nothing
    changes unless all are fine. Returns {setting: [before, after]} of what changed (audited).
    Reminder days apply to conversion periods scheduled from now on (and re-armed by an extension)."""
    require_admin(actor, msg("只有管理员可以更改单位设置"))
    values, problems = _unit_setting_values(form)
    first = values.get("conversion_reminder_first_days")
    second = values.get("conversion_reminder_second_days")
    if first is not None and second is not None and first <= second:
        problems.append({"field": "conversion_reminder_second_days",
                         "message": msg("第二次提醒须晚于第一次提醒（距期满天数更少）")})
    if problems:
        raise ValidationFailed(problems)
    changed = {field: [getattr(unit, field), value] for field, value in values.items()
               if getattr(unit, field) != value}
    for field, (_before, after) in changed.items():
        setattr(unit, field, after)
    if changed:
        audit.record(session, actor=actor.username, action="update_unit_settings", unit_id=unit.id,
                     detail={"changed": changed})
    return changed


def _unit_setting_values(form: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each setting parsed from its form text; checkboxes are off when absent."""
    values: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for field, (kind, lowest, highest) in UNIT_SETTINGS.items():
        text = (form.get(field) or "").strip()
        if kind == "bool":
            values[field] = text in {"1", "on", "true"}
        elif kind == "text":
            if len(text) < lowest:
                problems.append({"field": field, "message": msg("请填写单位名称")})
            elif len(text) > highest:
                problems.append({"field": field, "message": msg("不能超过{n}个字符", n=highest)})
            else:
                values[field] = text
        elif not text.isdigit() or not lowest <= int(text) <= highest:
            problems.append({"field": field, "message": msg("请输入{lowest}至{highest}之间的整数",
                                                            lowest=lowest, highest=highest)})
        else:
            values[field] = int(text)
    return values, problems


def set_active(session: Session, actor: User, user: User, active: bool) -> None:
    """An administrator (de)activates a user: they cannot sign in; their records and actions stay."""
    require_admin(actor)
    if user.id == actor.id:
        raise Forbidden(msg("不能停用自己的账户"))
    user.active = active
    audit.record(session, actor=actor.username, action="activate_user" if active else "deactivate_user",
                 detail={"user": user.username})
