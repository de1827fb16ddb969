"""A unit's (or the city's) figures for a year, by SQL aggregates over indexed columns only:
no workflow is ever deserialized. Years are Shanghai calendar years.

Percentiles are nearest-rank (the value at rank ceil(p·n) of the sorted durations), read from the
duration bins (`models.DurationBin`: counts per unit or city, step, year and 0.01 day), so they
agree on SQLite and PostgreSQL and cost a few thousand counts, not a sort of every duration. Income comes from the
conversions' ledgers (workflows/conversion/income.py).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, ScalarResult, and_, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from workflows import clock, models
from workflows.catalogue import (
    KindCode,
    ObjectionDecision,
    Process,
    RegistryState,
    RoleCode,
    StatusCode,
    StepId,
    steps_in,
)
from workflows.errors import Forbidden, ValidationFailed
from workflows.i18n import msg
from workflows.models import (
    CITY_SCOPE,
    CLOSED,
    KINDS,
    STARTED,
    STATUSES,
    Application,
    ApplicationCount,
    Distribution,
    DurationBin,
    IncomeDeduction,
    IncomeReceipt,
    Objection,
    PublicityNotice,
    RegistryEntry,
    Unit,
    User,
)

from .registry import MODES, STATES

# The steps a unit sees its applications wait in, and the user tasks (or notices) behind each.
STEPS = (("draft", "填写申请", (StepId.DRAFT,)), ("consent", "成员确认", steps_in("consent")),
         ("review", "部门审查", steps_in("review")), ("decision", "单位决策", steps_in("decision")),
         ("publicity", "公示", ()), ("signing", "签署协议", steps_in("sign")),
         ("transfer", "权属变更", steps_in("transfer")))
VIEWER_ROLES = (RoleCode.TTO, RoleCode.DECIDER, RoleCode.AUDITOR, RoleCode.ADMIN)
ZERO = "0.00"
MIN_YEAR, MAX_YEAR = 1980, 2999


def check_may_view(user: User, unit_id: int | None) -> None:
    """The office, the unit's leaders and auditors see their unit; the city auditor every unit."""
    roles = {g.role for g in user.roles}
    if RoleCode.CITY_AUDITOR in roles or None in {g.unit_id for g in user.roles if g.role in VIEWER_ROLES}:
        return
    if unit_id is not None and any(g.role in VIEWER_ROLES and g.unit_id == unit_id for g in user.roles):
        return
    raise Forbidden(msg("您无权查看该单位的统计"))


