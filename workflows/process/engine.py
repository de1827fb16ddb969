"""The actions people take on applications, each one transaction: authorize, validate, run,
persist state + task projection + audit. Functions flush, never commit: the caller commits
once, or rolls back and nothing has changed."""
from __future__ import annotations

import gc
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast
from uuid import uuid4

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import ColumnElement, Select, Table, bindparam, delete, exists, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased, joinedload, lazyload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from workflows import clock, conversion, db
from workflows.catalogue import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    PROCESS_FOR_KIND,
    STEP_STATUS,
    WAITING_STATUS,
    WATCH_STATUS,
    WITHDRAWABLE,
    KindCode,
    RoleCode,
    StatusCode,
    StepId,
)
from workflows.conversion import watch
from workflows.errors import Conflict, Forbidden, NotFound, ValidationFailed, WrongState, unwrap
from workflows.evidence import audit
from workflows.i18n import msg
from workflows.models import (
    Application,
    ApplicationMember,
    HumanTask,
    Incident,
    RoleGrant,
    TaskDraft,
    Unit,
    UnitCounter,
    User,
    WorkflowState,
)
from workflows.people import notify
from workflows.people.access import check_may_write, check_own_documents, require_admin, require_role

from . import forms, incidents, runtime, specs, steps
from .assignment import check_may_claim, check_may_complete, personal_assignee_username, role_for_lane
from .operations import OPERATIONS

# What a finished process's `outcome` variable makes of the application.
OUTCOME_STATUS = {StatusCode.COMPLETED: StatusCode.COMPLETED, StatusCode.REFUSED: StatusCode.REFUSED, StatusCode.WITHDRAWN: StatusCode.WITHDRAWN}


@dataclass
class ServiceContext:
    """What a service task may use: the transaction, the application and who acted."""

    session: Session
    application: Application
    actor: User | None


def _engine(session: Session, app: Application, actor: User | None) -> runtime.ServiceScriptEngine:
    return runtime.ServiceScriptEngine(OPERATIONS, ServiceContext(session, app, actor))


def start_application(session: Session, actor: User, unit: Unit, kind: str,
                      original_number: str | None = None, extra: dict[str, Any] | None = None) -> Application:
    """Open a new application (or an extension of a completed use right) with its first task."""
    check_may_write(actor)
    if kind not in PROCESS_FOR_KIND or kind == watch.KIND:
        raise ValidationFailed([{"field": "kind", "message": msg("申请类型只能是赋予所有权、赋予长期使用权、延长使用权或成果转化")}])
    original: Application | None
    if kind == KindCode.CONVERSION:
        original = conversion.check_origin(session, actor, unit, original_number)
    elif kind == KindCode.DISTRIBUTION:
        original = conversion.check_distribution_origin(session, actor, unit, original_number, extra)
    else:
        require_role(actor, RoleCode.RESEARCHER, unit.id)
        original = steps.check_extension_origin(session, actor, unit, original_number) if kind == KindCode.EXTENSION else None
    spec = specs.current(PROCESS_FOR_KIND[kind])
    version = specs.deployed_version(session, spec)
    late = kind in LATE_NUMBER_KINDS
    number = f"~{uuid4().hex[:24]}" if late else _next_number(session, unit)
    app = Application(unit=unit, number=number, kind=kind, status=StatusCode.DRAFT,
                      representative=original.representative if original and kind in (KindCode.CONVERSION, KindCode.DISTRIBUTION) else actor,
                      original_id=original.id if original else None, title=original.title if original else "")
    if original and kind in (KindCode.CONVERSION, KindCode.DISTRIBUTION):  # the grant's team follows its conversions
        app.members = [ApplicationMember(user_id=m.user_id) for m in original.members]
    session.add(app)
    session.flush()
    if original and kind == KindCode.CONVERSION:
        conversion.on_start(session, actor, original, app)
    seed = {"kind": kind, "unit_code": unit.code, "application_number": app.number,
            "representative": actor.username}
    if original is not None:
        seed["original_number"] = original.number
    seed.update(extra or {})
    wf = runtime.new_workflow(spec.spec, spec.subprocess_specs, seed)
    runtime.advance(wf, _engine(session, app, actor))
    if late:
        app.number = seed["application_number"] = _next_number(session, unit)
        _renumber(wf, number, app.number)
    set_committed_value(app, "state", None)  # a new instance has none: no statement to look for one
    app.state = WorkflowState(process_version=version, serialized="")
    _persist(session, app, wf)
    audit.record(session, actor=actor.username, action="start", unit_id=unit.id, application_id=app.id,
                 data=seed, detail={"kind": kind, "bpmn_sha256": spec.sha256})
    return app


