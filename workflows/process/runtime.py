"""SpiffWorkflow glue: serializer, the script engine that runs our service tasks, task views."""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from workflows import clock
from workflows.catalogue import StepId

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

Operation = Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]]


class ServiceScriptEngine(PythonScriptEngine):  # type: ignore[misc]  # SpiffWorkflow is untyped (Any base)
    """Runs BPMN service tasks as calls into `workflows/` within the current transaction."""

    def __init__(self, operations: dict[str, Operation], context: Any):
        super().__init__(environment=TaskDataEnvironment())
        self.operations, self.context = operations, context

    def call_service(self, task: Task, operation_name: str = "", operation_params: dict[str, Any] | None = None,
                     **kwargs: Any) -> str:
        try:
            operation = self.operations[operation_name.rsplit("/", 1)[-1]]
        except KeyError:
            raise WorkflowException(f"unknown service operation {operation_name!r}") from None
        params = {name: p["value"] for name, p in (operation_params or {}).items()}
        return json.dumps(operation(self.context, task.data, params), ensure_ascii=False, default=str)


@dataclass
class ReadyTask:
    id: str
    bpmn_id: str
    name: str
    lane: str
    form: str
    data: dict[str, Any]


def new_workflow(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec], data: dict[str, Any]) -> BpmnWorkflow:
    wf = BpmnWorkflow(spec, subprocess_specs)
    start = wf.get_tasks(state=TaskState.READY)[0]
    start.data.update(data)
    return wf


def load(serialized: str, version: Any = None) -> BpmnWorkflow:
    """A workflow from its own state plus its process version's spec (a ProcessVersion row, or
    anything with `spec_sha256` and `spec`); a legacy state that still embeds its spec needs none."""
    dct = json.loads(state_json(serialized), cls=SERIALIZER.json_decoder_cls)
    if "spec" not in dct:
        if version is None:
            raise ValueError("a state without its spec needs the process version")
        if dct.get(SERIALIZER.VERSION_KEY) == SERIALIZER.VERSION:
            dct.pop(SERIALIZER.VERSION_KEY)
            return _from_state(dct, *spec_objects(version))
        dct.update(json.loads(stored_spec(version), cls=SERIALIZER.json_decoder_cls))  # fresh dicts: from_dict mutates them
    SERIALIZER.migrate(dct)
    return SERIALIZER.from_dict(dct)


_SPEC_OBJECTS: dict[str, tuple[Any, dict[str, Any]]] = {}


def spec_objects(version: Any) -> tuple[Any, dict[str, Any]]:
    """The restored spec objects of a version, built once per process (keyed by the spec's hash):
    restoring them was ~70% of every load. Shared by all instances of the version, as a parsed
    spec is shared by every new workflow; SpiffWorkflow keeps no run state on specs."""
    found = _SPEC_OBJECTS.get(version.spec_sha256)
    if found is None:
        dct = json.loads(stored_spec(version), cls=SERIALIZER.json_decoder_cls)
        found = (SERIALIZER.registry.restore(dct["spec"]),
                 _WORKFLOW_CONVERTER.mapping_from_dict(dct["subprocess_specs"]))
        _SPEC_OBJECTS[version.spec_sha256] = found
    return found


