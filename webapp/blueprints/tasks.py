"""My tasks (我的待办), the task page built from the step's JSON Schema, claim/release/reassign,
uploads into a task's form, and in-app notifications."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required

from workflows import clock
from workflows.catalogue import KIND, KIND_LABELS, STEP_LABELS, KindCode, Process, RoleCode, StepId, step_form, steps_in
from workflows.conversion import income, watch
from workflows.documents import uploads
from workflows.errors import GrantError, ValidationFailed, WrongState
from workflows.grants import recusal
from workflows.grants.signatures import latest_document
from workflows.models import Objection
from workflows.people import access, notify
from workflows.process import assignment, engine, forms, queries

from .. import database
from ..errors import errors_by_field, message_of
from ..extensions import gettext as _
from ..filters import translate
from ..form_widgets import parse_form
from ..signed_in import me, safe_next
from . import listing

bp = Blueprint("tasks", __name__)

STEP_NAMES, KINDS = STEP_LABELS, KIND_LABELS
EVENT_STEPS = {**STEP_NAMES, Process.PUBLICITY: "公示"}


@bp.get("/tasks")
@login_required
def index():
    kind, step = request.args.get("kind") or None, request.args.get("step") or None
    since = _parse_date(request.args.get("since"))
    found = listing.task_page(me(), kind=kind, step=step, since=since)
    due_days = current_app.config["REMINDER_AFTER_DAYS"]
    return render_template("tasks/index.html", tasks=found.rows, page=found, q=listing.args()[2], kinds=KINDS,
                           steps=STEP_NAMES, kind=kind, step=step, since=request.args.get("since", ""),
                           due=timedelta(days=due_days), now=clock.now())


def _parse_date(text: str | None):
    try:
        return clock.start_of_local_day(date.fromisoformat(text)) if text else None
    except ValueError:
        return None


def _visible_task(task_id: str):
    """The task, if its application is one the person may see (else 404, like a missing one)."""
    s = database.session()
    task = engine.get_task(s, task_id)
    access.get_visible(s, me(), task.application_id)
    return task


def _may_act(task) -> bool:
    try:
        assignment.check_may_complete(me(), task)
    except GrantError:
        return False
    return task.state == "ready"


@bp.get("/tasks/<task_id>")
@login_required
def show(task_id: str):
    task = _visible_task(task_id)
    view = queries.task_view(database.session(), me(), task) if task.state == "ready" else None
    return _render_task(task, view["data"] if view else {}, {})


def _render_task(task, data: dict[str, Any], errors: dict[str, list[str]], status: int = 200):
    s = database.session()
    user = me()
    may_act = _may_act(task)
    colleagues = []
    if task.state == "ready" and task.role in (RoleCode.TTO, RoleCode.DECIDER, RoleCode.SIGNER) and user.has_role(RoleCode.TTO, task.unit_id):
        colleagues = [c for c in queries.colleagues_with_role(s, task.role, task.unit_id)
                      if c.id not in task.application.member_ids()]
    context = _task_context(task) if task.state == "ready" else {}
    recusal_warnings = recusal.warnings(s, task.application, data) if task.bpmn_id == StepId.DRAFT else []
    return render_template("tasks/task.html", task=task, schema=forms.load_schema(task.form), data=data,
                           errors=errors, may_act=may_act, colleagues=colleagues, kinds=KINDS,
                           step_names=STEP_NAMES, recusal_warnings=recusal_warnings, **context), status


def _task_context(task) -> dict[str, Any]:
    """What the person needs to decide: the application as filed, earlier verdicts, the PDF to
    sign, the objection to answer, and why it came back."""
    s = database.session()
    app = task.application
    wf = queries.task_data(s, task)
    step = task.bpmn_id
    panels: list[tuple[str, dict[str, Any], Any]] = []
    filed_key = KIND[app.kind].filed_step
    if step != filed_key and wf.get(filed_key):
        panels.append((_("申请内容"), forms.load_schema(step_form(filed_key, app.kind)), wf[filed_key]))
    for key in steps_in("review"):
        if step in steps_in("decision") and wf.get(key):
            panels.append((_("审查意见"), forms.load_schema(step_form(key, app.kind)), wf[key]))
    terms_key = KIND[app.kind].terms_step
    if step in (*steps_in("sign"), *steps_in("transfer"), *steps_in("archive")) and terms_key and wf.get(terms_key):
        panels.append((_("协议条款"), forms.load_schema(step_form(terms_key, app.kind)), wf[terms_key]))
    if app.kind == KindCode.CONVERSION and step != StepId.CONVERSION_PLAN and wf.get(StepId.CONVERSION_PLAN):
        panels.append((_("转化方案"), forms.load_schema(step_form(StepId.CONVERSION_PLAN, app.kind)), wf[StepId.CONVERSION_PLAN]))
    agreement = latest_document(s, app, "agreement_draft") if step.startswith("sign_") else None
    objection = s.get(Objection, task.context.get("objection_id")) if step == StepId.HANDLE_OBJECTION else None
    return {"panels": panels, "notes": _notes(step, wf), "agreement": agreement, "objection": objection,
            "objector_visible": objection is not None and access.may_see_objectors(me(), app),
            **_ledger_context(s, app)}


def _ledger_context(s, app) -> dict[str, Any]:
    """A distribution's tasks show the plan they decide or pay; the lapse task its period."""
    if app.kind == KindCode.DISTRIBUTION:
        conv = s.get(type(app), app.original_id)
        plans = [p for p in income.ledger(s, conv)["distributions"] if p["process_id"] == app.id]
        return {"plan": plans[0] if plans else None}
    if app.kind == watch.KIND:
        return {"period": watch.view(s, s.get(type(app), app.original_id))}
    return {}