# Processes that reach their first user task without running any service task: their number is
# taken after the engine has run, so the unit's counter row stays locked (until commit) only for
# the writes, not for the whole start (issue 10: starts of one unit queued on it).
LATE_NUMBER_KINDS = (KindCode.OWNERSHIP, KindCode.USE_RIGHT, KindCode.EXTENSION)


def _renumber(wf: BpmnWorkflow, provisional: str, number: str) -> None:
    """Put the real number where the start data placed the provisional one."""
    for task in wf.get_tasks():
        if task.data.get("application_number") == provisional:
            task.data["application_number"] = number
    if wf.data.get("application_number") == provisional:
        wf.data["application_number"] = number


def _next_number(session: Session, unit: Unit) -> str:
    year = clock.local_date(clock.now()).year
    counter = session.execute(select(UnitCounter).where(UnitCounter.unit_id == unit.id, UnitCounter.year == year)
                              .with_for_update()).scalar_one_or_none()
    if counter is None:
        counter = UnitCounter(unit_id=unit.id, year=year, last=0)
        session.add(counter)
    counter.last += 1
    return f"{unit.code}-{year}-{counter.last:04d}"


def _load(session: Session, app: Application) -> BpmnWorkflow:
    """Lock the instance row (PostgreSQL) and deserialize; the version column catches the rest.
    The loaded row is pinned on `app.state`: the session's identity map is weak, and if the row
    were dropped `_persist` would reload it at a concurrent winner's version and the version
    check would pass (a lost update)."""
    state = session.execute(_STATE_FOR_UPDATE, {"app_id": app.id}).scalar_one()
    set_committed_value(app, "state", state)
    return runtime.load(state.serialized, state.process_version)


# Statements of every write, built once: constructing a statement and its cache key costs more
# CPU than SQLite takes to run it (coercions and cache keys were ~15 % of a submit's profile);
# a built statement's cache key is memoized, so each use is a cache hit with new parameters.
# The state row with its process version in one statement (the version's spec text is deferred;
# its restored spec objects are cached per process by `runtime.spec_objects`).
_STATE_FOR_UPDATE = (select(WorkflowState).where(WorkflowState.application_id == bindparam("app_id"))
                     .options(joinedload(WorkflowState.process_version, innerjoin=True))
                     .with_for_update(of=WorkflowState).execution_options(populate_existing=True))
# The application's members in the same statement (a join, not the collection's second SELECT):
# every caller checks access with them, and a team is a handful of rows.
_TASK_LOAD = (lazyload(HumanTask.assignee),
              joinedload(HumanTask.application).options(lazyload(Application.representative),
                                                        joinedload(Application.members)))
_TASK_BY_ID = select(HumanTask).where(HumanTask.id == bindparam("task_id")).options(*_TASK_LOAD)
_OPEN_TASK_IDS = select(HumanTask.id).where(HumanTask.application_id == bindparam("app_id"), HumanTask.state == "ready")
_DELETE_DRAFTS = (delete(TaskDraft).where(TaskDraft.task_id == bindparam("task_id"))
                  .execution_options(synchronize_session=False))


def get_task(session: Session, task_id: str) -> HumanTask:
    """The task and its application (with its members, for access checks); the people on it load
    when read, mostly from the session (the actor): half the statements of every write. A task
    already in the session is not read again (as `session.get`)."""
    task: HumanTask | None
    if identity_key(HumanTask, task_id) in session.identity_map:
        task = session.get(HumanTask, task_id)
    else:
        task = session.execute(_TASK_BY_ID, {"task_id": task_id}).unique().scalar_one_or_none()
    if task is None:
        raise NotFound(msg("任务不存在"))
    return task


