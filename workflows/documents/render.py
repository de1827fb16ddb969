"""Render the grant documents (Jinja HTML -> WeasyPrint PDF bytes). Pure: ctx in, bytes out."""
from __future__ import annotations

import ctypes
import gc
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

from ..catalogue import FLOORS, TEMPLATE_CODES, KindCode, StepId
from ..i18n import msg
from . import clauses, labels
from .fetcher import TEMPLATES_DIR, RestrictedURLFetcher

if TYPE_CHECKING:  # signing imports documents at run time: only the checker sees this
    from workflows.evidence.signing import SigBox

PDF_A_VARIANT = "pdf/a-3b"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    date=labels.fmt_date,
    datetime=labels.fmt_datetime,
    datetime_plain=labels.fmt_datetime_plain,
    percent=labels.fmt_percent,
    money=labels.fmt_money,
    money_upper=labels.fmt_money_upper,
)
_env.filters.update(iso=labels.iso, groups=labels.in_groups)
_env.globals.update(label=labels.enum_label, kind_names=labels.KIND_NAMES,
                    role_names=labels.ROLE_NAMES, no_number_ip_types=clauses.NO_NUMBER_IP_TYPES,
                    floors=FLOORS, cn_number=labels.cn_number, **TEMPLATE_CODES)

# Parsed once: the stylesheet and font lookups are the same for every document.
_font_config = FontConfiguration()
_stylesheet = None
# One WeasyPrint layout at a time per process. Pango and fontconfig objects (the shared font
# map above, its caches) are not thread-safe: two threads laying out at once — the timer sweep
# rendering an agreement while a request renders a notice or the annual report under waitress —
# corrupt the heap (GLib "corrupted double-linked list", then SIGSEGV / `free(): invalid
# pointer` in whichever thread allocates next, often SQLite's: issue 8, finding 13). A leaf
# lock: nothing else is acquired while it is held.
_layout_lock = threading.Lock()


def _css() -> CSS:
    global _stylesheet  # noqa: PLW0603 (parsed once per process, on first use)
    if _stylesheet is None:
        _stylesheet = CSS(filename=str(TEMPLATES_DIR / "documents.css"),
                          url_fetcher=RestrictedURLFetcher(), font_config=_font_config)
    return _stylesheet


def render_html(template: str, ctx: dict[str, Any]) -> str:
    """The HTML a document is made from (handy for debugging a layout)."""
    return _env.get_template(template).render(**ctx, clause_no=labels.ClauseCounter())


def _drop_producer(document: Any, pdf: Any) -> None:  # WeasyPrint's Document and pydyf.PDF
    """pyHanko rewrites the XMP Producer when it signs; without an Info Producer the two stay
    equal, as PDF/A requires."""
    pdf.info.pop("Producer", None)


def _signature_boxes(document: Any) -> list[SigBox]:
    """Each reserved `.sigbox` (id "sig-<role>") as page index + rectangle in PDF points."""
    from workflows.evidence.signing import SigBox
    found: dict[str, SigBox] = {}
    for index, page in enumerate(document.pages):
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            ident = element.get("id", "") if element is not None else ""
            if ident.startswith("sig-") and ident not in found:
                x, y = box.border_box_x(), box.border_box_y()
                w, h = box.border_width(), box.border_height()
                found[ident] = SigBox(f"Sig_{ident[4:]}", index, tuple(round(v * 0.75, 2) for v in (
                    x, page.height - (y + h), x + w, page.height - y)))
    return list(found.values())


def _glibc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _glibc_trim()


def _release_heap() -> None:
    """Hand the layout's freed memory back to the system. A layout allocates a few hundred MB of
    small objects (the annual report at 100k: ~150 MB); once freed, glibc keeps the pages in the
    arena of the thread that laid out, so the server's RSS stayed at its peak for good (issue 10:
    RSS ≤ 250 MB whatever page was asked for). malloc_trim(0) returns them (a few ms)."""
    gc.collect()
    malloc_trim()


