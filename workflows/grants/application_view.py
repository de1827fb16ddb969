"""What the application page shows beyond the summary: the submitted revisions, the documents
grouped by purpose, where it waits and for whom, and each publicity round with its objections.
Read-only queries over indexed columns; no workflow is deserialized."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session, aliased, joinedload, lazyload

from workflows.catalogue import KindCode, RoleCode, StepId
from workflows.evidence import audit
from workflows.models import (
    Application,
    Document,
    FormSubmission,
    HumanTask,
    IncomeDeduction,
    IncomeReceipt,
    Objection,
    PublicityNotice,
    RoleGrant,
    User,
)
from workflows.people import access
from workflows.process import forms, queries

# Documents the system makes, by kind: (group order, group title).
GENERATED = {"agreement_final": (10, "已签署协议"), "agreement_signed": (11, "签署中的协议"),
             "agreement_draft": (12, "协议（待签署）"), "decision_record": (20, "单位决策记录"),
             "publicity_notice": (30, "公示文件"), "distribution_notice": (40, "收益分配公告")}
# Uploads named in a submitted form, grouped by that form's purpose (else the form's title).
FORM_GROUPS: dict[str, tuple[int, str]] = {StepId.DRAFT: (50, "申请附件"), StepId.EXTENSION_REQUEST: (50, "申请附件"), StepId.CONVERSION_PLAN: (60, "转化方案附件"),
               StepId.CONVERSION_CONTRACT: (61, "转化合同"), StepId.IP_TRANSFER: (70, "权属变更证明")}
INCOME_GROUP = (80, "收入与扣除凭证")
OBJECTION_GROUP = (90, "异议附件")
ROLE_NAMES: dict[str, str] = {RoleCode.TTO: "成果转化部门经办人", RoleCode.DECIDER: "单位决策机构", RoleCode.SIGNER: "单位授权签字人"}


@dataclass
class DocumentGroup:
    order: int
    title: str
    items: list[dict[str, Any]] = field(default_factory=list)


def submissions(session: Session, app: Application, step: str | None = None) -> list[FormSubmission]:
    """Every submitted revision (of one step, if given), oldest first, with its submitter's name
    (not their roles: the page never reads them)."""
    audit.append_pending(session)  # this transaction's own submissions too (written with its events)
    if not step:
        return list(session.execute(_SUBMISSIONS, {"application_id": app.id}).scalars())
    query = select(FormSubmission).where(FormSubmission.application_id == app.id).options(
        joinedload(FormSubmission.user).lazyload(User.roles))
    return list(session.execute(query.where(FormSubmission.step == step).order_by(FormSubmission.id)).scalars())


# The page's statements are built once, the application's id bound: building and keying a
# statement is ~0.3–1 ms of CPU each on every page (pyinstrument).
_SUBMISSIONS = (select(FormSubmission).where(FormSubmission.application_id == bindparam("application_id"))
                .options(joinedload(FormSubmission.user).lazyload(User.roles)).order_by(FormSubmission.id))
_DOCUMENTS = select(Document).where(Document.application_id == bindparam("application_id")).order_by(Document.id)


def pick_revision(revisions: list[FormSubmission], wanted: Any) -> FormSubmission | None:
    """The revision asked for (`?revision=N`), else the latest; None before the first submission."""
    for row in revisions:
        if str(row.revision) == str(wanted):
            return row
    return revisions[-1] if revisions else None


def _references(schema: dict[str, Any], value: Any, title: str = "") -> list[tuple[Any, str]]:
    """(document id, label) for every `…document_id` in a payload, labelled by the attachment's own
    label or else the form field's title."""
    found: list[tuple[Any, str]] = []
    if isinstance(value, dict):
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        for key, child in value.items():
            node = props.get(key, {})
            if key.endswith("document_id") and not isinstance(child, (dict, list)):
                if child not in (None, ""):  # an attachment row has its own label (empty: the filename)
                    found.append((child, str(value.get("label") or "") if "label" in props
                                  else str(node.get("title") or title or key)))
            else:
                found += _references(node, child, node.get("title") or title)
    elif isinstance(value, list):
        for item in value:
            found += _references(schema.get("items", {}) if isinstance(schema, dict) else {}, item, title)
    return found


def document_groups(session: Session, user: User, app: Application,
                    submitted: list[FormSubmission] | None = None,
                    rounds: list[dict[str, Any]] | None = None) -> list[DocumentGroup]:
    """The application's documents by purpose. An upload appears only once a submitted form (or an
    income line, or an objection) names it; until then only its uploader sees it, in the form.
    The page passes the submissions and publicity rounds it already read (`submitted`, `rounds`)."""
    docs = {d.id: d for d in session.execute(_DOCUMENTS, {"application_id": app.id}).scalars()}
    groups: dict[str, DocumentGroup] = {}

    def add(key: str, order: int, title: str, doc: Document, label: str, note: str | int = "") -> None:
        group = groups.setdefault(key, DocumentGroup(order, title))
        if all(item["doc"].id != doc.id for item in group.items):
            group.items.append({"doc": doc, "label": label or doc.filename, "note": note})

    for doc in docs.values():
        if doc.kind in GENERATED:
            order, title = GENERATED[doc.kind]
            add(doc.kind, order, title, doc, doc.filename)
    for sub in submissions(session, app) if submitted is None else submitted:
        schema = forms.load_schema(sub.form) if sub.form else {}
        for doc_id, label in _references(schema, sub.payload):
            if doc_id in docs:
                order, title = FORM_GROUPS.get(sub.step, (75, schema.get("title", sub.step)))
                add(f"form:{sub.step}", order, title, docs[doc_id], label, sub.revision)
    for doc_id in _income_evidence(session, app):
        if doc_id in docs:
            add("income", *INCOME_GROUP, docs[doc_id], docs[doc_id].filename)
    if access.may_see_objectors(user, app):  # an objector's file may carry their name
        attached = ([o.attachment_id for o in objections(session, app)] if rounds is None else
                    [o["attachment_id"] for r in rounds for o in r["objections"]])
        for doc_id in [i for i in attached if i is not None]:
            if doc_id in docs:
                add("objection", *OBJECTION_GROUP, docs[doc_id], docs[doc_id].filename)
    return sorted(groups.values(), key=lambda g: g.order)


