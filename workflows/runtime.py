"""SpiffWorkflow glue: serializer, the script engine that runs our service tasks, task views."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import clock

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

Operation = Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]]


class ServiceScriptEngine(PythonScriptEngine):
    """Runs BPMN service tasks as calls into `workflows/` within the current transaction."""

    def __init__(self, operations: dict[str, Operation], context: Any):
        super().__init__(environment=TaskDataEnvironment())
        self.operations, self.context = operations, context

    def call_service(self, task, operation_name=None, operation_params=None, **kwargs):
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


def new_workflow(spec, subprocess_specs, data: dict[str, Any]) -> BpmnWorkflow:
    wf = BpmnWorkflow(spec, subprocess_specs)
    start = wf.get_tasks(state=TaskState.READY)[0]
    start.data.update(data)
    return wf


def load(serialized: str) -> BpmnWorkflow:
    return SERIALIZER.deserialize_json(serialized)


def dump(wf: BpmnWorkflow) -> str:
    return SERIALIZER.serialize_json(wf)


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


def find_ready(wf: BpmnWorkflow, task_id: str):
    from uuid import UUID
    task = wf.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        return None
    return task


def complete(wf: BpmnWorkflow, task, payload: dict[str, Any], engine: ServiceScriptEngine) -> None:
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


def _has_timer(definition) -> bool:
    if definition is None:
        return False
    if isinstance(definition, TimerEventDefinition):
        return True
    return any(_has_timer(d) for d in getattr(definition, "event_definitions", []))