def malloc_trim() -> None:
    """glibc's malloc_trim(0): freed pages of every arena back to the system (nothing elsewhere)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _pdf(template: str, ctx: dict[str, Any], final: bool = False) -> bytes:
    """The PDF, with empty signature fields where the template reserved a `.sigbox`."""
    html = HTML(string=render_html(template, ctx), base_url=TEMPLATES_DIR.as_uri() + "/",
                url_fetcher=RestrictedURLFetcher())
    options = {"pdf_variant": PDF_A_VARIANT} if final else {}
    with _layout_lock:
        document = html.render(stylesheets=[_css()], font_config=_font_config, **options)
        pdf: bytes = document.write_pdf(finisher=_drop_producer, **options)
        boxes = _signature_boxes(document)
        del document
        _release_heap()
    if not boxes:
        return pdf
    from workflows.evidence.signing import prepare_fields
    return prepare_fields(pdf, boxes)


def pdf_here(template: str, ctx: dict[str, Any]) -> bytes:
    """`_pdf` in this process, for a child that lays out and signs (annual_report.to_pdf)."""
    return _pdf(template, ctx)


def pdf_in_child(template: str, ctx: dict[str, Any]) -> bytes:
    """`_pdf` laid out in a child process that exits afterwards: the annual report of a unit with
    thousands of applications takes ~700 MB to lay out (100k seed: the server went from 200 to
    845 MB and stayed there, issue 10). The child is spawned (not forked: the server has threads
    and open connections) and gets only the template name and the (plain) context."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
        return child.submit(_pdf, template, ctx).result()


def _licence_end(start: date | str, years: int) -> date:
    """Last day of a licence of `years` from `start` (2027-01-01 + 10 y -> 2036-12-31)."""
    start = labels.parse_date(start)
    try:
        anniversary = start.replace(year=start.year + years)
    except ValueError:  # 29 February
        anniversary = start.replace(year=start.year + years, day=28) + timedelta(days=1)
    return anniversary - timedelta(days=1)


def render_agreement(ctx: dict[str, Any]) -> bytes:
    """赋权协议 (kind "ownership") or 长期使用权许可协议 (kind "use_right").

    With ctx["esign"] the PDF is PDF/A-3b with empty signature fields for both parties (the
    document that is signed and kept); with ctx["final"] (the old re-rendered signature page,
    no longer used by the engine) it ends with the signature page; a missing
    or empty clause raises MissingClause instead of printing a blank one.
    """
    kind = ctx.get("kind")
    if kind not in (KindCode.OWNERSHIP, KindCode.USE_RIGHT):
        raise clauses.MissingClause(msg("协议类型"), msg("未知类型 {kind}", kind=repr(kind)))
    clauses.require(ctx, kind)
    draft, terms = ctx[StepId.DRAFT], ctx["terms"]
    clauses.check_ip_numbers(draft)
    clauses.check_members(draft["members"])
    clauses.check_income(terms)
    extra = {}
    if kind == KindCode.OWNERSHIP:
        clauses.check_ownership_share(draft)
    else:
        clauses.check_licence_term(terms)
        extra["licence_end"] = _licence_end(terms["licence_start_date"], terms["licence_term_years"])
    final, esign = bool(ctx.get("final")), bool(ctx.get("esign"))
    if final:
        clauses.check_signatures(ctx)
    template = f"agreement_{kind}.html"
    return _pdf(template, {**ctx, **extra, "final": final, "esign": esign,
                           "signatures": ctx.get("signatures") or [],
                           "draft_sha256": ctx.get("draft_sha256", "")}, final or esign)


def render_supplementary_agreement(ctx: dict[str, Any]) -> bytes:
    """长期使用权延期补充协议 (§三(二)2): extends the term of an existing use-right grant."""
    clauses.require(ctx, "supplementary")
    final, esign = bool(ctx.get("final")), bool(ctx.get("esign"))
    if final:
        clauses.check_signatures(ctx)
    return _pdf("supplementary.html", {
        StepId.DRAFT: None, "original_terms": None, **ctx, "final": final, "esign": esign,
        "signatures": ctx.get("signatures") or [],
        "draft_sha256": ctx.get("draft_sha256", "")}, final or esign)