def _notes(step: str, wf: dict[str, Any]) -> list[tuple[str, str]]:
    """Why the task came back: return comments, refusals, requested changes."""
    notes = []
    if step in (StepId.DRAFT, StepId.EXTENSION_REQUEST):  # the grant's and the extension's filing, which a review can return
        review = wf.get(StepId.REVIEW) or wf.get(StepId.EXTENSION_REVIEW) or {}
        if review.get("decision") == "return":
            notes.append((_("成果转化部门退回修改意见"), review.get("comments", "")))
        for consent in wf.get("consents") or []:
            if isinstance(consent, dict) and consent.get("agree") is False:
                notes.append((_("团队成员不同意"), consent.get("comment", "") or _("（未填写意见）")))
    if step in (StepId.REVIEW, StepId.EXTENSION_REVIEW):
        decision = wf.get(StepId.UNIT_DECISION) or wf.get(StepId.EXTENSION_DECISION) or {}
        if decision.get("result") == "return":
            notes.append((_("单位决策退回重新审查"), decision.get("reason", "")))
    if step in (StepId.AGREEMENT_TERMS, StepId.SUPPLEMENTARY_TERMS):
        for key, who in ((StepId.SIGN_REPRESENTATIVE, _("团队代表")), (StepId.SIGN_UNIT, _("单位签字人"))):
            if (wf.get(key) or {}).get("decision") == "request_changes":
                notes.append((_("%(who)s要求修改条款", who=who), wf[key].get("comment", "")))
    return notes


@bp.post("/tasks/<task_id>")
@login_required
def submit(task_id: str):
    task = _visible_task(task_id)
    data = parse_form(forms.load_schema(task.form), request.form)
    s = database.session()
    try:
        if request.form.get("action") == "save":
            engine.save_task_draft(s, me(), task_id, data)
            flash(_("草稿已保存"), "success")
            return redirect(url_for("tasks.show", task_id=task_id))
        app = engine.complete_task(s, me(), task_id, data)
    except ValidationFailed as exc:
        database.discard_changes()  # render on a clean session: the failed step left nothing behind
        saving = request.form.get("action") == "save"
        flash(_("草稿未保存，请按提示修改标红的内容") if saving else _("提交未成功，请按提示修改标红的内容"), "error")
        return _render_task(task, data, errors_by_field(exc), 422)
    except GrantError as exc:
        database.discard_changes()
        flash(message_of(exc), "error")
        return _render_task(task, data, {}, exc.status)
    flash(_("已提交：%(name)s", name=task.name), "success")
    if task.bpmn_id == StepId.DRAFT:
        for warning in recusal.warnings(s, app, data):
            flash(translate(warning), "warn")
    return redirect(url_for("applications.show", application_id=app.id))


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str):
    _visible_task(task_id)
    engine.claim_task(database.session(), me(), task_id)
    flash(_("已认领该任务"), "success")
    return redirect(safe_next(request.form.get("next")) if request.form.get("next") else
                    url_for("tasks.show", task_id=task_id))


@bp.post("/tasks/<task_id>/release")
@login_required
def release(task_id: str):
    _visible_task(task_id)
    engine.release_task(database.session(), me(), task_id)
    flash(_("已释放该任务，其他同事可以认领"), "success")
    return redirect(url_for("tasks.index"))


@bp.post("/tasks/<task_id>/reassign")
@login_required
def reassign(task_id: str):
    _visible_task(task_id)
    to = request.form.get("to", "")
    engine.reassign_task(database.session(), me(), task_id, to)
    flash(_("已转交给%(name)s", name=to), "success")
    return redirect(url_for("tasks.index"))


@bp.post("/tasks/<task_id>/upload")
@login_required
def upload(task_id: str):
    """An attachment for this task's form; only whoever may complete the task may attach."""
    task = _visible_task(task_id)
    if task.state != "ready":
        raise WrongState(_("该任务已被处理"))
    assignment.check_may_complete(me(), task)
    file = request.files.get("file")
    if file is None:
        raise ValidationFailed([{"field": "file", "message": _("请选择要上传的文件")}])
    doc = uploads.accept(database.session(), task.application, file.filename or "", file.read(), me())
    return jsonify({"id": doc.id, "filename": doc.filename, "size": doc.size, "sha256": doc.sha256,
                    "url": url_for("applications.document", document_id=doc.id)}), 201


@bp.get("/notifications")
@login_required
def notifications():
    found = listing.page_of(queries.unread_notifications(me()), queries.NOTIFICATION_SORTS, "-created",
                            queries.search_notifications)
    return render_template("tasks/notifications.html", notices=found.rows, page=found, q=listing.args()[2])


@bp.post("/notifications/<int:notice_id>/read")
@login_required
def mark_read(notice_id: int):
    notify.mark_read(database.session(), me(), notice_id)
    return redirect(url_for("tasks.notifications"))


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    notify.mark_read(database.session(), me())
    flash(_("全部通知已标记为已读"), "success")
    return redirect(url_for("tasks.notifications"))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
