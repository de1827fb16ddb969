"""The unit's registry of service achievements (职务科技成果库, §三(三)4).

Every achievement of a unit has one entry: the office registers it directly, a completed grant
moves it to 已赋权, a conversion (a later module) to 转化中 / 已转化 / 出库 through `start_conversion`,
`record_conversion` and `record_leaving`. Every change writes a history row and an audit event,
in the caller's transaction (flush, never commit). Office operations are authorized here.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from workflows import clock
from workflows.catalogue import GRANT_KIND_SHORT, REGISTRY_STATES, KindCode, RegistryState, RoleCode
from workflows.errors import Forbidden, NotFound, ValidationFailed, WrongState
from workflows.evidence import audit
from workflows.i18n import msg
from workflows.models import Application, RegistryEntry, RegistryHistory, RegistryInventor, Unit, User
from workflows.people import access

STATE_NAMES, GRANT_KINDS = REGISTRY_STATES, GRANT_KIND_SHORT
STATES = tuple(STATE_NAMES)
TITLE_MAX = CONTRACT_MAX = 200  # characters, as the registration form says
IP_NUMBER_MAX = 64
IP_TYPES = {"patent": "专利权", "software_copyright": "计算机软件著作权", "ic_layout": "集成电路布图设计专有权",
            "plant_variety": "植物新品种权", "biomedical_variety": "生物医药新品种", "technical_secret": "技术秘密",
            "joint_application_right": "知识产权共同申请权"}
FUNDING = {"fiscal": "利用财政性资金形成", "commissioned": "接受委托形成", "other": "其他"}
MODES = {"transfer": "转让", "licence": "许可", "equity": "作价投资", "abandoned": "放弃", "other": "其他"}
FLAGS = {"venue": "venue_registered_on", "fund": "fund_pushed_on"}
# Where each state may go; conversions may also fall back to the state they started from.
TRANSITIONS: dict[str, set[str]] = {RegistryState.REGISTERED: {RegistryState.GRANTED, RegistryState.CONVERTING, RegistryState.CONVERTED, RegistryState.LEFT},
               RegistryState.GRANTED: {RegistryState.REGISTERED, RegistryState.CONVERTING, RegistryState.CONVERTED, RegistryState.LEFT},
               RegistryState.CONVERTING: {RegistryState.REGISTERED, RegistryState.GRANTED, RegistryState.CONVERTED, RegistryState.LEFT},
               RegistryState.CONVERTED: {RegistryState.LEFT}, RegistryState.LEFT: set()}
SORTS = {"registered_on": RegistryEntry.registered_on, "title": RegistryEntry.title,
         "status": RegistryEntry.status, "updated_at": RegistryEntry.updated_at, "id": RegistryEntry.id}
TRACKED = ("title", "ip_type", "ip_numbers", "funding_source", "registered_on", "status", "grant_kind", "granted_on",
           "left_on", "left_mode", "left_contract", "venue_registered_on", "fund_pushed_on")
READER_ROLES = (*access.STAFF_ROLES, RoleCode.CITY_AUDITOR)


# --- who may do what -----------------------------------------------------------------------

def check_office(user: User, unit_id: int) -> None:
    """Only the unit's tech-transfer office (tto) keeps the registry."""
    if not any(g.role == RoleCode.TTO and g.unit_id == unit_id for g in user.roles):
        raise Forbidden(msg("只有本单位成果转化部门经办人可以维护成果库"))


def reader_units(user: User) -> set[int | None]:
    """Units whose whole registry the user reads; None inside means every unit."""
    units: set[int | None] = set()
    for role in READER_ROLES:
        units |= user.units_for(role)
    if RoleCode.CITY_AUDITOR in {g.role for g in user.roles}:
        units.add(None)
    return units


def visible_entries(user: User) -> Select[RegistryEntry]:
    """Staff read their units' entries, the city auditor all, a researcher only their own."""
    units = reader_units(user)
    query = select(RegistryEntry)
    if None in units:
        return query
    mine = select(RegistryInventor.entry_id).where(RegistryInventor.user_id == user.id)
    return query.where(or_(RegistryEntry.unit_id.in_([u for u in units if u is not None]),
                           RegistryEntry.id.in_(mine)))


