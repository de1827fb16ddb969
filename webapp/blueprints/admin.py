"""Administration (管理): units, users with roles per unit, and the process versions in use."""
from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import func, select

from workflows import settings as engine_settings
from workflows.catalogue import ROLE_LABELS, RoleCode
from workflows.errors import ValidationFailed
from workflows.models import CLOSED_STATUSES, ROLES, Application, OutboxMail, ProcessVersion, Unit, User, WorkflowState
from workflows.people import accounts, notify, sso
from workflows.process import engine, incidents

from .. import database, demo_mail
from ..errors import errors_by_field
from ..extensions import gettext as _
from ..signed_in import me

bp = Blueprint("admin", __name__, url_prefix="/admin")
ROLE_NAMES = ROLE_LABELS


@bp.before_request
@login_required
def only_admins():
    """Every page here needs an administrator whose role spans all units."""
    if None not in me().units_for(RoleCode.ADMIN):
        abort(403)


@bp.get("")
def index():
    return redirect(url_for("admin.units"))


@bp.route("/units", methods=["GET", "POST"])
def units():
    s = database.session()
    errors, status = {}, 200
    if request.method == "POST":
        try:
            unit = accounts.create_unit(s, me(), request.form.get("code", ""), request.form.get("name", ""),
                                        request.form.get("contact", ""))
            flash(_("已创建单位%(name)s", name=unit.name), "success")
            return redirect(url_for("admin.units"))
        except ValidationFailed as exc:
            database.discard_changes()
            errors, status = errors_by_field(exc), 422
    rows = s.execute(select(Unit).order_by(Unit.code)).scalars().all()
    return render_template("admin/units.html", units=rows, errors=errors, form=request.form), status


@bp.route("/units/<int:unit_id>", methods=["GET", "POST"])
def unit_settings(unit_id: int):
    """A unit's own settings (the choices the policy leaves to the unit)."""
    s = database.session()
    unit = s.get(Unit, unit_id) or abort(404)
    errors, status = {}, 200
    if request.method == "POST":
        try:
            changed = accounts.update_unit_settings(s, me(), unit, request.form.to_dict())
            flash(_("已保存%(name)s的设置", name=unit.name) if changed else _("设置没有变化"), "success")
            return redirect(url_for("admin.unit_settings", unit_id=unit.id))
        except ValidationFailed as exc:
            database.discard_changes()
            errors, status = errors_by_field(exc), 422
    return render_template("admin/unit_settings.html", unit=unit, errors=errors,
                           form=request.form if request.method == "POST" else None), status


@bp.post("/units/<int:unit_id>/password-sign-in")
def password_sign_in(unit_id: int):
    """Once a unit signs its staff in centrally (统一身份认证) it may turn passwords off."""
    unit = database.session().get(Unit, unit_id) or abort(404)
    sso.set_password_sign_in(database.session(), me(), unit, request.form.get("allowed") == "1")
    flash(_("%(name)s已恢复密码登录", name=unit.name) if unit.password_sign_in
          else _("%(name)s已关闭密码登录，仅可通过统一身份认证登录", name=unit.name), "success")
    return redirect(url_for("admin.units"))


@bp.route("/users", methods=["GET", "POST"])
def users():
    s = database.session()
    errors, status = {}, 200
    if request.method == "POST":
        grants = [(role, unit or None) for role, unit in zip(request.form.getlist("role"),
                                                             request.form.getlist("unit"), strict=False) if role]
        try:
            accounts.create_user(s, request.form.get("username", "").strip(), request.form.get("name", "").strip(),
                                 request.form.get("password", ""), request.form.get("email", "").strip(), grants,
                                 actor=me())
            flash(_("已创建用户"), "success")
            return redirect(url_for("admin.users"))
        except ValidationFailed as exc:
            database.discard_changes()
            errors, status = errors_by_field(exc), 422
    return render_template("admin/users.html", users=s.execute(select(User).order_by(User.username)).scalars().all(),
                           units=s.execute(select(Unit).order_by(Unit.code)).scalars().all(), roles=ROLES,
                           role_names=ROLE_NAMES, errors=errors, form=request.form), status


@bp.post("/users/<int:user_id>/active")
def set_active(user_id: int):
    user = database.session().get(User, user_id) or abort(404)
    accounts.set_active(database.session(), me(), user, request.form.get("active") == "1")
    flash(_("已启用%(name)s", name=user.name) if user.active else _("已停用%(name)s", name=user.name), "success")
    return redirect(url_for("admin.users"))


@bp.get("/processes")
def processes():
    """Each deployed BPMN version and how many open applications still run on it."""
    s = database.session()
    running = dict(s.execute(select(WorkflowState.process_version_id, func.count()).join(Application).where(
        Application.status.notin_(CLOSED_STATUSES)).group_by(WorkflowState.process_version_id)).all())
    total = dict(s.execute(select(WorkflowState.process_version_id, func.count())
                           .group_by(WorkflowState.process_version_id)).all())
    versions = s.execute(select(ProcessVersion).order_by(ProcessVersion.process_id,
                                                         ProcessVersion.deployed_at.desc())).scalars().all()
    return render_template("admin/processes.html", versions=versions, running=running, total=total)


@bp.get("/outbox")
def outbox():
    """Mail waiting, sent or given up, with attempts and the last error; in the demo also the
    messages the loopback catcher received."""
    rows = database.session().execute(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(200)).scalars().all()
    cfg = engine_settings.get()
    return render_template("admin/outbox.html", mails=rows, max_attempts=notify.MAX_ATTEMPTS,
                           caught=demo_mail.caught(current_app.instance_path),
                           smtp=f"{cfg.smtp_host}:{cfg.smtp_port}", demo=current_app.config.get("DEMO"),
                           folder=demo_mail.folder(current_app.instance_path))


@bp.get("/incidents")
def incidents_page():
    """Timer steps that failed (as Camunda's incidents): the error, and a button to retry."""
    rows = incidents.listing(database.session(), include_resolved=request.args.get("all") == "1")
    return render_template("admin/incidents.html", incidents=rows)


@bp.post("/incidents/<int:incident_id>/retry")
def retry_incident(incident_id: int):
    incident = engine.retry_incident(database.session(), me(), incident_id)
    if incident.resolved_at is not None:
        flash(_("重试成功，该申请已继续处理"), "success")
    else:
        flash(_("重试仍然失败：%(error)s", error=incident.error), "error")
    return redirect(url_for("admin.incidents_page"))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