def _from_state(dct: dict[str, Any], spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> BpmnWorkflow:
    """BpmnWorkflowConverter.from_dict with the version's already restored specs."""
    from uuid import UUID
    conv = _WORKFLOW_CONVERTER
    workflow = conv.target_class(spec, subprocess_specs, deserializing=True)
    workflow.tasks = conv.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
    workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
    conv.set_default_attributes(workflow, dct)
    conv.subprocesses_from_dict(dct["subprocesses"], workflow)
    workflow.bpmn_events = conv.registry.restore(dct.pop("bpmn_events", []))
    return workflow


def dump(wf: BpmnWorkflow) -> str:
    """Only this instance's task tree and data: the spec is stored once per process version."""
    dct = _state_dict(wf)
    return pack(json.dumps(dct, cls=SERIALIZER._encoder_cls, ensure_ascii=False, separators=(",", ":")))


def pack(text: str) -> str:
    """The stored form of a state's JSON (the inverse of `state_json`)."""
    return COMPRESSED + base64.b64encode(zlib.compress(text.encode(), 1)).decode("ascii")


COMPRESSED = "z1:"  # zlib + base64: the task tree repeats its keys and ids, 35 KB of JSON become ~5 KB


def state_json(serialized: str) -> str:
    """The JSON text of a stored state (compressed or, from before, plain)."""
    if serialized.startswith(COMPRESSED):
        return zlib.decompress(base64.b64decode(serialized[len(COMPRESSED):])).decode()
    return serialized


def dump_spec(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> tuple[str, str]:
    """The serialized spec of a process version (with its called processes) and its SHA-256."""
    dct = _to_dict(BpmnWorkflow(spec, subprocess_specs))
    text = json.dumps({"spec": dct["spec"], "subprocess_specs": dct["subprocess_specs"]},
                      cls=SERIALIZER._encoder_cls, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


def split_legacy(serialized: str) -> tuple[str, str, str]:
    """A state that embeds its spec, as (state without spec, spec, spec SHA-256) — for migration."""
    dct = json.loads(state_json(serialized))
    spec = {"spec": dct.pop("spec"), "subprocess_specs": dct.pop("subprocess_specs")}
    text = json.dumps(spec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    state = json.dumps(dct, ensure_ascii=False, separators=(",", ":"))
    return state, text, hashlib.sha256(text.encode()).hexdigest()


_SPECS: dict[str, str] = {}


def stored_spec(version: Any) -> str:
    """The spec JSON of a version, read from its row once per process (keyed by its hash)."""
    text = _SPECS.get(version.spec_sha256)
    if text is None:
        text = _SPECS[version.spec_sha256] = version.spec
    return text


_WORKFLOW_CONVERTER = SERIALIZER.registry.convert_to_dict["BpmnWorkflow"].args[1].__self__


def _state_dict(wf: BpmnWorkflow) -> dict[str, Any]:
    """BpmnWorkflowConverter.to_dict without converting the spec (0.5 ms of each save)."""
    from SpiffWorkflow.bpmn.serializer.default.workflow import WorkflowConverter
    conv = _WORKFLOW_CONVERTER
    SERIALIZER.registry._encoder_mode = True
    try:
        dct: dict[str, Any] = WorkflowConverter.to_dict(conv, wf)
        dct["subprocesses"] = conv.mapping_to_dict(wf.subprocesses)
        dct["bpmn_events"] = conv.registry.convert(wf.bpmn_events)
    finally:
        SERIALIZER.registry._encoder_mode = False
    dct["typename"] = "BpmnWorkflow"
    dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
    return dct


def _to_dict(wf: BpmnWorkflow) -> dict[str, Any]:
    SERIALIZER.registry._encoder_mode = True
    try:
        dct: dict[str, Any] = SERIALIZER.to_dict(wf)
    finally:
        SERIALIZER.registry._encoder_mode = False
    dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
    return dct


SUMMARY_KEYS = (StepId.DRAFT, StepId.EXTENSION_REQUEST, StepId.AGREEMENT_TERMS, StepId.SUPPLEMENTARY_TERMS, StepId.IP_TRANSFER,
                StepId.CONVERSION_PLAN, StepId.CONVERSION_CONTRACT, StepId.DISTRIBUTION_DECISION,
                # the conversion period watch (bpmn/conversion_watch.bpmn)
                "period", "grant_kind", "watch", StepId.REMIND_FIRST, StepId.REMIND_SECOND, "lapse_check", StepId.CONVERSION_LAPSE,
                "watch_extension", "watch_consequence")


def latest_data(wf: BpmnWorkflow, waiting_first: bool = False) -> dict[str, Any]:
    """The latest data of the workflow (what was submitted at each step). A process that waits
    on one timer at a time (the conversion watch) is best read from its waiting timer (not from
    the message events waiting beside it, which hold the data of when their activity began)."""
    if wf.is_completed():
        return dict(wf.data)
    waiting = [t for t in wf.get_tasks(state=TaskState.WAITING)
               if _has_timer(getattr(t.task_spec, "event_definition", None))] if waiting_first else []
    if len(waiting) == 1 and not wf.get_tasks(state=TaskState.READY, manual=True):
        return dict(waiting[0].data)
    # A ready human task sees everything submitted so far; only without one fall back to the task
    # that changed last (its clock is SpiffWorkflow's time.time(), not the injectable clock).
    # Predicted tasks and joins still waiting for their branches hold no data yet: the
    # sub-process's end join waits empty after a handled objection (issue 11, finding 2).
    tasks = wf.get_tasks(state=TaskState.READY, manual=True) or [
        t for t in wf.get_tasks(state=TaskState.COMPLETED | TaskState.READY | TaskState.WAITING | TaskState.STARTED)
        if t.data]
    latest = max(tasks, key=lambda t: t.last_state_change) if tasks else None
    return dict(latest.data) if latest else {}


def summary(wf: BpmnWorkflow, waiting_first: bool = False) -> dict[str, Any]:
    """What the pages show of an instance, kept in a column so no list or page deserializes it.
    JSON-safe: dates and ids become strings."""
    data = latest_data(wf, waiting_first)
    return summary_of({**{k: data[k] for k in SUMMARY_KEYS if k in data}, "trail": trail(wf)})


def trail(wf: BpmnWorkflow) -> dict[str, list[str]]:
    """Elements of the top-level diagram that finished and that run now, for the page's diagram:
    a call activity (公示) runs while its process does, then counts as finished."""
    done: set[str] = set()
    now: set[str] = set()
    for task in wf.get_tasks(state=TaskState.COMPLETED | TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        if task.workflow is wf and task.task_spec.bpmn_id:
            (done if task.state == TaskState.COMPLETED else now).add(task.task_spec.bpmn_id)
    return {"completed": sorted(done - now), "current": sorted(now)}


def summary_of(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy for a summary column (dates and ids become strings)."""
    copy: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False, default=str))
    return copy


def advance(wf: BpmnWorkflow, engine: ServiceScriptEngine) -> None:
    """Run everything that can run now; timers first so a due one is not left waiting."""
    wf.script_engine = engine
    wf.refresh_timers()
    wf.do_engine_steps()


def ready_human_tasks(wf: BpmnWorkflow) -> list[ReadyTask]:
    result = []
    for task in wf.get_tasks(state=TaskState.READY, manual=True):
        spec = task.task_spec
        props = (spec.extensions or {}).get("properties", {})
        result.append(ReadyTask(str(task.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id,
                                spec.lane or "", props.get("formJsonSchemaFilename", ""), task.data))
    return result


def find_ready(wf: BpmnWorkflow, task_id: str) -> Task | None:
    from uuid import UUID
    task = wf.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        return None
    return task


def complete(wf: BpmnWorkflow, task: Task, payload: dict[str, Any], engine: ServiceScriptEngine) -> None:
    """Store the payload under the task's BPMN id (the contract in docs/PROCESS.md) and run on."""
    wf.script_engine = engine
    task.data[task.task_spec.bpmn_id] = payload
    task.run()
    advance(wf, engine)


def send_message(wf: BpmnWorkflow, name: str, payload: dict[str, Any], engine: ServiceScriptEngine) -> None:
    """Deliver a message (objection, withdrawal); raises WorkflowException if nothing waits for it."""
    wf.script_engine = engine
    wf.send_event(BpmnEvent(MessageEventDefinition(name), payload))
    advance(wf, engine)


def waits_for(wf: BpmnWorkflow, message: str) -> bool:
    """Whether a waiting event catches `message` (an instance of an older diagram may not)."""
    return any(event.name == message for event in wf.waiting_events())


def next_timer_due(wf: BpmnWorkflow) -> datetime | None:
    """The earliest due time of a waiting timer, for the indexed sweep column.

    SpiffWorkflow 3.2 folds the events behind an event-based gateway into the gateway (and
    `waiting_events()` then reports no value), so read the evaluated due time that every
    waiting timer keeps in its task's internal data.
    """
    due = []
    for task in wf.get_tasks(state=TaskState.WAITING):
        if _has_timer(getattr(task.task_spec, "event_definition", None)):
            value = task.internal_data.get("event_value")
            if isinstance(value, str):
                due.append(clock.as_utc(TimerEventDefinition.get_datetime(value)))
    return min(due) if due else None


def _has_timer(definition: object) -> bool:
    if definition is None:
        return False
    if isinstance(definition, TimerEventDefinition):
        return True
    return any(_has_timer(d) for d in getattr(definition, "event_definitions", []))