def get_visible(session: Session, user: User, entry_id: int) -> RegistryEntry:
    entry = session.execute(visible_entries(user).where(RegistryEntry.id == entry_id)).scalar_one_or_none()
    if entry is None:
        raise NotFound(msg("成果不存在或您无权查看"))
    return entry


# --- office operations ---------------------------------------------------------------------

def register(session: Session, actor: User, unit_code: str, data: dict[str, Any]) -> RegistryEntry:
    """A disclosure enters the registry as 在库 (title, IP type and numbers, inventors, funding, date)."""
    unit = session.execute(select(Unit).where(Unit.code == str(unit_code))).scalar_one_or_none()
    if unit is None:
        raise ValidationFailed([{"field": "unit", "message": msg("未知单位“{unit}”", unit=unit_code)}])
    check_office(actor, unit.id)
    fields, inventors = _validated(session, unit.id, data, None)
    entry = RegistryEntry(unit_id=unit.id, status=RegistryState.REGISTERED, created_by_id=actor.id, **fields)
    session.add(entry)
    session.flush()
    _set_inventors(entry, inventors)
    changes = {k: [None, _plain(getattr(entry, k))] for k in fields if k in TRACKED}
    _log(session, entry, actor.username, "register", {**changes, "inventors": [None, [u.username for u in inventors]]})
    return entry


def edit(session: Session, actor: User, entry_id: int, data: dict[str, Any]) -> RegistryEntry:
    """Corrects the registered facts; the state moves only through the state operations."""
    entry = _for_office(session, actor, entry_id)
    fields, inventors = _validated(session, entry.unit_id, {**_facts(entry), **data}, entry.id)
    _apply(session, entry, actor.username, "edit", fields, inventors=inventors)
    return entry


def set_flag(session: Session, actor: User, entry_id: int, flag: str, on: str | None) -> RegistryEntry:
    """Registered at the city's trading venue / pushed to a fund project library, with the date
    (an empty date clears the flag)."""
    entry = _for_office(session, actor, entry_id)
    if flag not in FLAGS:
        raise ValidationFailed([{"field": "flag", "message": msg("未知标记")}])
    day = _date_or_error(on, "on") if on else None
    _apply(session, entry, actor.username, f"flag_{flag}", {FLAGS[flag]: day})
    return entry


def mark_left(session: Session, actor: User, entry_id: int, state: str, on: str, mode: str,
              contract: str) -> RegistryEntry:
    """The office records by hand that an achievement was converted (已转化) or left the registry (出库)."""
    entry = _for_office(session, actor, entry_id)
    if state not in (RegistryState.CONVERTED, RegistryState.LEFT):
        raise ValidationFailed([{"field": "state", "message": msg("只能标记为已转化或出库")}])
    return _leave(session, entry, actor.username, state, on, mode, contract, None)


# --- called by other modules (grants, conversions) ----------------------------------------

def record_grant(session: Session, app: Application, achievement: dict[str, Any], members: list[dict[str, Any]],
                 actor: str) -> RegistryEntry:
    """A completed grant: the office's entry for the same IP numbers (or a new one) becomes 已赋权."""
    target_id = app.original_id or app.id
    entry = session.execute(select(RegistryEntry).where(RegistryEntry.application_id == target_id)).scalar_one_or_none()
    entry = entry or _unlinked_match(session, app.unit_id, achievement.get("ip_numbers") or [])
    today = clock.local_date(clock.now()).isoformat()
    if entry is None:
        numbers = list(achievement.get("ip_numbers") or [])
        entry = RegistryEntry(unit_id=app.unit_id, title=achievement.get("title") or app.title,
                              ip_type=achievement.get("ip_type", ""), ip_numbers=numbers,
                              numbers_text=" ".join(numbers), funding_source=achievement.get("funding_source", ""),
                              registered_on=today, registered_year=int(today[:4]), status=RegistryState.REGISTERED)
        session.add(entry)
        session.flush()
        _log(session, entry, actor, "register", {"title": [None, entry.title]}, application_id=app.id)
    kind = KindCode.USE_RIGHT if app.kind == KindCode.EXTENSION else app.kind
    changes: dict[str, Any] = {"application_id": target_id, "grant_kind": kind}
    if entry.status in (RegistryState.REGISTERED, RegistryState.GRANTED):
        changes.update(status=RegistryState.GRANTED, granted_on=today, granted_year=int(today[:4]))
    usernames = [m.get("username") for m in members if m.get("username")]
    inventors = list(session.execute(select(User).where(User.username.in_(usernames))).scalars()) if usernames else None
    if inventors is not None and not entry.inventors:
        inventors.sort(key=lambda u: usernames.index(u.username))
    else:
        inventors = None
    _apply(session, entry, actor, "extend" if app.kind == KindCode.EXTENSION else "grant", changes,
           inventors=inventors, application_id=app.id)
    return entry