def _income_evidence(session: Session, app: Application) -> list[int]:
    """Evidence of a conversion's ledger lines (only a conversion has a ledger: income.py)."""
    ids: list[int] = []
    if app.kind != KindCode.CONVERSION:
        return ids
    for model in (IncomeReceipt, IncomeDeduction):
        ids += [i for i in session.execute(select(model.evidence_document_id).where(
            model.conversion_id == app.id, model.evidence_document_id.is_not(None))).scalars() if i is not None]
    return ids


def _waiting_statement() -> Any:
    grant, holder = aliased(RoleGrant), aliased(User)
    return (select(HumanTask.id, HumanTask.bpmn_id, HumanTask.name, HumanTask.created_at, HumanTask.role,
                   HumanTask.unit_id, HumanTask.assignee_id, User.name, holder.id, holder.name, holder.username)
            .outerjoin(User, User.id == HumanTask.assignee_id)
            .outerjoin(grant, and_(HumanTask.assignee_id.is_(None), grant.role == HumanTask.role,
                                   or_(grant.unit_id == HumanTask.unit_id, grant.unit_id.is_(None))))
            .outerjoin(holder, and_(holder.id == grant.user_id, holder.active.is_(True)))
            .where(HumanTask.application_id == bindparam("application_id"), HumanTask.state == "ready")
            .order_by(HumanTask.created_at, HumanTask.id))


# Built once (a bound parameter for the application): constructing it took ~1 ms of every page.
_WAITING = _waiting_statement()


def waiting(session: Session, app: Application, user: User | None = None) -> list[dict[str, Any]]:
    """Each ready step with since when it waits, and for whom: the person, or the role and the
    people who may claim it (the role's active holders in that unit or in all units, by
    username, minus the team); `mine`: whether it is among the user's tasks (`queries.is_mine`,
    on the columns read here). One statement of plain columns, however many steps wait: each
    unclaimed step is joined to its claimants (`ix_role_grants_role_unit`), one row each."""
    rows = session.execute(_WAITING, {"application_id": app.id}).all()
    team = app.member_ids() if any(r[8] is not None for r in rows) else set()
    steps: dict[int, dict[str, Any]] = {}
    claimants: dict[int, list[tuple[str, int, str]]] = {}
    for r in rows:
        if r.id not in steps:
            steps[r.id] = {"task_id": r.id, "bpmn_id": r.bpmn_id, "name": r.name, "since": r.created_at,
                           "assigned": r.assignee_id is not None, "role": ROLE_NAMES.get(r.role or "", r.role or ""),
                           "people": [r[7]] if r.assignee_id is not None else [],
                           "mine": user is not None and queries.is_mine(user, r.role, r.unit_id, r.assignee_id)}
            claimants[r.id] = []
        if r[8] is not None and r[8] not in team:
            claimants[r.id].append((r.username, r[8], r[9]))
    for task_id, found in claimants.items():
        seen: set[int] = set()
        for _username, user_id, name in sorted(found):
            if user_id not in seen:
                seen.add(user_id)
                steps[task_id]["people"].append(name)
    return list(steps.values())


def objections(session: Session, app: Application) -> list[Objection]:
    return list(session.execute(select(Objection).where(Objection.application_id == app.id)
                                .order_by(Objection.id)).scalars())


def publicity_rounds(session: Session, user: User, app: Application) -> list[dict[str, Any]]:
    """Each notice with its objections; who objected only for those `may_see_objectors` allows.
    The notices and their objections are one statement (an outer join: a notice without
    objections is one row with no objection)."""
    pairs = session.execute(_ROUNDS, {"application_id": app.id}).all()
    if not pairs:
        return []
    identity = access.may_see_objectors(user, app)
    rounds: dict[int, dict[str, Any]] = {}
    for notice, o in pairs:
        found = rounds.setdefault(notice.id, {"notice": notice, "objections": []})
        if o is not None:
            found["objections"].append({
                "receipt": o.receipt, "filed_at": o.filed_at, "status": o.status, "reason": o.reason,
                "reasoning": o.reasoning, "handled_at": o.handled_at,
                "name": o.name if identity else None, "contact": o.contact if identity else None,
                "attachment_id": o.attachment_id})
    return list(rounds.values())


_ROUNDS = (select(PublicityNotice, Objection).outerjoin(Objection, Objection.notice_id == PublicityNotice.id)
           .where(PublicityNotice.application_id == bindparam("application_id"))
           .options(lazyload(PublicityNotice.application)).order_by(PublicityNotice.id, Objection.id))