def check_year(year: int) -> None:
    """Years people ask about; anything else is a typo or a probe, refused before any query."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationFailed([{"field": "year", "message": msg("年份须在{low}至{high}之间", low=MIN_YEAR, high=MAX_YEAR)}])


def year_range(year: int) -> tuple[datetime, datetime]:
    from datetime import date
    return clock.start_of_local_day(date(year, 1, 1)), clock.start_of_local_day(date(year + 1, 1, 1))


def compute(session: Session, unit_id: int | None, year: int) -> dict[str, Any]:
    """Every figure of the dashboard and the API for one unit (None: all units) and year."""
    check_year(year)
    start, end = year_range(year)
    by_status, by_kind = _applications(session, unit_id, start, end)
    granted, per_month = _grants(session, unit_id, year)
    return {"year": year, "unit": _unit_code(session, unit_id),
            "applications": by_status,
            "applications_by_kind": by_kind,
            RegistryState.GRANTED: granted,
            "grants_per_month": per_month,
            "steps": _steps(session, unit_id, year),
            "objections": _objections(session, unit_id, start, end),
            "registry": _registry_states(session, unit_id),
            "registry_movements": _movements(session, unit_id, year),
            RegistryState.CONVERTED: _converted(session, unit_id, year),
            "income": _income(session, unit_id, year),
            "contracts": _contracts(session, unit_id, year),
            "income_source": "conversion ledgers: receipts and deductions dated in the year; distributions "
                             "approved or paid whose period ends in the year"}


def _contracts(session: Session, unit_id: int | None, year: int) -> str:
    """Contract amounts of the conversions signed in the year (yuan), from their read models."""
    rows: ScalarResult[dict[str, Any] | None] = session.execute(select(Application.summary).where(
        _unit(Application.unit_id, unit_id), Application.kind == KindCode.CONVERSION, Application.status == StatusCode.COMPLETED)
    ).scalars()
    total = Decimal("0.00")
    for summary in rows:
        contract = (summary or {}).get(StepId.CONVERSION_CONTRACT) or {}
        if str(contract.get("signed_on", "")).startswith(f"{year}-"):
            total += Decimal(str(contract.get("amount", "0")))
    return str(total.quantize(Decimal("0.01")))


def _income(session: Session, unit_id: int | None, year: int) -> dict[str, str]:
    """Yuan as decimal strings: what came in, net of §三(六)2 deductions, and how it was divided."""
    first, last = f"{year}-01-01", f"{year}-12-31"

    def total(column: InstrumentedAttribute[Decimal], date_column: InstrumentedAttribute[str],
              *extra: ColumnElement[bool]) -> Decimal:
        query = _of_unit(select(func.coalesce(func.sum(column), 0)).select_from(column.class_),
                         column.class_.conversion_id, unit_id)
        value: Decimal | int = session.execute(query.where(date_column >= first, date_column <= last,
                                                            *extra)).scalar_one()
        return Decimal(value).quantize(Decimal("0.01"))
    received = total(IncomeReceipt.amount, IncomeReceipt.received_on)
    deducted = total(IncomeDeduction.amount, IncomeDeduction.incurred_on)
    decided = (Distribution.status.in_(("approved", "paid")),)
    return {"received": str(received), "net": str(received - deducted),
            "to_inventors": str(total(Distribution.to_people, Distribution.period_to, *decided)),
            "to_office": str(total(Distribution.to_office, Distribution.period_to, *decided)),
            "to_unit": str(total(Distribution.to_unit, Distribution.period_to, *decided))}


def _unit_code(session: Session, unit_id: int | None) -> str | None:
    return None if unit_id is None else session.get_one(Unit, unit_id).code


def _unit(column: InstrumentedAttribute[int], unit_id: int | None) -> ColumnElement[bool]:
    """Every unit is asked as IN (all units), so the unit-leading indexes serve the city view too."""
    return column.in_(select(Unit.id).scalar_subquery()) if unit_id is None else column == unit_id


def _of_unit(query: Any, application_id: InstrumentedAttribute[int], unit_id: int | None) -> Any:
    """Rows of one unit's applications, through their application. The city is every row, asked
    without the join: every row's application (NOT NULL foreign key) belongs to a unit (NOT NULL
    foreign key), and driving the join from all 100,000 applications probed each one's objections
    and ledgers (SQLite: 8 × 100,000 index look-ups for the city)."""
    if unit_id is None:
        return query
    return query.join(Application, Application.id == application_id).where(Application.unit_id == unit_id)


def _apps_in(unit_id: int | None, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(_unit(Application.unit_id, unit_id), Application.created_at >= start, Application.created_at < end)


def _by(session: Session, column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None], keys: Iterable[str],
        condition: ColumnElement[bool]) -> dict[str, int]:
    counts: dict[str | None, int] = dict(session.execute(select(column, func.count()).where(condition).group_by(column)).all())
    return {k: int(counts.get(k, 0)) for k in keys}


def _applications(session: Session, unit_id: int | None, start: datetime,
                  end: datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Applications started in the year, by their current status and by kind, from the counts kept
    with every application (`models.ApplicationCount`, basis STARTED, period = the Shanghai year)."""
    year = clock.local_date(start).year
    rows = session.execute(select(ApplicationCount.status, ApplicationCount.kind, func.sum(ApplicationCount.n)).where(
        ApplicationCount.scope_id == _scope(unit_id), ApplicationCount.basis == STARTED,
        ApplicationCount.period == year).group_by(ApplicationCount.status, ApplicationCount.kind)).all()
    statuses: dict[str, int] = dict.fromkeys(STATUSES, 0)
    kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
    for status, kind, count in rows:
        if status in statuses:
            statuses[status] += int(count)
        if kind in kinds:
            kinds[kind] += int(count)
    return statuses, kinds