def complete_task(session: Session, actor: User, task_id: str, data: Any) -> Application:
    """Validate the form and the policy for this step, then run the process on."""
    check_may_write(actor)
    row = get_task(session, task_id)
    if row.state != "ready":
        raise Conflict(msg("该任务已被处理，请刷新页面"))
    if row.bpmn_id == StepId.CONVERSION_LAPSE:
        watch.check_actor(session, actor, row.application)
    check_may_complete(actor, row)
    forms.validate(row.form, data)
    app = row.application
    wf = _load(session, app)
    task = runtime.find_ready(wf, task_id)
    if task is None:
        raise Conflict(msg("该任务已被处理，请刷新页面"))
    payload = steps.before_complete(session, actor, app, row, dict(task.data), data)
    row.state, row.completed_at, row.completed_by_id = "completed", clock.now(), actor.id
    try:
        runtime.complete(wf, task, payload, _engine(session, app, actor))
    except WorkflowException as exc:
        raise unwrap(exc) from exc
    steps.after_complete(session, actor, app, row, payload)
    # Neither statement reads what this request changed (both go by the task id), so the unit of
    # work flushes once, in `_persist`, not also here: one flush's fixed cost less, and a row
    # changed by the step and by `_persist` (the draft's application) is updated once.
    with session.no_autoflush:
        session.execute(_DELETE_DRAFTS, {"task_id": task_id})
        notify.task_closed(session, task_id)
    _persist(session, app, wf)
    event = audit.record(session, actor=actor.username, action="complete_task", unit_id=app.unit_id,
                         application_id=app.id, step=row.bpmn_id, data=payload,
                         detail={"task": row.name, "decision": steps.decision_of(payload)})
    audit.record_submission(session, event, row, actor, payload)
    if app.kind in watch.GRANT_KINDS and app.status == StatusCode.COMPLETED:
        start_watch(session, app)
    if app.kind == KindCode.EXTENSION and app.status == StatusCode.COMPLETED:
        rearm_watch(session, app, actor)
    return app


def start_watch(session: Session, grant: Application) -> Application | None:
    """A completed grant's conversion period is watched (bpmn/conversion_watch.bpmn); None when
    it already is, or the grant fixes no period."""
    data = watch.seed(session, grant)
    if data is None or watch.watch_of(session, grant) is not None:
        return None
    spec = specs.current(PROCESS_FOR_KIND[watch.KIND])
    version = specs.deployed_version(session, spec)
    app = Application(unit=grant.unit, number=f"{grant.number}-W", kind=watch.KIND, status=WATCH_STATUS,
                      representative=grant.representative, original_id=grant.id, title=grant.title,
                      members=[ApplicationMember(user_id=m.user_id) for m in grant.members])
    session.add(app)
    session.flush()
    data["application_number"] = app.number
    wf = runtime.new_workflow(spec.spec, spec.subprocess_specs, data)
    runtime.advance(wf, _engine(session, app, None))
    set_committed_value(app, "state", None)
    app.state = WorkflowState(process_version=version, serialized="")
    _persist(session, app, wf)
    audit.record(session, actor="system", action="start", unit_id=app.unit_id, application_id=app.id,
                 data=data, detail={"kind": watch.KIND, "bpmn_sha256": spec.sha256})
    return app