def start_conversion(session: Session, entry: RegistryEntry, actor: str,
                     application_id: int | None = None) -> RegistryEntry:
    """A conversion began (转化中)."""
    _check_move(entry, RegistryState.CONVERTING)
    _apply(session, entry, actor, RegistryState.CONVERTING, {"status": RegistryState.CONVERTING}, application_id=application_id)
    return entry


def record_lapse(session: Session, entry: RegistryEntry, actor: str,
                 application_id: int | None = None) -> RegistryEntry:
    """The conversion period lapsed and the agreement's consequence applies: the granted right
    returns to the unit, the entry is 在库 again (the grant's kind and date stay: it happened)."""
    _check_move(entry, RegistryState.REGISTERED)
    _apply(session, entry, actor, "grant_lapsed", {"status": RegistryState.REGISTERED}, application_id=application_id)
    return entry


def abandon_conversion(session: Session, entry: RegistryEntry, actor: str) -> RegistryEntry:
    """A conversion came to nothing: back to 已赋权 (or 在库 if never granted)."""
    back = RegistryState.GRANTED if entry.grant_kind else RegistryState.REGISTERED
    _check_move(entry, back)
    _apply(session, entry, actor, "conversion_abandoned", {"status": back})
    return entry


def record_conversion(session: Session, entry: RegistryEntry, actor: str, on: str, mode: str, contract: str,
                      application_id: int | None = None) -> RegistryEntry:
    """A conversion contract was made (已转化): date, mode and contract reference."""
    return _leave(session, entry, actor, RegistryState.CONVERTED, on, mode, contract, application_id)


def record_leaving(session: Session, entry: RegistryEntry, actor: str, on: str, mode: str, contract: str,
                   application_id: int | None = None) -> RegistryEntry:
    """The achievement leaves the registry (出库)."""
    return _leave(session, entry, actor, RegistryState.LEFT, on, mode, contract, application_id)


# --- reading ----------------------------------------------------------------------------------

def search(user: User, q: str = "", state: str = "", ip_type: str = "", year: int | None = None,
           grant_kind: str = "", unit: str = "", sort: str = "-registered_on") -> Select[RegistryEntry]:
    """The visible entries matching the filters (title, number or inventor in `q`), sorted."""
    if year is not None:
        from .statistics import check_year
        check_year(year)
    query = visible_entries(user)
    text = q.strip().replace("%", "").replace("_", "")
    if text:
        like = f"%{text}%"
        by_inventor = exists().where(RegistryInventor.entry_id == RegistryEntry.id,
                                     RegistryInventor.user_id == User.id,
                                     or_(User.name.ilike(like), User.username.ilike(like)))
        query = query.where(or_(RegistryEntry.title.ilike(like), RegistryEntry.numbers_text.ilike(like), by_inventor))
    if state in STATES:
        query = query.where(RegistryEntry.status == state)
    if ip_type in IP_TYPES:
        query = query.where(RegistryEntry.ip_type == ip_type)
    if grant_kind in GRANT_KINDS:
        query = query.where(RegistryEntry.grant_kind == grant_kind)
    if year:
        query = query.where(RegistryEntry.registered_year == int(year))
    if unit:
        query = query.where(RegistryEntry.unit_id == select(Unit.id).where(Unit.code == unit).scalar_subquery())
    column = SORTS.get(sort.lstrip("-"), RegistryEntry.registered_on)
    return query.order_by(column.desc() if sort.startswith("-") else column.asc(), RegistryEntry.id.desc())


