"""The unit's annual report on separate management (年度单列管理报告, §三(三)4): the same tables
as a PDF (WeasyPrint) and an XLSX. Every figure comes from `statistics.compute` and the registry,
and the lists of achievements and applications behind them are printed with them.

Contract amounts, income and its distribution, and leader rewards come from the conversion module
(issue 12), which does not exist yet: those rows are 0.00 and the report says so.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from workflows import clock, settings
from workflows.catalogue import KIND_LABELS, STATUS_LABELS, KindCode, RegistryState
from workflows.errors import ValidationFailed
from workflows.i18n import msg
from workflows.models import Application, RegistryEntry, Unit, User

from . import registry, sheets, statistics

STATUS_NAMES, KIND_NAMES = STATUS_LABELS, KIND_LABELS
REPORT_YEARS = range(2000, 2101)  # years an annual report may be asked for
LEDGER_NOTE = "合同金额、转化收入、净收入及分配数额取自本系统各成果转化记录的合同登记与收益台账（扣除项按第三部分第（六）项第2目）。"


def filename(unit_code: str, year: int, ext: str) -> str:
    return f"{unit_code}-{year}-年度单列管理报告.{ext}"


def build(session: Session, user: User | None, unit_code: str, year: int) -> dict[str, Any]:
    """The report's tables for one unit and year, for a reader allowed to see its statistics
    (user None: the operator's command line, who holds the database anyway)."""
    unit = session.execute(select(Unit).where(Unit.code == str(unit_code))).scalar_one_or_none()
    if unit is None:
        raise ValidationFailed([{"field": "unit", "message": msg("未知单位“{unit}”", unit=unit_code)}])
    if int(year) not in REPORT_YEARS:
        raise ValidationFailed([{"field": "year", "message": msg("年份无效")}])
    if user is not None:
        statistics.check_may_view(user, unit.id)
    figures = statistics.compute(session, unit.id, int(year))
    return {"unit": {"code": unit.code, "name": unit.name}, "year": int(year), "generated_at": clock.now(),
            "figures": figures, "tables": _tables(session, unit, int(year), figures), "note": LEDGER_NOTE}


def _tables(session: Session, unit: Unit, year: int, f: dict[str, Any]) -> list[dict[str, Any]]:
    moves, income = f["registry_movements"], f["income"]
    step_rows = [[s["name"], s["count"], _days(s["median_days"]), _days(s["p90_days"])] for s in f["steps"]]
    return [
        _table("registry_movements", "一、成果库变动", ["项目", "数量"], [
            ["新登记入库", moves[RegistryState.REGISTERED]], ["赋予所有权", moves[RegistryState.GRANTED][KindCode.OWNERSHIP]],
            ["赋予长期使用权", moves[RegistryState.GRANTED][KindCode.USE_RIGHT]], ["已转化", moves[RegistryState.CONVERTED]], ["出库", moves[RegistryState.LEFT]]]),
        _table("registry_states", "二、成果库现状（按状态）", ["状态", "数量"],
               [[registry.STATE_NAMES[k], v] for k, v in f["registry"].items()]),
        _table(RegistryState.CONVERTED, "三、转化方式", ["方式", "数量"],
               [[registry.MODES[k], v] for k, v in f[RegistryState.CONVERTED].items()]),
        _table("applications", "四、赋权申请及结果（本年提出，按当前状态）", ["状态", "数量"],
               [[STATUS_NAMES[k], v] for k, v in f["applications"].items()]),
        _table(RegistryState.GRANTED, "五、完成赋权（本年办结）", ["类型", "数量"],
               [[KIND_NAMES[k], v] for k, v in f[RegistryState.GRANTED].items()]),
        _table("publicity", "六、公示与异议", ["项目", "数量"], [
            ["发布公示", f["objections"]["notices"]], ["收到异议", f["objections"]["filed"]],
            ["异议成立", f["objections"]["upheld"]]]),
        _table("income", "七、合同金额、收益及分配（元）", ["项目", "金额"], [
            ["合同金额", f["contracts"]], ["转化收入", income["received"]], ["净收入", income["net"]],
            ["分配给成果完成人", income["to_inventors"]], ["分配给成果转化机构", income["to_office"]],
            ["单位留存", income["to_unit"]]]),
        _table("leader_rewards", "八、领导人员奖励公示", ["项目", "数量"], [["公示的领导人员奖励", 0]]),
        _table("steps", "九、各环节用时（天，本年完成）", ["环节", "完成数", "中位数", "90%分位"], step_rows),
        _table("achievements", "十、成果清单（本年登记、赋权、转化或出库）", registry.EXPORT_HEADERS,
               [registry.export_row(e) for e in _entries(session, unit, year)]),
        _table("application_list", "十一、申请清单（本年提出或办结）",
               ["申请编号", "成果名称", "类型", "状态", "提出日期", "办结日期"],
               [[a.number, a.title, KIND_NAMES.get(a.kind, a.kind), STATUS_NAMES.get(a.status, a.status),
                 clock.local_date(a.created_at).isoformat(), clock.local_date(a.closed_at).isoformat() if a.closed_at else ""]
                for a in _applications(session, unit, year)]),
    ]


def _table(key: str, title: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"key": key, "title": title, "headers": headers, "rows": rows}


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _entries(session: Session, unit: Unit, year: int) -> list[RegistryEntry]:
    return list(session.execute(select(RegistryEntry).where(
        RegistryEntry.unit_id == unit.id, or_(RegistryEntry.registered_year == year, RegistryEntry.granted_year == year,
                                              RegistryEntry.left_year == year)).order_by(RegistryEntry.id)).scalars())


def _applications(session: Session, unit: Unit, year: int) -> list[Application]:
    start, end = statistics.year_range(year)
    return list(session.execute(select(Application).where(Application.unit_id == unit.id, Application.kind != KindCode.WATCH, or_(
        and_(Application.created_at >= start, Application.created_at < end),
        and_(Application.closed_at >= start, Application.closed_at < end))).order_by(Application.number)).scalars())


def to_xlsx(report: dict[str, Any]) -> bytes:
    """The report's tables, one sheet each, built in a child process like its PDF (sheets.xlsx_in_child)."""
    return sheets.xlsx_in_child([(t["title"].split("、", 1)[-1], t["headers"], t["rows"]) for t in report["tables"]])


def to_pdf(report: dict[str, Any]) -> bytes:
    """The report as PDF/A, signed with the unit's certificate (PAdES) like its notices, laid out
    *and signed* in a spawned child process that exits afterwards: the layout of a unit with
    thousands of applications takes ~700 MB (issue 10), and signing imports pyHanko and its
    cryptography (~35 MB the server kept for good, bench/README "Server memory"). The child gets
    the plain report and this process's settings (the instance directory holding the unit's keys)."""
    ctx = {**report, "number": f"{report['unit']['code']}-{report['year']}"}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_laid_out_and_signed, ctx, settings.get()).result()


def _laid_out_and_signed(ctx: dict[str, Any], current: settings.Settings) -> bytes:
    """`to_pdf`'s work, in the child."""
    settings.configure(**dataclasses.asdict(current))
    from workflows.documents import render
    from workflows.evidence import signing
    pdf = render.pdf_here("annual_report.html", ctx)
    return signing.sign_as_unit(pdf, signing.UnitName(ctx["unit"]["code"], ctx["unit"]["name"]),
                                title="年度报告电子签章")


def write(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Writes DIR/UNIT-YEAR-年度单列管理报告.pdf and .xlsx; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, data in (("pdf", to_pdf(report)), ("xlsx", to_xlsx(report))):
        path = out / filename(report["unit"]["code"], report["year"], ext)
        path.write_bytes(data)
        paths.append(path)
    return paths


__all__ = ["build", "filename", "to_pdf", "to_xlsx", "write"]
