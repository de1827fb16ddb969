"""The public publicity board (公示): no account needed to read notices or file an objection."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import defer, joinedload, lazyload

from workflows import clock, publicity
from workflows.catalogue import KindCode, NoticeKind, NoticeOutcome, StepId
from workflows.errors import Forbidden, GrantError, NotFound, ValidationFailed
from workflows.grants import policy
from workflows.models import Application, Document, Objection, PublicityNotice
from workflows.process import forms, queries

from .. import database
from ..errors import errors_by_field, message_of
from ..extensions import gettext as _
from . import listing
from .applications import download
from .tasks import KINDS

bp = Blueprint("public", __name__, url_prefix="/publicity")


OUTCOMES = {"open": "公示中", "closing": "公示期满，待确认结果", "handling": "公示期满，异议处理中",
            "no_objection": "公示期满，无异议", "dismissed": "公示期满，异议经核查不成立",
            NoticeOutcome.RESTARTED: "异议经核查，已重新公示", NoticeOutcome.UPHELD: "异议成立，公示未通过"}
NOTICE_KINDS = {NoticeKind.GRANT: "赋权公示", NoticeKind.PRICE: "协议定价公示", NoticeKind.LEADER_REWARD: "领导人员奖励公示"}
RECEIPTS_KEY = "objection_receipts"  # receipts filed in this browser session: shown without a look-up


@bp.get("")
def index():
    query = board_query().options(defer(PublicityNotice.summary))  # read only for entries not yet kept
    found = listing.page_of(query, queries.NOTICE_SORTS, "ends", queries.search_notices, key=PublicityNotice.id)
    return render_template("public/index.html", articles=_articles(found.rows), page=found,
                           q=listing.args()[2], kinds=KINDS, lookup={}, lookup_errors={})


_ARTICLES: OrderedDict[tuple, Markup] = OrderedDict()
_ARTICLES_LOCK = threading.Lock()
ARTICLES_KEPT = 2000  # ~4 KB each: the rendered board costs a few MB at most


def _article_key(notice: PublicityNotice, locale: str) -> tuple:
    """Every field a board entry prints. The notice's summary (what it posts) is written once, when
    the notice goes up (operations.py), and never changed: its id stands for it, so a kept entry
    needs neither the summary's JSON read nor a digest of it (a third of the board's CPU)."""
    a = notice.application
    return (locale, notice.id, notice.round, notice.kind, notice.last_day, notice.starts_at,
            notice.document_id, a.title, a.number, a.kind, a.unit.code, a.unit.name, a.unit.contact)


def _articles(notices: list[PublicityNotice]) -> list[Markup]:
    """The board entries of a page, rendered once per language and kept while what they show is
    unchanged: rendering fifty notices (Jinja macros, ~1,500 strings to translate) was most of the
    board's time. The summaries of the entries not kept are read in one statement."""
    locale = str(get_locale())
    keys = [_article_key(n, locale) for n in notices]
    with _ARTICLES_LOCK:
        kept = {key: _ARTICLES[key] for key in keys if key in _ARTICLES}
        for key in kept:
            _ARTICLES.move_to_end(key)
    missing = [n.id for n, key in zip(notices, keys, strict=True) if key not in kept]
    summaries: dict[int, dict[str, Any]] = dict(database.session().execute(
        select(PublicityNotice.id, PublicityNotice.summary).where(PublicityNotice.id.in_(missing))).all()) if missing else {}
    template = current_app.jinja_env.get_template("public/_article.html")
    for notice, key in zip(notices, keys, strict=True):
        if key not in kept:  # straight from the environment: no context processors (the top bar's counts) per entry
            item = _summary(notice, summaries.get(notice.id) or {})
            kept[key] = Markup(template.render(item=item, kinds=KINDS))
    with _ARTICLES_LOCK:
        for key in keys:
            _ARTICLES[key] = kept[key]
        while len(_ARTICLES) > ARTICLES_KEPT:
            _ARTICLES.popitem(last=False)
    return [kept[key] for key in keys]