def page(session: Session, query: Select[RegistryEntry], number: int, size: int) -> tuple[list[RegistryEntry], int]:
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    offset = max(number - 1, 0) * size
    if offset >= total:  # past the last page (however large the number): nothing, and no overflow
        return [], total
    rows = session.execute(query.offset(offset).limit(size)).scalars().all()
    return list(rows), total


def history(session: Session, entry: RegistryEntry) -> list[RegistryHistory]:
    return list(session.execute(select(RegistryHistory).where(RegistryHistory.entry_id == entry.id)
                                .order_by(RegistryHistory.id)).scalars())


def applications(session: Session, user: User, entry: RegistryEntry) -> list[Application]:
    """The grant applications behind the entry (and extensions of it) that the user may see."""
    ids = {h.application_id for h in history(session, entry) if h.application_id}
    if entry.application_id:
        ids.add(entry.application_id)
    if not ids:
        return []
    rows = session.execute(select(Application).where(or_(Application.id.in_(ids), Application.original_id.in_(ids)),
                                                     Application.kind != KindCode.WATCH)  # a period watch is no application
                           .order_by(Application.id)).scalars().all()
    return [a for a in rows if access.can_view(user, a)]


def as_dict(entry: RegistryEntry) -> dict[str, Any]:
    """The entry as plain data (API, exports); no contact data of the inventors."""
    return {"id": entry.id, "unit": entry.unit.code, "title": entry.title, "ip_type": entry.ip_type,
            "ip_numbers": list(entry.ip_numbers or []), "funding_source": entry.funding_source,
            "registered_on": entry.registered_on, "status": entry.status, "grant_kind": entry.grant_kind,
            "granted_on": entry.granted_on, "left_on": entry.left_on, "left_mode": entry.left_mode,
            "left_contract": entry.left_contract, "venue_registered_on": entry.venue_registered_on,
            "fund_pushed_on": entry.fund_pushed_on, "application_id": entry.application_id,
            "inventors": [{"username": i.user.username, "name": i.user.name} for i in entry.inventors]}


# --- internals --------------------------------------------------------------------------------

def _for_office(session: Session, actor: User, entry_id: int) -> RegistryEntry:
    entry = session.get(RegistryEntry, entry_id)
    if entry is None:
        raise NotFound(msg("成果不存在或您无权查看"))
    check_office(actor, entry.unit_id)
    return entry


def _facts(entry: RegistryEntry) -> dict[str, Any]:
    return {"title": entry.title, "ip_type": entry.ip_type, "ip_numbers": list(entry.ip_numbers or []),
            "funding_source": entry.funding_source, "registered_on": entry.registered_on,
            "inventors": [i.user.username for i in entry.inventors]}


def _validated(session: Session, unit_id: int, data: dict[str, Any],
               entry_id: int | None) -> tuple[dict[str, Any], list[User]]:
    """Every problem at once, in Chinese; the cleaned fields and the inventors' accounts."""
    errors: list[dict[str, Any]] = []
    title = str(data.get("title") or "").strip()
    if not 1 <= len(title) <= TITLE_MAX:
        errors.append({"field": "title", "message": msg("请填写成果名称（不超过200字）")})
    ip_type = str(data.get("ip_type") or "")
    if ip_type not in IP_TYPES:
        errors.append({"field": "ip_type", "message": msg("请选择知识产权类型")})
    numbers = _strings(data.get("ip_numbers"))
    if ip_type not in ("technical_secret", "joint_application_right") and not numbers:
        errors.append({"field": "ip_numbers", "message": msg("请填写知识产权编号")})
    if len(set(numbers)) != len(numbers) or any(len(n) > IP_NUMBER_MAX for n in numbers):
        errors.append({"field": "ip_numbers", "message": msg("知识产权编号重复或过长")})
    taken = _taken_numbers(session, unit_id, numbers, entry_id)
    if taken:
        errors.append({"field": "ip_numbers", "message": msg("知识产权编号{numbers}已在成果库中",
                                                             numbers="、".join(taken))})
    funding = str(data.get("funding_source") or "")
    if funding not in FUNDING:
        errors.append({"field": "funding_source", "message": msg("请选择形成方式")})
    day = _date_or_none(data.get("registered_on") or clock.local_date(clock.now()).isoformat())
    if day is None:
        errors.append({"field": "registered_on", "message": msg("日期格式应为YYYY-MM-DD，且不得晚于今天")})
    usernames = _strings(data.get("inventors"))
    users = list(session.execute(select(User).where(User.username.in_(usernames))).scalars()) if usernames else []
    missing = sorted(set(usernames) - {u.username for u in users})
    if not usernames:
        errors.append({"field": "inventors", "message": msg("请至少填写一名成果完成人（系统账户）")})
    elif missing:
        errors.append({"field": "inventors", "message": msg("没有这些账户：{names}", names="、".join(missing))})
    if errors or day is None:  # day is None only with an error above
        raise ValidationFailed(errors)
    users.sort(key=lambda u: usernames.index(u.username))
    return ({"title": title, "ip_type": ip_type, "ip_numbers": numbers, "numbers_text": " ".join(numbers),
             "funding_source": funding, "registered_on": day, "registered_year": int(day[:4])}, users)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.replace("，", ",").replace("\n", ",").split(",")
    return [str(v).strip() for v in (value or []) if str(v).strip()]