def render_publicity_notice(ctx: dict[str, Any]) -> bytes:
    """公示 notice (§三(一)3, §三(二)1; price §三(五)1; leaders' rewards §三(六)3)."""
    clauses.require(ctx, "publicity")
    draft = ctx[StepId.DRAFT]
    kind = ctx.get("kind")
    if kind == KindCode.OWNERSHIP:
        if clauses.is_empty(draft.get("ownership_mode")):
            raise clauses.MissingClause(msg("共有方式"))
        clauses.check_ownership_share(draft)
    elif kind == KindCode.USE_RIGHT:
        for clause, key in ((msg("使用权期限"), "term_years"), (msg("许可方式"), "licence_mode")):
            if clauses.is_empty(draft.get(key)):
                raise clauses.MissingClause(clause)
    else:
        raise clauses.MissingClause(msg("赋权类型"), msg("未知类型 {kind}", kind=repr(kind)))
    if draft.get("pricing_method") == "agreement" and draft.get("proposed_price") is None:
        raise clauses.MissingClause(msg("拟交易价格"))
    leaders = [m for m in draft["members"] if m.get("is_leader") or m.get("is_principal_leader")]
    start_day = labels.to_local(ctx["starts_at"]).date()
    last_day = labels.last_local_day(ctx["ends_at"])
    return _pdf("publicity.html", {"representative": None, **ctx, "leaders": leaders, "start_day": start_day,
                                   "last_day": last_day})


MODE_NAMES = {"transfer": "转让", "licence": "许可", "equity": "作价投资"}
LICENCE_NAMES = {"exclusive": "独占许可", "sole": "排他许可", "ordinary": "普通许可"}


def render_price_notice(ctx: dict[str, Any]) -> bytes:
    """协议定价公示 (§三(五)1): the achievement's name and proposed price, for at least 15 days."""
    clauses.require(ctx, "publicity")
    plan = ctx.get("plan") or {}
    for clause, key in ((msg("转化方式"), "mode"), (msg("拟交易价格"), "price"), (msg("受让方"), "counterparty")):
        if clauses.is_empty(plan.get(key)):
            raise clauses.MissingClause(clause)
    return _pdf("price_publicity.html", {
        **ctx, "mode_name": MODE_NAMES[plan["mode"]], "licence_name": LICENCE_NAMES.get(plan.get("licence_type", ""), ""),
        "start_day": labels.to_local(ctx["starts_at"]).date(), "last_day": labels.last_local_day(ctx["ends_at"])})


REWARD_MODE_NAMES = {"cash": "现金", "equity": "股权", "contribution_share": "出资比例"}


def render_leader_notice(ctx: dict[str, Any]) -> bytes:
    """领导人员奖励公示 (§三(六)3): contribution, reward mode and share of each leader."""
    return _pdf("leader_publicity.html", {
        **ctx, "title": ctx[StepId.DRAFT].get("achievement", {}).get("title") or ctx.get("title", ""),
        "mode_names": REWARD_MODE_NAMES, "start_day": labels.to_local(ctx["starts_at"]).date(),
        "last_day": labels.last_local_day(ctx["ends_at"])})


def render_distribution_notice(ctx: dict[str, Any]) -> bytes:
    """收益分配公告: each person, amount and mode of a plan the unit decided (§三(六))."""
    return _pdf("distribution_notice.html", {**ctx, "mode_names": REWARD_MODE_NAMES,
                                             "title": ctx.get("title", "")})


def render_decision_record(ctx: dict[str, Any]) -> bytes:
    """单位集体决策记录: the evidence for diligence exemption (§三(七)) — who, when, how, votes."""
    clauses.require(ctx, "decision")
    return _pdf("decision.html", {StepId.REVIEW: None, "representative": None, **ctx})