def _grants(session: Session, unit_id: int | None, year: int) -> tuple[dict[str, int], list[int]]:
    """Grants completed in the year, by kind (an extension extends a use right) and by month, from
    the counts by the Shanghai month of closing (`models.ApplicationCount`, basis CLOSED)."""
    rows: Sequence[Any] = session.execute(select(ApplicationCount.period, ApplicationCount.kind, ApplicationCount.n).where(
        ApplicationCount.scope_id == _scope(unit_id), ApplicationCount.basis == CLOSED,
        ApplicationCount.period >= year * 100 + 1, ApplicationCount.period <= year * 100 + 12,
        ApplicationCount.status == StatusCode.COMPLETED)).all()
    kinds: dict[str, int] = dict.fromkeys(KINDS, 0)
    months = [0] * 12
    for period, kind, n in rows:
        if kind in kinds:
            kinds[kind] += int(n)
        months[period % 100 - 1] += int(n)
    return kinds, months


def _scope(unit_id: int | None) -> int:
    return CITY_SCOPE if unit_id is None else unit_id


def _steps(session: Session, unit_id: int | None, year: int) -> list[dict[str, Any]]:
    """Per step: how many finished in the year, median and p90 of the days they waited, read from
    the duration bins (`models.DurationBin`, kept in the transaction that completes each task or
    closes each notice): one statement over one index range of a few thousand counts, no sort of
    the durations themselves. The bins are the stored seconds / 86400 rounded to 0.01, as the
    figures always were; rounding is monotonic, so the value at a rank is the same."""
    scope = CITY_SCOPE if unit_id is None else unit_id
    step_of = {bpmn_id: key for key, _name, bpmn_ids in STEPS for bpmn_id in (bpmn_ids or (Process.PUBLICITY,))}
    rows: Sequence[Any] = session.execute(
        select(DurationBin.step, DurationBin.centidays, DurationBin.n).where(
            DurationBin.scope_id == scope, DurationBin.year == year, DurationBin.step.in_(step_of),
            DurationBin.n != 0)).all()
    bins: dict[str, Counter[int]] = {key: Counter() for key, _name, _ids in STEPS}
    for step, centidays, n in rows:
        bins[step_of[step]][centidays] += int(n)
    return [{"step": key, "name": name, **_percentiles(bins[key])} for key, name, _ids in STEPS]


def _percentiles(bins: Counter[int]) -> dict[str, Any]:
    """Count, median and p90, nearest rank: the values at ranks ceil(p·n), (n + 1) // 2 and
    (9n + 9) // 10, found by walking the bins in order."""
    n = sum(bins.values())
    if n == 0:
        return {"count": 0, "median_days": None, "p90_days": None}
    median_rank, p90_rank = (n + 1) // 2, (n * 9 + 9) // 10
    found: dict[int, float] = {}
    seen = 0
    for centidays in sorted(bins):
        seen += bins[centidays]
        for rank in (median_rank, p90_rank):
            if rank not in found and seen >= rank:
                found[rank] = centidays / 100
        if p90_rank in found:  # p90_rank >= median_rank: both found
            break
    return {"count": n, "median_days": found[median_rank], "p90_days": found[p90_rank]}


def _objections(session: Session, unit_id: int | None, start: datetime, end: datetime) -> dict[str, int]:
    """Objections filed in the year and how many were upheld (one pass), notices started in it."""
    counts = _of_unit(select(func.count(), func.count(case((Objection.decision == ObjectionDecision.UPHOLD, 1)))
                             ).select_from(Objection), Objection.application_id, unit_id)
    found: Any = session.execute(counts.where(Objection.filed_at >= start, Objection.filed_at < end)).one()
    filed, upheld = found
    notices = session.execute(select(func.count()).select_from(PublicityNotice).where(
        _unit(PublicityNotice.unit_id, unit_id), PublicityNotice.starts_at >= start,
        PublicityNotice.starts_at < end)).scalar_one()
    return {"notices": int(notices), "filed": int(filed), "upheld": int(upheld)}


def _registry_states(session: Session, unit_id: int | None) -> dict[str, int]:
    """The registry today, by state."""
    return _by(session, RegistryEntry.status, STATES, _unit(RegistryEntry.unit_id, unit_id))