def _date_or_none(value: Any) -> str | None:
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return None
    return day.isoformat() if day <= clock.local_date(clock.now()) else None


def _date_or_error(value: Any, field: str) -> str:
    day = _date_or_none(value)
    if day is None:
        raise ValidationFailed([{"field": field, "message": msg("日期格式应为YYYY-MM-DD，且不得晚于今天")}])
    return day


def _taken_numbers(session: Session, unit_id: int, numbers: list[str], entry_id: int | None) -> list[str]:
    if not numbers:
        return []
    query = select(RegistryEntry).where(RegistryEntry.unit_id == unit_id,
                                        or_(*[RegistryEntry.numbers_text.contains(n) for n in numbers]))
    if entry_id is not None:
        query = query.where(RegistryEntry.id != entry_id)
    held = {n for e in session.execute(query).scalars() for n in (e.ip_numbers or [])}
    return sorted(set(numbers) & held)


def _unlinked_match(session: Session, unit_id: int, numbers: list[str]) -> RegistryEntry | None:
    """The office may have registered the disclosure before the team applied for the grant."""
    if not numbers:
        return None
    query = select(RegistryEntry).where(RegistryEntry.unit_id == unit_id, RegistryEntry.application_id.is_(None),
                                        or_(*[RegistryEntry.numbers_text.contains(n) for n in numbers]))
    return next((e for e in session.execute(query.order_by(RegistryEntry.id)).scalars()
                 if set(e.ip_numbers or []) & set(numbers)), None)


def _check_move(entry: RegistryEntry, state: str) -> None:
    if state not in TRANSITIONS[entry.status]:
        raise WrongState(msg("成果当前状态为“{now}”，不能变为“{to}”", now=msg(STATE_NAMES[entry.status]),
                             to=msg(STATE_NAMES[state])))


def _leave(session: Session, entry: RegistryEntry, actor: str, state: str, on: str, mode: str, contract: str,
           application_id: int | None) -> RegistryEntry:
    _check_move(entry, state)
    errors = []
    day = _date_or_none(on)
    if day is None:
        errors.append({"field": "on", "message": msg("日期格式应为YYYY-MM-DD，且不得晚于今天")})
    elif entry.registered_on and day < entry.registered_on:
        errors.append({"field": "on", "message": msg("日期不得早于登记日期{day}", day=entry.registered_on)})
    if mode not in MODES:
        errors.append({"field": "mode", "message": msg("请选择方式")})
    contract = (contract or "").strip()
    if state == RegistryState.CONVERTED and not contract:
        errors.append({"field": "contract", "message": msg("请填写合同编号或凭证")})
    if len(contract) > CONTRACT_MAX:
        errors.append({"field": "contract", "message": msg("合同编号过长")})
    if errors or day is None:  # day is None only with an error above
        raise ValidationFailed(errors)
    _apply(session, entry, actor, state, {"status": state, "left_on": day, "left_year": int(day[:4]),
                                          "left_mode": mode, "left_contract": contract},
           application_id=application_id)
    return entry