def rearm_watch(session: Session, extension: Application, actor: User) -> bool:
    """A use-right extension in force moves its grant's conversion watch to the new last day: its
    message interrupts the reminders or the lapse task and the watch schedules again. A watch
    that ended (converted, or the consequence applied) stays ended; a grant without a watch gets
    one from the extended period (`watch.period_of`) when the sweep starts it; a watch of an older
    diagram, which cannot catch the message, runs on and the team and the office are told."""
    grant = session.get(Application, extension.original_id)
    target = watch.watch_of(session, grant) if grant is not None else None
    if grant is None or target is None or target.status in CLOSED_STATUSES:
        return False
    wf = _load(session, target)
    new_last_day = watch.extended_last_day(extension).isoformat()
    if not runtime.waits_for(wf, watch.EXTENDED_MESSAGE):
        watch.tell_not_rearmed(session, grant, extension, new_last_day)
        return False
    payload = {"number": extension.number, "application_id": extension.id, "by": actor.username,
               "new_last_day": new_last_day}
    try:
        runtime.send_message(wf, watch.EXTENDED_MESSAGE, payload, _engine(session, target, actor))
    except WorkflowException as exc:
        raise unwrap(exc) from exc
    _persist(session, target, wf)
    return True


def _unwatched_grants(session: Session, limit: int) -> list[Application]:
    watched = aliased(Application)
    return list(session.execute(select(Application).where(
        Application.kind.in_(watch.GRANT_KINDS), Application.status == StatusCode.COMPLETED,
        ~exists().where(watched.original_id == Application.id, watched.kind == watch.KIND))
        .order_by(Application.id).limit(limit)).scalars())


def start_missing_watches(session: Session, limit: int = 20) -> int:
    """Grants completed before the watch existed get theirs on a sweep; each start is its own
    savepoint, so a sweeper that lost the race to another one just skips it."""
    return sum(_start_missing_watch(session, grant) for grant in _unwatched_grants(session, limit))


def _start_missing_watch(session: Session, grant: Application) -> int:
    try:
        with session.begin_nested():
            return int(start_watch(session, grant) is not None)
    except IntegrityError:
        return 0


def claim_task(session: Session, actor: User, task_id: str) -> HumanTask:
    check_may_write(actor)
    row = get_task(session, task_id)
    # Two claims at once queue on the row (PostgreSQL; SQLite writers queue anyway): the second
    # sees the first one's claim instead of overwriting it.
    session.execute(select(HumanTask.id).where(HumanTask.id == task_id).with_for_update())
    session.refresh(row)
    if row.state != "ready":
        raise Conflict(msg("该任务已被处理"))
    check_may_claim(actor, row)
    if row.assignee_id not in (None, actor.id):
        raise Conflict(msg("该任务已由{name}认领", name=row.assignee.name if row.assignee else ""))
    row.assignee = actor
    audit.record(session, actor=actor.username, action="claim", unit_id=row.unit_id,
                 application_id=row.application_id, step=row.bpmn_id)
    return row


def release_task(session: Session, actor: User, task_id: str) -> HumanTask:
    row = get_task(session, task_id)
    if row.assignee_id != actor.id or row.state != "ready":
        raise Forbidden(msg("只能释放自己认领的待办任务"))
    if row.role in (RoleCode.REPRESENTATIVE, RoleCode.MEMBER):
        raise Forbidden(msg("个人任务不能释放"))
    row.assignee = None
    audit.record(session, actor=actor.username, action="release", unit_id=row.unit_id,
                 application_id=row.application_id, step=row.bpmn_id)
    return row


def reassign_task(session: Session, actor: User, task_id: str, to_username: str) -> HumanTask:
    """A tech-transfer officer hands a queue task to a colleague holding the task's role."""
    check_may_write(actor)
    row = get_task(session, task_id)
    if row.state != "ready":
        raise Conflict(msg("该任务已被处理"))
    require_role(actor, RoleCode.TTO, row.unit_id)
    if row.role in (RoleCode.REPRESENTATIVE, RoleCode.MEMBER):
        raise Forbidden(msg("个人任务不能转交"))
    target = session.execute(select(User).where(User.username == to_username)).scalar_one_or_none()
    if target is None:
        raise ValidationFailed([{"field": "to", "message": msg("用户“{username}”不存在", username=to_username)}])
    check_may_claim(target, row)
    row.assignee = target
    notify.task_ready(session, row, [target])
    audit.record(session, actor=actor.username, action="reassign", unit_id=row.unit_id,
                 application_id=row.application_id, step=row.bpmn_id, detail={"to": to_username})
    return row