def _movements(session: Session, unit_id: int | None, year: int) -> dict[str, Any]:
    """What moved in the registry in the year: registered, granted by kind, converted / left by mode."""
    unit = _unit(RegistryEntry.unit_id, unit_id)

    def count(*where: ColumnElement[bool]) -> int:
        return int(session.execute(select(func.count()).select_from(RegistryEntry).where(unit, *where)).scalar_one())
    return {RegistryState.REGISTERED: count(RegistryEntry.registered_year == year),
            RegistryState.GRANTED: _by(session, RegistryEntry.grant_kind, (KindCode.OWNERSHIP, KindCode.USE_RIGHT),
                           and_(unit, RegistryEntry.granted_year == year)),
            RegistryState.CONVERTED: count(RegistryEntry.left_year == year, RegistryEntry.status == RegistryState.CONVERTED),
            RegistryState.LEFT: count(RegistryEntry.left_year == year, RegistryEntry.status == RegistryState.LEFT)}


def _converted(session: Session, unit_id: int | None, year: int) -> dict[str, int]:
    """Achievements converted in the year, by mode (from the registry until conversions exist)."""
    return _by(session, RegistryEntry.left_mode, MODES, and_(
        _unit(RegistryEntry.unit_id, unit_id), RegistryEntry.left_year == year, RegistryEntry.status == RegistryState.CONVERTED))


def per_unit(session: Session, year: int) -> list[dict[str, Any]]:
    """The city's view: the same figures for every unit."""
    return [compute(session, unit.id, year) for unit in session.execute(select(Unit).order_by(Unit.code)).scalars()]


def chart_tables(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's charts as tables (first column: category; the others: series), shared
    by the page, its accessible tables and the CSV downloads."""
    from .annual_report import KIND_NAMES, STATUS_NAMES
    from .registry import STATE_NAMES
    months = [f"{m}月" for m in range(1, 13)]
    return [
        {"key": "applications", "title": "申请（按状态）", "headers": ["状态", "数量"],
         "rows": [[STATUS_NAMES[k], v] for k, v in figures["applications"].items()]},
        {"key": "applications_by_kind", "title": "申请（按类型）", "headers": ["类型", "数量"],
         "rows": [[KIND_NAMES[k], v] for k, v in figures["applications_by_kind"].items()]},
        {"key": "grants_per_month", "title": "每月完成赋权", "headers": ["月份", "数量"],
         "rows": [[m, v] for m, v in zip(months, figures["grants_per_month"], strict=True)]},
        {"key": "steps", "title": "各环节用时（天）", "headers": ["环节", "中位数", "90%分位", "完成数"],
         "rows": [[s["name"], s["median_days"] or 0, s["p90_days"] or 0, s["count"]] for s in figures["steps"]],
         "series": 2},
        {"key": "objections", "title": "公示与异议", "headers": ["项目", "数量"],
         "rows": [["发布公示", figures["objections"]["notices"]], ["收到异议", figures["objections"]["filed"]],
                  ["异议成立", figures["objections"]["upheld"]]]},
        {"key": "registry", "title": "成果库（按状态）", "headers": ["状态", "数量"],
         "rows": [[STATE_NAMES[k], v] for k, v in figures["registry"].items()]},
        {"key": RegistryState.CONVERTED, "title": "转化（按方式）", "headers": ["方式", "数量"],
         "rows": [[MODES[k], v] for k, v in figures[RegistryState.CONVERTED].items()]},
        {"key": RegistryState.GRANTED, "title": "完成赋权（按类型）", "headers": ["类型", "数量"],
         "rows": [[KIND_NAMES[k], v] for k, v in figures[RegistryState.GRANTED].items()]},
    ]


def duration_bin_differences(session: Session) -> list[tuple[tuple[Any, ...], int, int]]:
    """Summary rows whose stored count differs from a recount of the rows: the duration bins'
    (scope, step, year, centidays) and the application counts' (scope, basis, period, status,
    kind), stored, recounted. Empty when the summaries behind the figures are exact."""
    connection = session.connection()
    out: list[tuple[tuple[Any, ...], int, int]] = []
    for stored, counted in ((models.stored_duration_bins(connection), models.count_duration_bins(connection)),
                            (models.stored_application_counts(connection), models.count_applications(connection))):
        keys: set[tuple[Any, ...]] = set(stored) | set(counted)
        out += [(key, stored.get(key, 0), counted.get(key, 0)) for key in sorted(keys, key=str)
                if stored.get(key, 0) != counted.get(key, 0)]
    return out