def _apply(session: Session, entry: RegistryEntry, actor: str, action: str, fields: dict[str, Any],
           inventors: list[User] | None = None, application_id: int | None = None) -> None:
    changes = {k: [_plain(getattr(entry, k)), _plain(v)] for k, v in fields.items()
               if k in TRACKED and _plain(getattr(entry, k)) != _plain(v)}
    for key, value in fields.items():
        setattr(entry, key, value)
    if inventors is not None:
        before = [i.user.username for i in entry.inventors]
        after = [u.username for u in inventors]
        if before != after:
            changes["inventors"] = [before, after]
            _set_inventors(entry, inventors)
    entry.updated_at = clock.now()
    session.flush()
    _log(session, entry, actor, action, changes, application_id=application_id)


def _set_inventors(entry: RegistryEntry, users: list[User]) -> None:
    entry.inventors.clear()
    entry.inventors.extend(RegistryInventor(user_id=u.id, user=u, position=i) for i, u in enumerate(users))


def _log(session: Session, entry: RegistryEntry, actor: str, action: str, changes: dict[str, Any],
         application_id: int | None = None) -> None:
    session.add(RegistryHistory(entry_id=entry.id, at=clock.now(), actor=actor, action=action,
                                application_id=application_id, changes=changes))
    audit.record(session, actor=actor, action=f"registry_{action}", unit_id=entry.unit_id,
                 application_id=application_id, detail={"registry_id": entry.id, "changes": changes})
    session.flush()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value



EXPORT_HEADERS = ["编号", "单位", "成果名称", "知识产权类型", "知识产权编号", "成果完成人", "形成方式", "登记日期", "状态",
                  "赋权类型", "赋权日期", "转化/出库日期", "方式", "合同编号", "技术交易场所登记", "推送基金项目库"]


def export_row(entry: RegistryEntry) -> list[Any]:
    """One entry as a spreadsheet row, in Chinese (names only, no contact data)."""
    return [entry.id, entry.unit.code, entry.title, IP_TYPES.get(entry.ip_type, entry.ip_type),
            "；".join(entry.ip_numbers or []), "、".join(i.user.name for i in entry.inventors),
            FUNDING.get(entry.funding_source, entry.funding_source), entry.registered_on,
            STATE_NAMES.get(entry.status, entry.status), GRANT_KINDS.get(entry.grant_kind or "", ""),
            entry.granted_on or "", entry.left_on or "", MODES.get(entry.left_mode or "", ""),
            entry.left_contract or "", entry.venue_registered_on or "", entry.fund_pushed_on or ""]


ACTION_NAMES = {"register": "登记入库", "edit": "修改", "flag_venue": "技术交易场所登记", "flag_fund": "推送基金项目库",
                "grant": "完成赋权", "extend": "使用权延期", RegistryState.CONVERTING: "开始转化", RegistryState.CONVERTED: "已转化",
                RegistryState.LEFT: "出库", "conversion_abandoned": "转化终止"}
FIELD_NAMES = {"title": "成果名称", "ip_type": "知识产权类型", "ip_numbers": "知识产权编号", "funding_source": "形成方式",
               "registered_on": "登记日期", "status": "状态", "grant_kind": "赋权类型", "granted_on": "赋权日期",
               "left_on": "转化/出库日期", "left_mode": "方式", "left_contract": "合同编号",
               "venue_registered_on": "技术交易场所登记日期", "fund_pushed_on": "推送基金项目库日期",
               "inventors": "成果完成人", "application_id": "赋权申请"}


def display(field: str, value: Any) -> str:
    """A history value as people read it: labels for codes, lists joined, — for nothing."""
    if value in (None, "", []):
        return "—"
    every: dict[str, dict[str, Any]] = {"ip_type": IP_TYPES, "funding_source": FUNDING, "status": STATE_NAMES,
                                        "grant_kind": GRANT_KINDS, "left_mode": MODES}
    labels = every.get(field)
    if labels is not None:
        return str(labels.get(value, value))
    return "、".join(map(str, value)) if isinstance(value, list) else str(value)