def save_task_draft(session: Session, actor: User, task_id: str, data: dict[str, Any]) -> None:
    check_may_write(actor)
    row = get_task(session, task_id)
    check_may_complete(actor, row)
    data = {k: v for k, v in data.items() if k != "password"}
    forms.check_draft(row.form, data)
    check_own_documents(session, row.application, data)
    draft = session.get(TaskDraft, (task_id, actor.id))
    if draft is None:
        session.add(TaskDraft(task_id=task_id, user_id=actor.id, data=data))
    else:
        draft.data, draft.saved_at = data, clock.now()


def withdraw(session: Session, actor: User, application_id: int) -> Application:
    """The representative withdraws (撤回) until the unit has decided; the record stays."""
    check_may_write(actor)
    app = session.get(Application, application_id)
    if app is None:
        raise NotFound(msg("申请不存在"))
    if actor.id != app.representative_id:
        raise Forbidden(msg("只有团队指定代表可以撤回申请"))
    if app.status not in WITHDRAWABLE:
        raise WrongState(msg("单位已作出决策或申请已结束，不能再撤回"))
    wf = _load(session, app)
    try:
        runtime.send_message(wf, "withdraw", {"by": actor.username}, _engine(session, app, actor))
    except WorkflowException as exc:
        raise WrongState(msg("当前环节不能撤回")) from exc
    _persist(session, app, wf)
    audit.record(session, actor=actor.username, action="withdraw", unit_id=app.unit_id, application_id=app.id)
    return app


def deliver_message(session: Session, app: Application, name: str, payload: dict[str, Any],
                    actor: User | None = None) -> None:
    """Send a BPMN message into a running application (used for public objections)."""
    wf = _load(session, app)
    try:
        runtime.send_message(wf, name, payload, _engine(session, app, actor))
    except WorkflowException as exc:
        raise WrongState(msg("公示期已结束或当前不接受异议")) from exc
    _persist(session, app, wf)


def tick(session: Session, limit: int = 200) -> int:
    """Fire timers that are due. Reads only due rows (indexed); concurrent sweepers skip locked
    rows. Each instance fires in its own savepoint: one that fails is rolled back alone and
    becomes an incident (retried later with back-off), never stopping the others."""
    start_missing_watches(session)
    due: list[WorkflowState] = list(session.execute(_due(limit)).scalars())
    return sum(_fire_guarded(session, state) for state in due)


# Databases (by their session factory) in which every completed grant has its watch: a grant that
# completes later starts its watch in the same transaction, so the sweep stops asking.
_WATCHES_COMPLETE: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()


def backfill_watches(sessions: sessionmaker[Session], limit: int = 20) -> int:
    """Grants completed before the watch existed get theirs (at most `limit` a sweep): a read
    first, then one grant per transaction (the unit's audit head and, on SQLite, the write lock
    held for one start, ~20 ms, not for a batch), and no query at all once none lacks it."""
    if sessions in _WATCHES_COMPLETE:
        return 0
    with sessions() as probe:
        missing = [grant.id for grant in _unwatched_grants(probe, limit)]
    if not missing:
        _WATCHES_COMPLETE.add(sessions)
    return sum(db.in_transaction(sessions, partial(_start_missing_watch_of, grant_id=grant_id))
               for grant_id in missing)


def _start_missing_watch_of(session: Session, grant_id: int) -> int:
    grant = session.get(Application, grant_id)
    return _start_missing_watch(session, grant) if grant is not None else 0


SWEEP_BATCH = 100  # due instances read at once: one read a hundred fires, not a locking pick before each