@bp.get("/archive")
def archive():
    """Past notices of every kind with their outcome, newest end first; read from the notices
    alone (summary and indexed columns), never from a workflow."""
    kind = request.args.get("kind") if request.args.get("kind") in NOTICE_KINDS else None
    found = listing.page_of(archive_query(kind=kind), queries.NOTICE_SORTS, "-ends", queries.search_notices)
    return render_template("public/archive.html", rows=archived_rows(found.rows), page=found, q=listing.args()[2],
                           kind=kind, notice_kinds=NOTICE_KINDS, outcomes=OUTCOMES)


def board_query(unit_id: int | None = None):
    """Open notices; joined to their application only when a search or a sort needs it, so the
    count of the first page reads the index `ix_notices_open` alone (5,000 open notices at 100k)."""
    query = publicity.open_notices(unit_id)
    if has_request_context() and (listing.args()[2] or (listing.args()[1] or "").lstrip("-") in ("number", "title")):
        query = query.join(Application, PublicityNotice.application_id == Application.id)
    return query.options(_NOTICE_APPLICATION)


# The board and the archive show neither the team, the representative (with their roles) nor the
# application's read model: three statements of the archive's five, and most of its CPU.
_NOTICE_APPLICATION = joinedload(PublicityNotice.application).options(
    lazyload(Application.members), lazyload(Application.representative),
    defer(Application.summary), defer(Application.ip_numbers))


def archive_query(unit_id: int | None = None, kind: str | None = None):
    """Past notices; joined to their application only when a search or a sort needs it, so the
    first page and its count read the notices' own index (tens of thousands of rows at scale)."""
    query = publicity.ended_notices(unit_id).options(_NOTICE_APPLICATION)
    if listing.args()[2] or (listing.args()[1] or "").lstrip("-") in ("number", "title"):
        query = query.join(Application, PublicityNotice.application_id == Application.id)
    return query if kind is None else query.where(PublicityNotice.kind == kind)


def archived_rows(notices: list[PublicityNotice]) -> list[dict[str, Any]]:
    """Each notice of a page with its title as posted and its outcome (one query for the counts)."""
    counts = publicity.objection_counts(database.session(), [n.id for n in notices])
    return [{"notice": n, "title": _posted_title(n), "outcome": publicity.outcome_of(n, *counts[n.id]),
             "objections": counts[n.id][0], "ended_on": _ended_on(n)} for n in notices]


def _ended_on(notice: PublicityNotice) -> str:
    """The term's last day, or the day an objection ended it early (Beijing dates)."""
    if notice.closed_at is not None and clock.as_utc(notice.closed_at) < clock.as_utc(notice.ends_at):
        return clock.local_date(notice.closed_at).isoformat()
    return notice.last_day


def _posted_title(notice: PublicityNotice) -> str:
    draft = (notice.summary or {}).get(StepId.DRAFT) or {}
    return (draft.get("achievement") or {}).get("title") or notice.application.title


def notice_or_404(notice_id: int) -> PublicityNotice:
    """A notice that has gone up, open or past: its address stays valid once the term is over."""
    notice = database.session().get(PublicityNotice, notice_id)
    if notice is None or clock.as_utc(notice.starts_at) > clock.now():
        raise NotFound(_("该公示不存在"))
    return notice


