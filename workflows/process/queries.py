"""Read-side helpers for task lists, application pages and history; they return Select objects
or plain data and never change anything."""
from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, reduce
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    ScalarResult,
    Select,
    and_,
    bindparam,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, defer, joinedload, lazyload
from sqlalchemy.orm.interfaces import ORMOption

from workflows.catalogue import KINDS_ALL, RoleCode, StepId, step_form
from workflows.evidence import audit
from workflows.models import (
    Application,
    ApplicationMember,
    AuditEvent,
    Document,
    HumanTask,
    Notification,
    Objection,
    PublicityNotice,
    RoleGrant,
    Signature,
    TaskDraft,
    User,
)
from workflows.people import access

from . import forms, runtime, textsearch
from .textsearch import contains

Row = TypeVar("Row")  # what a query selects; the search filters keep it

PER_PAGE = 50
MAX_PER_PAGE = 200


@dataclass
class Page:
    """One page of a list, with what a pager needs: the total and where it is."""

    rows: list[Any]
    total: int
    page: int
    per_page: int
    sort: str

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(session: Session, query: Select[Any], page: int = 1, per_page: int = PER_PAGE, sort: str = "",
             key: InstrumentedAttribute[Any] | None = None) -> Page:
    """Indexed offset pagination: one COUNT over the filtered rows and one query for the page.
    With `key` (the primary key) the page's keys are cut first and only their rows are joined:
    PostgreSQL otherwise joins every row of a sort group before its top-N (the board's 5,000
    open notices sharing one end date, bench/README)."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    page = min(max(page, 1), max(1, -(-total // per_page)))
    cut = query.limit(per_page).offset((page - 1) * per_page)
    if key is not None:
        cut = query.where(key.in_(cut.with_only_columns(key)))
    rows: list[Any] = list(session.execute(cut).scalars())
    return Page(rows, total, page, per_page, sort)


def sorted_by(query: Select[Row], sorts: dict[str, tuple[InstrumentedAttribute[Any], ...]], key: str | None,
              default: str) -> tuple[Select[Row], str]:
    """Order by one of the allowed sorts (`name` ascending, `-name` descending); unknown → default."""
    key = key if key and key.lstrip("-") in sorts else default
    columns = sorts[key.lstrip("-")]
    order = [c.desc() for c in columns] if key.startswith("-") else [c.asc() for c in columns]
    return query.order_by(None).order_by(*order), key


def _like(text: str) -> str:
    return "%" + textsearch.pattern(text) + "%"


def application_matches(text: str, app: Any = Application) -> ColumnElement[bool]:
    """Number, title, a team member (name or username) or the current step's name of `app` (the
    entity or an alias of it). Number, title and people are read through their trigram indexes
    (`textsearch`); the steps are the listed applications' own (a handful each, by
    `ix_tasks_application`)."""
    like = _like(text)
    people = select(User.id).where(or_(contains(User.name, User.id, text), contains(User.username, User.id, text)))
    members = select(ApplicationMember.application_id).where(ApplicationMember.user_id.in_(people))
    # Correlated: only the listed applications' own ready steps are read (ix_tasks_application),
    # not every ready task of the city (2 s for an auditor's search at 100k, bench/README).
    task = aliased(HumanTask)  # a task list's own human_tasks row is not the step searched here
    # A LIMIT 1 scalar rather than EXISTS: PostgreSQL hashes an EXISTS under an OR into one read
    # of every ready task in the city (a sequential scan of 71,000 rows, 270 ms at 100k,
    # bench/README "Substring search by index"); a scalar subquery with LIMIT stays correlated.
    step = (select(literal(1)).where(task.application_id == app.id, task.state == "ready",
                                     or_(task.name.ilike(like), task.bpmn_id.ilike(like)))
            .limit(1).scalar_subquery().is_not(None))
    return or_(contains(app.number, app.id, text), contains(app.title, app.id, text),
               app.representative_id.in_(people), app.id.in_(members), step)


TASK_SORTS = {"created": (HumanTask.created_at, HumanTask.id), "number": (Application.number, HumanTask.id),
              "title": (Application.title, HumanTask.id), "step": (HumanTask.bpmn_id, HumanTask.created_at,
                                                                    HumanTask.id)}
APPLICATION_SORTS = {"updated": (Application.updated_at, Application.id),
                     "created": (Application.created_at, Application.id), "number": (Application.number,),
                     "title": (Application.title, Application.id), "status": (Application.status, Application.id)}
NOTICE_SORTS = {"ends": (PublicityNotice.ends_at, PublicityNotice.id),
                "starts": (PublicityNotice.starts_at, PublicityNotice.id),
                "number": (Application.number, PublicityNotice.id), "title": (Application.title, PublicityNotice.id)}
NOTIFICATION_SORTS = {"created": (Notification.id,)}


def search_tasks(query: Select[Row], text: str | None) -> Select[Row]:
    if not text or not text.strip():
        return query
    # The task's own application, one primary-key probe per listed task (a correlated LIMIT 1):
    # as a filter of the list's join, PostgreSQL charged the people and team sub-plans to every
    # probe of `applications` and read all 100,000 instead (the count 218 ms, the page 130 ms for
    # an officer's 1,085 tasks at 100k, bench/README).
    own = aliased(Application)
    matches = (select(literal(1)).where(own.id == HumanTask.application_id, application_matches(text, own))
               .limit(1).scalar_subquery().is_not(None))
    return query.where(or_(matches, HumanTask.name.ilike(_like(text))))


def search_applications(query: Select[Row], text: str | None) -> Select[Row]:
    return query.where(application_matches(text)) if text and text.strip() else query


def search_notices(query: Select[Row], text: str | None) -> Select[Row]:
    if not text or not text.strip():
        return query
    # The query joins Application (board_query); members' names are posted on the notice. The
    # team test is the listed application's own (a correlated LIMIT 1 on its members' key):
    # `id IN (members)` let PostgreSQL guess half of all applications and hash-join a sequential
    # scan of them to the 5,000 open notices (850 → 200 ms at 100k, bench/README).
    people = select(User.id).where(contains(User.name, User.id, text))
    team = (select(literal(1)).where(ApplicationMember.application_id == Application.id,
                                     ApplicationMember.user_id.in_(people)).limit(1).scalar_subquery().is_not(None))
    return query.where(or_(contains(Application.number, Application.id, text),
                           contains(Application.title, Application.id, text), team))


def search_notifications(query: Select[Row], text: str | None) -> Select[Row]:
    return query.where(Notification.message.ilike(_like(text))) if text and text.strip() else query


# A list row shows the application's number, title, kind and unit, and the assignee's name: not
# the team (a selectin query per page), the representative and their roles, or the JSON read models.
LIST_ROW_OPTIONS = (joinedload(HumanTask.application).options(
    lazyload(Application.members), lazyload(Application.representative), defer(Application.summary),
    defer(Application.ip_numbers)), joinedload(HumanTask.assignee).options(lazyload(User.roles)))


def _task_sources(user: User) -> list[ColumnElement[bool]]:
    """Where the user's ready tasks come from: assigned to them, and each role's unclaimed queue.
    Each is an equality prefix of an index (`ix_tasks_assignee`, `ix_tasks_queue`) ending in
    `created_at`, and no two overlap (a role held city-wide makes its per-unit queues redundant),
    so counts add up and each source reads its oldest rows straight from its index."""
    return _sources_of(user.id, _queues(user))


def _sources_of(assignee: Any, queues: Sequence[tuple[str, Any]]) -> list[ColumnElement[bool]]:
    """The sources for an assignee and queues given as values or bound parameters."""
    ready = HumanTask.state == "ready"
    sources = [and_(ready, HumanTask.assignee_id == assignee)]
    for role, unit in queues:
        queue = and_(ready, HumanTask.role == role, HumanTask.assignee_id.is_(None))
        sources.append(queue if unit is None else and_(queue, HumanTask.unit_id == unit))
    return sources


def _queues(user: User) -> list[tuple[str, int | None]]:
    """The (role, unit) queues whose unclaimed tasks are the user's (unit None: every unit), a
    role held city-wide standing for its per-unit queues; `_task_sources` and `is_mine` share it."""
    queues = {(g.role, g.unit_id) for g in user.roles if g.role in (RoleCode.TTO, RoleCode.DECIDER, RoleCode.SIGNER)}
    return [(role, unit_id) for role, unit_id in sorted(queues, key=lambda q: (q[0], q[1] or 0))
            if unit_id is None or (role, None) not in queues]


def is_mine(user: User, role: str | None, unit_id: int | None, assignee_id: int | None) -> bool:
    """Whether a ready task with these columns is among `tasks_for(user)` (the same sources,
    tested in Python on columns the page has already read, instead of one more statement)."""
    if assignee_id is not None:
        return assignee_id == user.id
    return any(role == q_role and (q_unit is None or q_unit == unit_id) for q_role, q_unit in _queues(user))


def tasks_for(user: User, kind: str | None = None, step: str | None = None,
              since: datetime | None = None) -> Select[HumanTask]:
    """Ready tasks assigned to the user, plus their roles' unclaimed queues; oldest first.

    The branches are a UNION ALL of ids, each an equality prefix of an index (`ix_tasks_assignee`,
    `ix_tasks_queue`): an OR of them makes SQLite scan every ready task in the city and
    PostgreSQL scan the table (bench/README, "Query plans"). Any sort and search work on it;
    `task_page` is the fast path of the default order."""
    branches = [select(HumanTask.id).where(c) for c in _task_sources(user)]
    ids = branches[0] if len(branches) == 1 else union_all(*branches)
    # No `ready` test out here: SQLite would then read `state=?` from an index and scan every ready task.
    query = select(HumanTask).join(Application).where(HumanTask.id.in_(ids)).options(*LIST_ROW_OPTIONS)
    if kind:
        query = query.where(Application.kind == kind)
    if step:
        query = query.where(HumanTask.bpmn_id == step)
    if since:
        query = query.where(HumanTask.created_at >= since)
    return query.order_by(HumanTask.created_at, HumanTask.id)


def _count_sources(session: Session, sources: list[ColumnElement[bool]]) -> int:
    """One statement adding a COUNT per source, each read from its index alone."""
    counts = [select(func.count()).select_from(HumanTask).where(c).scalar_subquery() for c in sources]
    return int(session.execute(select(reduce(operator.add, counts))).scalar_one())


def task_count(session: Session, user: User) -> int:
    return _count_sources(session, _task_sources(user))


# What a task list row shows (the REST API's task shape), read as columns: no task, application
# or user objects to build for a page (`task_page(..., plain=True)`).
TASK_ROW_COLUMNS = (HumanTask.id, HumanTask.application_id, Application.number, HumanTask.bpmn_id, HumanTask.name,
                    HumanTask.lane, HumanTask.role, User.username.label("assignee"), HumanTask.state,
                    HumanTask.created_at)


# One task as the REST list reads it (`TASK_ROW_COLUMNS`), by id: built once, the id bound.
_TASK_ROW = (select(*TASK_ROW_COLUMNS).join(Application, Application.id == HumanTask.application_id)
             .outerjoin(User, User.id == HumanTask.assignee_id).where(HumanTask.id == bindparam("task_id")))


def task_row(session: Session, task_id: str) -> Any:
    """The task's `TASK_ROW_COLUMNS` mapping (None if there is none): a start's answer names its
    first task without building the task, its application and its team as objects."""
    return session.execute(_TASK_ROW, {"task_id": task_id}).mappings().one_or_none()


def nav_counts(session: Session, user: User, most_unread: int = 100) -> tuple[int, int]:
    """The top bar's two numbers in one statement: the user's ready tasks (`task_count`: a COUNT
    per `_task_sources` source) and their unread notifications, counted up to `most_unread` (the
    bar shows no more). The statement is built once per shape of queues, the ids are bound."""
    queues = _queues(user)
    params: dict[str, Any] = {"user_id": user.id, "most_unread": most_unread}
    params.update({f"role_{i}": role for i, (role, _unit) in enumerate(queues)})
    params.update({f"unit_{i}": unit for i, (_role, unit) in enumerate(queues) if unit is not None})
    row = session.execute(_nav_statement(tuple(unit is None for _role, unit in queues)), params).one()
    return int(row[0]), int(row[1])


@functools.lru_cache(maxsize=32)
def _nav_statement(city_wide: tuple[bool, ...]) -> Select[Any]:
    """`nav_counts`' statement for queues of this shape (True: a role held in every unit); the
    same sources as `_task_sources`, with bound parameters instead of values."""
    ready = HumanTask.state == "ready"
    sources = [and_(ready, HumanTask.assignee_id == bindparam("user_id"))]
    for i, every_unit in enumerate(city_wide):
        queue = and_(ready, HumanTask.role == bindparam(f"role_{i}"), HumanTask.assignee_id.is_(None))
        sources.append(queue if every_unit else and_(queue, HumanTask.unit_id == bindparam(f"unit_{i}")))
    counts = [select(func.count()).select_from(HumanTask).where(c).scalar_subquery() for c in sources]
    unread = (select(Notification.id).where(Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None))
              .limit(bindparam("most_unread")).subquery())
    return select(reduce(operator.add, counts), select(func.count()).select_from(unread).scalar_subquery())


def task_page(session: Session, user: User, page: int = 1, per_page: int = PER_PAGE, sort: str = "created",
              step: str | None = None, since: datetime | None = None, plain: bool = False) -> Page:
    """A page of `tasks_for` in creation order (`created` or `-created`), reading at most
    page × per_page rows from each source's index instead of sorting all of the user's tasks:
    the busiest officer's first page reads ~50 index entries per source (bench/README).
    `plain`: the rows are `TASK_ROW_COLUMNS` mappings instead of tasks (the REST list)."""
    queues = _queues(user)
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    count, rows = _task_page_statements(tuple((role, unit is None) for role, unit in queues), sort.startswith("-"),
                                        bool(step), since is not None, plain)
    params: dict[str, Any] = {"assignee": user.id, "step": step, "since": since}
    params.update({f"unit_{i}": unit for i, (_role, unit) in enumerate(queues) if unit is not None})
    total = int(session.execute(count, params).scalar_one())
    page = min(max(page, 1), max(1, -(-total // per_page)))
    params.update(head=page * per_page, per_page=per_page, skip=(page - 1) * per_page)
    if plain:
        return Page([row._mapping for row in session.execute(rows, params)], total, page, per_page, sort)
    return Page(list(session.execute(rows, params).scalars()), total, page, per_page, sort)


@lru_cache(maxsize=256)
def _task_page_statements(shape: tuple[tuple[str, bool], ...], descending: bool, step: bool, since: bool,
                          plain: bool) -> tuple[Select[Any], Select[Any]]:
    """`task_page`'s count and page statements for one shape of sources (the user's queues as
    (role, city-wide)), built once with every value bound: building them was ~20 % of a list
    request's CPU, and a built statement's cache key is memoized."""
    queues: list[tuple[str, Any]] = [(role, None if citywide else bindparam(f"unit_{i}"))
                                     for i, (role, citywide) in enumerate(shape)]
    extra = [c for c in (HumanTask.bpmn_id == bindparam("step") if step else None,
                         HumanTask.created_at >= bindparam("since") if since else None) if c is not None]
    sources = [and_(c, *extra) for c in _sources_of(bindparam("assignee"), queues)]
    counts = [select(func.count()).select_from(HumanTask).where(c).scalar_subquery() for c in sources]
    count = select(reduce(operator.add, counts))
    columns = (HumanTask.created_at, HumanTask.id)
    order = [c.desc() for c in columns] if descending else [c.asc() for c in columns]
    firsts = [select(*columns).where(c).order_by(*order).limit(bindparam("head", type_=Integer)).subquery()
              for c in sources]
    heads = [select(f.c.id) for f in firsts]
    ids = heads[0] if len(heads) == 1 else union_all(*heads)
    rows: Any
    if plain:
        rows = (select(*TASK_ROW_COLUMNS).join(Application, Application.id == HumanTask.application_id)
                .outerjoin(User, User.id == HumanTask.assignee_id))
    else:
        rows = select(HumanTask).options(*LIST_ROW_OPTIONS)
    rows = (rows.where(HumanTask.id.in_(ids)).order_by(*order)
            .limit(bindparam("per_page", type_=Integer)).offset(bindparam("skip", type_=Integer)))
    return count, cast(Select[Any], rows)


def application_page(session: Session, user: User, page: int = 1, per_page: int = PER_PAGE,
                     sort: str = "-updated", where: tuple[ColumnElement[bool], ...] = ()) -> Page:
    """A page of the applications `user` may read, in `updated` or `created` order: each source
    (a unit they are staff of, those they represent, their teams') reads at most page × per_page
    ids from its own index and only those are sorted. The OR of the sources made SQLite sort all
    4,500 applications of a unit to show 50 (60–100 ms at 100k, bench/README)."""
    key = sort.lstrip("-")
    columns = APPLICATION_SORTS[key]
    order = [c.desc() for c in columns] if sort.startswith("-") else [c.asc() for c in columns]
    sources = access.application_sources(user)
    if sources is None:
        return paginate(session, select(Application).where(*where).order_by(*order), page, per_page, sort)
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    total = _count_visible(session, sources, where)
    page = min(max(page, 1), max(1, -(-total // per_page)))
    firsts = [select(Application.id).where(c, *where).order_by(*order).limit(page * per_page).subquery()
              for c in sources.all]
    heads = [select(f.c.id) for f in firsts]
    ids = heads[0] if len(heads) == 1 else union(*heads)
    query = (select(Application).where(Application.id.in_(ids)).order_by(*order)
             .limit(per_page).offset((page - 1) * per_page))
    return Page(list(session.execute(query).scalars()), total, page, per_page, sort)


def _count_visible(session: Session, sources: access.Sources, where: tuple[ColumnElement[bool], ...]) -> int:
    """The staff units' applications (counted from their index) plus the personal ones of other
    units (the union of each personal source's ids): disjoint, each part read from its own index.
    The OR of all sources made PostgreSQL read every application (170 ms at 100k, bench/README)."""
    elsewhere = not_(or_(*sources.units)) if sources.units else true()
    personal = union(*(select(Application.id).where(c, elsewhere, *where) for c in sources.personal)).subquery()
    counts = [select(func.count()).select_from(personal).scalar_subquery()]
    if sources.units:
        counts.append(select(func.count()).select_from(Application).where(or_(*sources.units), *where)
                      .scalar_subquery())
    return int(session.execute(select(reduce(operator.add, counts))).scalar_one())


def task_view(session: Session, user: User, task: HumanTask) -> dict[str, Any]:
    """A task with its form schema and the data it starts from (a saved draft, or the current data)."""
    schema = forms.load_schema(task.form)
    saved = session.get(TaskDraft, (task.id, user.id))
    return {"task": task, "schema": schema, "data": saved.data if saved else current_form_data(session, task)}


def current_form_data(session: Session, task: HumanTask) -> dict[str, Any]:
    """What the form shows first: the last payload of this step (a revision starts from it)."""
    if task.state != "ready":
        return {}
    wf = runtime.load(task.application.state.serialized, task.application.state.process_version)
    spiff_task = runtime.find_ready(wf, task.id)
    if spiff_task is None:
        return {}
    value = spiff_task.data.get(task.bpmn_id)
    return dict(value) if isinstance(value, dict) else {}


def task_data(session: Session, task: HumanTask) -> dict[str, Any]:
    """The whole workflow data a ready task sees (draft, review comments, the document to sign)."""
    wf = runtime.load(task.application.state.serialized, task.application.state.process_version)
    spiff_task = runtime.find_ready(wf, task.id)
    return dict(spiff_task.data) if spiff_task is not None else {}


def application_data(app: Application) -> dict[str, Any]:
    """The latest data of the application's workflow, deserialized: only to act on it (documents,
    archive); pages read `Application.summary` instead."""
    return runtime.latest_data(runtime.load(app.state.serialized, app.state.process_version))


def working_title(session: Session, user: User, app: Application) -> str:
    """The title as filed, or as this person saved it in a draft not yet submitted (finding 7)."""
    if app.title:
        return app.title
    saved: ScalarResult[Any] = session.execute(select(TaskDraft.data).join(HumanTask, TaskDraft.task_id == HumanTask.id).where(
        HumanTask.application_id == app.id, HumanTask.state == "ready", TaskDraft.user_id == user.id)).scalars()
    for data in saved:
        title = (data.get("achievement") or {}).get("title") if isinstance(data, dict) else None
        if title:
            return str(title)
    return ""


TERMS_FORMS: dict[str, tuple[str, str]] = {k.code: (k.terms_step, step_form(k.terms_step, k.code)) for k in KINDS_ALL if k.terms_step}


def agreement_record(app: Application, data: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The agreed terms and the IP-transfer filing (office, number, date), each with its form
    schema for display; only those already recorded."""
    if app.kind not in TERMS_FORMS:  # conversions and distributions show their own ledger
        return {}
    terms_key, terms_form = TERMS_FORMS[app.kind]
    found = {}
    for key, form in (("terms", (terms_key, terms_form)), (StepId.IP_TRANSFER, (StepId.IP_TRANSFER, step_form(StepId.IP_TRANSFER, "")))):
        value = data.get(form[0])
        if isinstance(value, dict) and value:
            found[key] = (forms.load_schema(form[1]), value)
    return found


# Built once: every write answers with it (a built statement's cache key is memoized).
_READY_STEPS = (select(HumanTask.application_id, HumanTask.id, HumanTask.bpmn_id, HumanTask.name,
                       HumanTask.lane, HumanTask.role, User.username)
                .outerjoin(User, User.id == HumanTask.assignee_id)
                .where(HumanTask.application_id.in_(bindparam("app_ids", expanding=True)), HumanTask.state == "ready")
                .order_by(HumanTask.created_at))


def _steps(session: Session, app_ids: list[int]) -> list[tuple[int, dict[str, Any]]]:
    """Ready steps as plain rows (columns only: no task, application or user objects to build)."""
    rows = session.execute(_READY_STEPS, {"app_ids": app_ids}).all()
    return [(r[0], {"task_id": r[1], "bpmn_id": r[2], "name": r[3], "lane": r[4], "role": r[5], "assignee": r[6]})
            for r in rows]


def current_steps(session: Session, app: Application) -> list[dict[str, Any]]:
    """One statement of plain columns: every write answers with these, loading no task objects."""
    return [step for _, step in _steps(session, [app.id])]


def history(session: Session, app: Application) -> list[AuditEvent]:
    audit.append_pending(session)  # this transaction's own events too (audit appends at commit)
    return list(session.execute(select(AuditEvent).where(AuditEvent.application_id == app.id)
                                .order_by(AuditEvent.id)).scalars())


_HISTORY_WITH_NAMES = (select(AuditEvent, User.name).outerjoin(User, User.username == AuditEvent.actor)
                       .where(AuditEvent.application_id == bindparam("application_id")).order_by(AuditEvent.id))


def history_with_names(session: Session, app: Application) -> tuple[list[AuditEvent], dict[str, str]]:
    """`history`, and the names of its actors read in the same statement (users by their unique
    username, an outer join: "system", "public" and removed users have none)."""
    audit.append_pending(session)
    rows = session.execute(_HISTORY_WITH_NAMES, {"application_id": app.id}).all()
    return [event for event, _ in rows], {event.actor: name for event, name in rows if name is not None}


def documents(session: Session, app: Application) -> list[Document]:
    return list(session.execute(select(Document).where(Document.application_id == app.id)
                                .order_by(Document.id)).scalars())


def signatures(session: Session, app: Application, options: Sequence[ORMOption] = ()) -> list[Signature]:
    return list(session.execute(select(Signature).where(Signature.application_id == app.id)
                                .options(*options).order_by(Signature.id)).scalars())


def objections(session: Session, app: Application) -> list[Objection]:
    return list(session.execute(select(Objection).where(Objection.application_id == app.id)
                                .order_by(Objection.id)).scalars())


def notices(session: Session, app: Application) -> list[PublicityNotice]:
    return list(session.execute(select(PublicityNotice).where(PublicityNotice.application_id == app.id)
                                .order_by(PublicityNotice.id)).scalars())


def step_trail(session: Session, app: Application) -> dict[str, list[str]]:
    """BPMN ids of finished and current steps, for highlighting the diagram: the read model's
    trail (every element, call activities included), else the human tasks of older rows."""
    kept = (app.summary or {}).get("trail")
    if isinstance(kept, dict):
        return {"completed": list(kept.get("completed", [])), "current": list(kept.get("current", []))}
    rows = session.execute(select(HumanTask.bpmn_id, HumanTask.state).where(
        HumanTask.application_id == app.id)).all()
    return {"completed": sorted({b for b, s in rows if s == "completed"}),
            "current": sorted({b for b, s in rows if s == "ready"})}


def unread_notifications(user: User) -> Select[Notification]:
    return (select(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
            .order_by(Notification.id.desc()))


def current_steps_of(session: Session, app_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """`current_steps` for a whole page of applications in one query."""
    result: dict[int, list[dict[str, Any]]] = {i: [] for i in app_ids}
    if app_ids:
        for app_id, step in _steps(session, app_ids):
            result[app_id].append(step)
    return result


def colleagues_with_role(session: Session, role: str, unit_id: int) -> list[User]:
    return list(session.execute(select(User).join(RoleGrant).where(
        RoleGrant.role == role, RoleGrant.unit_id == unit_id, User.active.is_(True))
        .order_by(User.username)).scalars().unique())