def sweep_timers(sessions: sessionmaker[Session], budget_seconds: float = 1.0) -> int:
    """Fire due timers one instance per transaction, for at most `budget_seconds`; the rest wait
    for the next sweep. The due instances are read in batches (a plain read: no lock, and no write
    lock at all while nothing is due); each is then claimed by id and fired in its own transaction,
    which holds its unit's audit log head (and on SQLite the write lock) for that instance's
    writes only: other writers wait milliseconds (`_fire_one`)."""
    deadline = time.monotonic() + budget_seconds
    seen: list[int] = []  # an instance tried once is not tried again this sweep (its timer may not move)
    fired = 0
    while time.monotonic() < deadline:
        with sessions() as probe:
            batch = _due_batch(probe, seen)
        if not batch:
            break
        for app_id in batch:
            if time.monotonic() >= deadline:
                break
            seen.append(app_id)
            fired += _fire_one(sessions, app_id)
    return fired


def _due_conditions(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Due and not held back by an incident (read from `ix_workflow_states_timer_due_at`)."""
    return (WorkflowState.timer_due_at <= now, WorkflowState.application_id.not_in(incidents.held_back(now)))


def due_timers(now: datetime) -> Select[int]:
    """The instances the sweep would fire now: its "is anything due?" asks for one of them."""
    return select(WorkflowState.application_id).where(*_due_conditions(now))


def _due(limit: int, skip: list[int] | None = None) -> Select[WorkflowState]:
    query = select(WorkflowState).where(*_due_conditions(clock.now()))
    if skip:
        query = query.where(WorkflowState.application_id.not_in(skip))
    return query.order_by(WorkflowState.timer_due_at).limit(limit).with_for_update(skip_locked=True, of=WorkflowState)


def _due_batch(session: Session, seen: list[int]) -> list[int]:
    """The next most overdue instances not tried yet, read without locking anything."""
    query = due_timers(clock.now())
    if seen:
        query = query.where(WorkflowState.application_id.not_in(seen))
    return list(session.execute(query.order_by(WorkflowState.timer_due_at).limit(SWEEP_BATCH)).scalars())


# One due instance by id, built once: its state row (locked on PostgreSQL; one that another
# sweeper holds is skipped), its process version, its application with its representative, and
# whether an incident is open on it — one statement instead of a pick, two lazy loads, a re-read
# of the application and an incident query per fired instance. "Still due" is asked again here:
# another sweeper may have fired it since the batch was read.
_DUE_BY_ID = (select(WorkflowState, incidents.open_on(WorkflowState.application_id))
              .where(WorkflowState.application_id == bindparam("app_id"),
                     WorkflowState.timer_due_at <= bindparam("now"),
                     WorkflowState.application_id.not_in(incidents.held_back(bindparam("now"))))
              .options(joinedload(WorkflowState.process_version, innerjoin=True),
                       joinedload(WorkflowState.application, innerjoin=True)
                       .joinedload(Application.representative).lazyload(User.roles))
              .with_for_update(skip_locked=True, of=WorkflowState))


def _fire_one(sessions: sessionmaker[Session], app_id: int) -> int:
    """Fire one due instance in its own transaction; 1 if its timer fired.

    On SQLite the transaction first begins deferred: the instance is read, deserialized and run
    (SpiffWorkflow, about half of a fire's CPU) under a read snapshot, and the write lock is taken
    only at its first write, so other writers wait for the writes, not for SpiffWorkflow. If
    another writer holds the lock then, or committed since the snapshot, SQLite refuses the write
    at once (it cannot be serialized): that attempt is rolled back whole and the instance fired
    again holding the write lock from the start (`BEGIN IMMEDIATE`), as every write does. On
    PostgreSQL both attempts are the same: the state row is locked by the first statement.

    An instance that fails is rolled back whole (no savepoint: the transaction holds nothing
    else) and its incident recorded in a transaction of its own (`_record_incident`)."""
    try:
        try:
            return _fire_in_transaction(sessions, app_id, write=False)
        except OperationalError as exc:
            if not _lost_race(exc):
                raise
        return _fire_in_transaction(sessions, app_id, write=True)
    except _InstanceFailed as failed:
        return db.in_transaction(sessions, partial(_record_incident, app_id=app_id, exc=failed.__cause__ or failed))


class _InstanceFailed(Exception):
    """The instance's own step failed (the cause is chained): its incident, not the sweep's."""


def _fire_in_transaction(sessions: sessionmaker[Session], app_id: int, write: bool) -> int:
    with sessions() as session, _collected_after():
        try:
            if write:
                db.begin_write(session)
            row = session.execute(_DUE_BY_ID, {"app_id": app_id, "now": clock.now()}).one_or_none()
            if row is None:  # fired by another sweeper since the batch was read, or being fired by one now
                session.rollback()
                return 0
            state, open_incident = row
            try:
                fired = _fire(session, state)
                if open_incident:
                    incidents.resolve(session, app_id)
            except Exception as exc:  # any failure of this one instance is its incident
                if _lost_race(exc):  # not the instance's failure: the attempt is tried again
                    raise
                raise _InstanceFailed from exc
            session.commit()
            return fired
        except Exception:
            session.rollback()
            raise


def _record_incident(session: Session, app_id: int, exc: BaseException) -> int:
    """The failed instance's incident, if it is still due and not held back: another sweeper may
    have fired it, or recorded the same failure, since the failed attempt was rolled back."""
    if session.execute(_DUE_BY_ID, {"app_id": app_id, "now": clock.now()}).one_or_none() is not None:
        incidents.record_failure(session, app_id, exc)
    return 0


@contextmanager
def _collected_after() -> Iterator[None]:
    """No cyclic garbage collection inside a fire's transaction: each fire leaves a task tree of
    reference cycles, and a full collection (70 ms and more in a big process) that fell inside
    the transaction would hold the write lock / the audit head that long. The collection the
    allocations call for runs right after the commit instead."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _lost_race(exc: BaseException) -> bool:
    """SQLite refused a deferred transaction's first write (SQLITE_BUSY, or its extended
    SQLITE_BUSY_SNAPSHOT): another writer holds the lock or committed since the read snapshot."""
    code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
    return isinstance(exc, OperationalError) and isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def _fire_guarded(session: Session, state: WorkflowState) -> int:
    app_id = state.application_id
    try:
        with session.begin_nested():
            fired = _fire(session, state)
            incidents.resolve(session, app_id)
            return fired
    except Exception as exc:  # any failure of this one instance is its incident
        incidents.record_failure(session, app_id, exc)
        return 0


# A fired instance reads its application with unit, representative and team; the representative's
# roles (a selectin of every load) load only if a step asks for them.
_FIRE_LOAD = (joinedload(Application.representative).lazyload(User.roles),)


def _fire(session: Session, state: WorkflowState) -> int:
    """Advance one instance whose timer is due; 1 if a timer fired. Its application is the one
    loaded with the state (`_DUE_BY_ID`), or read now."""
    loaded = sa_inspect(state).attrs.application.loaded_value
    app = loaded if isinstance(loaded, Application) else session.execute(
        select(Application).where(Application.id == state.application_id).options(*_FIRE_LOAD)).scalar_one()
    set_committed_value(app, "state", state)  # `_persist` writes this row: no query for it
    wf = runtime.load(state.serialized, state.process_version)
    before = state.timer_due_at
    runtime.advance(wf, _engine(session, app, None))
    _persist(session, app, wf)
    if state.timer_due_at == before:
        return 0
    audit.record(session, actor="system", action="timer", unit_id=app.unit_id, application_id=app.id,
                 detail={"due_at": before.isoformat() if before else None})
    return 1


def retry_incident(session: Session, actor: User, incident_id: int) -> Incident:
    """An administrator retries a failed step now; a new failure is counted on the incident."""
    require_admin(actor, msg("只有系统管理员可以处理故障"))
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(msg("故障记录不存在"))
    if incident.resolved_at is not None:
        return incident
    state = session.execute(select(WorkflowState).where(WorkflowState.application_id == incident.application_id)
                            .with_for_update(of=WorkflowState)).scalar_one()
    try:
        with session.begin_nested():
            if state.timer_due_at is not None and state.timer_due_at <= clock.now():
                _fire(session, state)
            incidents.resolve(session, incident.application_id, incident.kind)
    except Exception as exc:  # the failure is shown on the incident
        incidents.record_failure(session, incident.application_id, exc, incident.kind)
    return incident


def _persist(session: Session, app: Application, wf: BpmnWorkflow) -> None:
    """Write state, the projection of ready human tasks and the derived status together. The
    instance's own columns are set first, so the first flush writes each row once (a new state
    row is inserted with its state, not inserted empty and updated); any flush here may run the
    version check."""
    ready = runtime.ready_human_tasks(wf)
    app.status = _status(wf, ready, app.kind)
    app.updated_at = clock.now()
    if app.status in CLOSED_STATUSES and app.closed_at is None:
        app.closed_at = app.updated_at
    app.state.serialized = runtime.dump(wf)
    app.summary = runtime.summary(wf, waiting_first=app.kind == watch.KIND)
    app.state.timer_due_at = runtime.next_timer_due(wf)
    try:
        open_ids = set(session.execute(_OPEN_TASK_IDS, {"app_id": app.id}).scalars())
        ready_ids = {t.id for t in ready}
        cancelled = sorted(open_ids - ready_ids)
        if cancelled:  # ORM-enabled: rows of this session's identity map see their new state too
            session.execute(update(HumanTask).where(HumanTask.id.in_(cancelled)).values(state="cancelled"))
            for task_id in cancelled:
                notify.task_closed(session, task_id)
        for task in ready:
            if task.id not in open_ids:
                _add_task_row(session, app, task)
        session.flush()
    except StaleDataError as exc:
        raise Conflict(msg("该申请刚被他人修改，请刷新后重试")) from exc


_INSERT_TASK = insert(cast(Table, HumanTask.__table__))
_PERSON_BY_USERNAME = select(User.id, User.name, User.email).where(User.username == bindparam("username"))
_STAFF_OF_ROLE = select(User.id, User.name, User.email).join(RoleGrant).where(
    RoleGrant.role == bindparam("role"), (RoleGrant.unit_id == bindparam("unit_id")) | RoleGrant.unit_id.is_(None),
    User.active.is_(True))


def _add_task_row(session: Session, app: Application, task: runtime.ReadyTask) -> None:
    """A new ready task's projection row and its notices, as Core inserts: nothing in this
    transaction reads them back as objects (the responses query plain columns), so the unit of
    work has nothing to track; the assignee and the staff are read as columns, not users."""
    role = role_for_lane(task.lane)
    assignee: notify.Recipient | None = None
    username = personal_assignee_username(role, app, task.data)
    if role == RoleCode.REPRESENTATIVE:
        assignee = app.representative  # already loaded: the username above is his
    elif username is not None:
        assignee = session.execute(_PERSON_BY_USERNAME, {"username": username}).one_or_none()
    session.connection().execute(_INSERT_TASK, {
        "id": task.id, "application_id": app.id, "unit_id": app.unit_id, "bpmn_id": task.bpmn_id, "name": task.name,
        "lane": task.lane, "role": role, "form": task.form, "assignee_id": assignee.id if assignee is not None else None,
        "state": "ready", "created_at": clock.now(), "context": steps.task_context(task)})
    if assignee is not None:
        notify.ready_notices(session, app, task.id, task.name, [assignee])
        return
    seen: set[int] = set(app.member_ids())
    staff = []
    for person in session.execute(_STAFF_OF_ROLE, {"role": role, "unit_id": app.unit_id}):
        if person.id not in seen:  # once each, in the order found (as `.unique()` kept them)
            seen.add(person.id)
            staff.append(person)
    notify.ready_notices(session, app, task.id, task.name, staff)


def _status(wf: BpmnWorkflow, ready: list[runtime.ReadyTask], kind: str = "") -> str:
    if wf.is_completed():
        return OUTCOME_STATUS.get(wf.data.get("outcome"), StatusCode.COMPLETED)
    statuses = {STEP_STATUS.get(t.bpmn_id) or WAITING_STATUS for t in ready}
    if not statuses:  # nothing for a person to do: a notice waiting out its term, or a watched period
        return WATCH_STATUS if kind == watch.KIND else WAITING_STATUS
    return max(statuses, key=OPEN_STATUSES.index)