def _summary(notice: PublicityNotice, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the policy asks to post: the achievement, the team, the grant, leaders' rewards."""
    app = notice.application
    if summary is None:
        summary = notice.summary or {}  # written when the notice opened: no workflow loads
    draft = summary.get(StepId.DRAFT) or {}
    if notice.kind in (NoticeKind.PRICE, NoticeKind.LEADER_REWARD):  # a conversion's price (§三(五)1) or leaders' rewards (§三(六)3)
        return {"notice": notice, "app": app, StepId.DRAFT: draft, "leaders": [],
                "schema": forms.load_schema(f"{summary.get('grant_kind', KindCode.OWNERSHIP)}_draft.schema.json"),
                "plan": summary.get("plan") or {}, "rewards": summary.get("rewards") or [],
                "to_people": summary.get("to_people"),
                "conversion_schema": forms.load_schema("conversion_plan.schema.json")}
    schema = forms.load_schema(f"{app.kind}_draft.schema.json") if app.kind != KindCode.EXTENSION else {}
    return {"notice": notice, "app": app, StepId.DRAFT: draft, "schema": schema, "plan": {},
            "leaders": policy.leaders_to_publish(draft)}


def _show(notice: PublicityNotice, errors: dict[str, list[str]] | None = None, form=None, status: int = 200):
    item = _summary(notice)
    item.update(archived_rows([notice])[0])
    return render_template("public/show.html", item=item, kinds=KINDS, outcomes=OUTCOMES,
                           notice_kinds=NOTICE_KINDS, errors=errors or {}, form=form or {}), status


@bp.get("/<int:notice_id>")
def show(notice_id: int):
    return _show(notice_or_404(notice_id))


@bp.get("/<int:notice_id>/notice.pdf")
def notice_pdf(notice_id: int):
    notice = notice_or_404(notice_id)
    doc = database.session().get(Document, notice.document_id or 0)
    if doc is None:
        raise NotFound(_("公示文件尚未生成"))
    return download(doc, inline=True)


@bp.post("/<int:notice_id>/objection")
def object_to(notice_id: int):
    notice = notice_or_404(notice_id)
    data = {k: request.form.get(k, "").strip() for k in ("name", "contact", "reason")}
    data = {k: v for k, v in data.items() if v}
    file = request.files.get("attachment")
    attachment = (file.filename, file.read()) if file is not None and file.filename else None
    try:
        objection = publicity.file_objection(database.session(), notice.id, data, attachment=attachment,
                                             client=publicity.client_key(request.remote_addr or ""))
    except ValidationFailed as exc:
        database.discard_changes()
        flash(_("异议未能提交，请按提示修改"), "error")
        return _show(notice, errors_by_field(exc), request.form, 422)
    except GrantError as exc:
        database.discard_changes()
        flash(message_of(exc), "error")
        return _show(notice, {}, request.form, exc.status)
    session[RECEIPTS_KEY] = [*session.get(RECEIPTS_KEY, [])[-9:], objection.receipt]
    return redirect(url_for("public.receipt", receipt=objection.receipt))


@bp.get("/receipt/<receipt>")
def receipt(receipt: str):
    """Proof of filing, right after it (this browser filed it); anyone else looks it up with the
    contact given when filing. Shows no personal data, only the state."""
    if receipt not in session.get(RECEIPTS_KEY, []):
        return redirect(url_for("public.lookup", receipt=receipt))
    s = database.session()
    objection = s.execute(select(Objection).where(Objection.receipt == receipt)).scalar_one_or_none()
    if objection is None:
        raise NotFound(_("回执编号不存在"))
    return render_template("public/receipt.html", found=publicity.receipt_status(s, objection), outcomes=OUTCOMES,
                           just_filed=True)


@bp.get("/lookup")
def lookup():
    return render_template("public/lookup.html", lookup={"receipt": request.args.get("receipt", "")[:40]},
                           lookup_errors={})


@bp.post("/lookup")
def lookup_post():
    """Receipt number + contact → the objection's processing state; throttled like sign-in."""
    s = database.session()
    form = {"receipt": request.form.get("receipt", "").strip()[:40], "contact": request.form.get("contact", "")[:200]}
    errors = {k: [_("请填写回执编号") if k == "receipt" else _("请填写提交异议时留下的联系方式")]
              for k in ("receipt", "contact") if not form[k].strip()}
    if errors:
        return render_template("public/lookup.html", lookup=form, lookup_errors=errors), 422
    try:
        objection = publicity.lookup_receipt(s, form["receipt"], form["contact"],
                                             publicity.client_key(request.remote_addr or ""))
    except GrantError as exc:
        s.commit()  # like a failed sign-in: the attempt counters must stay counted
        status = 429 if isinstance(exc, Forbidden) else 404
        return render_template("public/lookup.html", lookup=form, lookup_errors={"": [message_of(exc)]}), status
    return render_template("public/receipt.html", found=publicity.receipt_status(s, objection), outcomes=OUTCOMES,
                           just_filed=False)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
