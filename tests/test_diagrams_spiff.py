"""The BPMN diagrams in bpmn/, executed by SpiffWorkflow alone (no database, no project code).

Every path of docs/PROCESS.md is walked end to end. After every step the workflow is
serialized and deserialized again, as the engine does between two requests, so a path
only passes if it also survives a save and reload at each of its states.

Scripts and conditions run under RestrictedPython with its safe builtins, as spiff-arena runs
them: no `globals()`, `__import__`, `open`, `eval`, `exec` or underscore attributes, so the
diagrams are portable to SpiffWorkflow's own platform.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_globals
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import guarded_iter_unpack_sequence, safer_getattr
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.defaults import ServiceTask, UserTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

ROOT = Path(__file__).resolve().parents[1]
BPMN_DIR = ROOT / "bpmn"
FORMS_DIR = ROOT / "forms"
PROCESSES = ("ownership_grant", "use_right_grant", "publicity", "use_right_extension")
GRANTS = ("ownership_grant", "use_right_grant")
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
START = datetime(2025, 3, 3, 1, 0, 0, tzinfo=UTC)

REP, MEMBER, TTO, DECIDER, SIGNER = "团队代表", "成果完成人", "成果转化服务机构", "单位决策机构", "单位授权签字人"

# The contract (docs/PROCESS.md): user task -> (lane, form)
GRANT_TASKS = {
    "draft": (REP, "{kind}_draft"),
    "consent": (MEMBER, "consent"),
    "review": (TTO, "review"),
    "unit_decision": (DECIDER, "unit_decision"),
    "agreement_terms": (TTO, "{kind}_terms"),
    "sign_representative": (REP, "signature"),
    "sign_unit": (SIGNER, "signature"),
    "ip_transfer": (TTO, "ip_transfer"),
    "complete_archive": (TTO, "completion"),
}
USER_TASKS = {
    "ownership_grant": {k: (lane, form.format(kind="ownership")) for k, (lane, form) in GRANT_TASKS.items()},
    "use_right_grant": {k: (lane, form.format(kind="use_right")) for k, (lane, form) in GRANT_TASKS.items()},
    "publicity": {"handle_objection": (TTO, "objection_handling")},
    "use_right_extension": {
        "extension_request": (REP, "extension_request"),
        "extension_review": (TTO, "extension_review"),
        "extension_decision": (DECIDER, "unit_decision"),
        "supplementary_terms": (TTO, "supplementary_terms"),
        "sign_representative": (REP, "signature"),
        "sign_unit": (SIGNER, "signature"),
        "complete_archive": (TTO, "completion"),
    },
}
# service task -> operation (its last path segment; see the operator ids) and result variable
GRANT_SERVICES = {
    "record_decision": "decision_record",
    "render_agreement": "agreement_draft",
    "finalize_agreement": "agreement_final",
    "update_registry": "registry_update",
}
SERVICE_TASKS = {
    "ownership_grant": GRANT_SERVICES,
    "use_right_grant": GRANT_SERVICES,
    "publicity": {"open_publicity": "publicity_window", "close_publicity": "publicity_closed"},
    "use_right_extension": {"record_decision": "decision_record", "render_agreement": "agreement_draft",
                            "finalize_agreement": "agreement_final", "update_registry": "registry_update"},
}
LANES = {task: lane for tasks in USER_TASKS.values() for task, (lane, _form) in tasks.items()}


# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------
RESTRICTED_GLOBALS = {
    **safe_globals,
    "__builtins__": {**safe_globals["__builtins__"], "all": all, "any": any},
    "_getitem_": default_guarded_getitem, "_getiter_": default_guarded_getiter,
    "_getattr_": safer_getattr, "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_write_": lambda obj: obj,
}


class RestrictedEnvironment(TaskDataEnvironment):
    """Compiles every script and expression with RestrictedPython and runs it with its safe
    builtins only; a refused construct fails the path (SyntaxError / NameError)."""

    def __init__(self) -> None:
        super().__init__(environment_globals=RESTRICTED_GLOBALS)

    def evaluate(self, expression, context, external_context=None):
        result = compile_restricted_eval(expression)
        if result.errors:
            raise SyntaxError("; ".join(result.errors))
        names = {**self.globals, **(external_context or {}), **context}
        return eval(result.code, names)

    def execute(self, script, context, external_context=None):
        result = compile_restricted_exec(script)
        if result.errors:
            raise SyntaxError("; ".join(result.errors))
        return super().execute(result.code, context, external_context)


class FakeServices(RestrictedEnvironment):
    """Script environment whose service calls answer like workflows/ does (JSON strings)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def call_service(self, context, operation_name, operation_params):
        operation = operation_name.rsplit("/", 1)[-1]
        self.calls.append(operation)
        if operation == "open_publicity":
            now = datetime.now(UTC)
            ends_at = now + timedelta(days=15)
            return json.dumps({"starts_at": now.isoformat(), "ends_at": ends_at.isoformat(),
                               "timer_at": (ends_at - timedelta(microseconds=1)).isoformat()})
        return json.dumps({"operation": operation, "ok": True})


def load_parser() -> SpiffBpmnParser:
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_files([str(BPMN_DIR / f"{name}.bpmn") for name in PROCESSES])
    return parser


@pytest.fixture(scope="module")
def parser() -> SpiffBpmnParser:
    return load_parser()


class Run:
    """One process instance, saved and reloaded after every step."""

    def __init__(self, parser: SpiffBpmnParser, process_id: str, **data: Any) -> None:
        self.services = FakeServices()
        self.engine = PythonScriptEngine(environment=self.services)
        self.wf = BpmnWorkflow(parser.get_spec(process_id), parser.get_subprocess_specs(process_id),
                               script_engine=self.engine)
        start = self.wf.get_tasks(state=TaskState.READY)[0]
        start.data.update(kind=data.pop("kind", "ownership"), unit_code="U001", application_number="A-2025-0001",
                          representative="rep", **data)
        self.advance()

    # -- persistence --------------------------------------------------------------------------
    def reload(self) -> None:
        state = SERIALIZER.serialize_json(self.wf)
        self.wf = SERIALIZER.deserialize_json(state)
        self.wf.script_engine = self.engine

    def advance(self) -> None:
        self.wf.refresh_timers()
        self.wf.do_engine_steps()
        self.reload()

    # -- inspection ---------------------------------------------------------------------------
    def ready(self, bpmn_id: str | None = None) -> list:
        tasks = self.wf.get_tasks(state=TaskState.READY, manual=True)
        return [t for t in tasks if bpmn_id is None or t.task_spec.bpmn_id == bpmn_id]

    def ready_ids(self) -> list[str]:
        return sorted(t.task_spec.bpmn_id for t in self.ready())

    def data(self) -> dict:
        return self.wf.data if self.wf.is_completed() else self.wf.last_task.data

    def ended_at(self) -> list[str]:
        """BPMN ids of the end events the top-level process reached."""
        return [t.task_spec.bpmn_id for t in self.wf.get_tasks(state=TaskState.COMPLETED)
                if t.workflow is self.wf and isinstance(t.task_spec, EndEvent)]

    def timer_due(self) -> datetime:
        """End of the publicity term the pending timer waits for (it fires 1 µs before).

        SpiffWorkflow 3.2 moves the events after an event-based gateway into the gateway
        (a MultipleEventDefinition): wf.waiting_events() then reports the gateway with
        value None, and the timer's due time is in the waiting gateway's internal data.
        """
        pending = self.wf.waiting_events()
        assert [(e.event_type, e.value) for e in pending] == [("MultipleEventDefinition", None)]
        (gateway,) = [t for t in self.wf.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "wait"]
        assert gateway.internal_data["event_value"] == gateway.data["publicity_window"]["timer_at"]
        return datetime.fromisoformat(gateway.data["publicity_window"]["ends_at"])

    # -- actions ------------------------------------------------------------------------------
    def complete(self, bpmn_id: str, payload: dict, index: int = 0) -> None:
        tasks = self.ready(bpmn_id)
        assert tasks, f"{bpmn_id} is not ready; ready: {self.ready_ids()}"
        task = tasks[index]
        assert task.task_spec.lane == LANES[bpmn_id]
        task.data[task.task_spec.bpmn_id] = payload
        task.run()
        self.advance()

    def send(self, message: str, payload: dict) -> None:
        self.wf.send_event(BpmnEvent(MessageEventDefinition(message), payload))
        self.advance()

    def finish(self, outcome: str, end: str) -> None:
        assert self.wf.is_completed(), self.ready_ids()
        assert self.wf.data["outcome"] == outcome
        assert self.ended_at() == [end]
        assert self.ready() == []


def handling(decision: str, reasoning: str, term_over: bool = False, outcome: str | None = None) -> dict:
    """The objection_handling payload as the engine stores it: the form plus whether the term
    was already over and, if so, the notice's outcome after this decision (workflows/publicity/objections.py)."""
    return {"decision": decision, "reasoning": reasoning, "term_over": term_over, "outcome": outcome}


MEMBERS = [{"username": "m1"}, {"username": "m2"}, {"username": "m3"}]
APPROVE = {"decision": "approve"}
SIGN = {"decision": "sign"}
CHANGES = {"decision": "request_changes"}


def to_review(run: Run) -> None:
    run.complete("draft", {"members": MEMBERS})
    assert run.ready_ids() == ["consent"] * len(MEMBERS)
    for _ in MEMBERS:
        run.complete("consent", {"agree": True})
    assert run.ready_ids() == ["review"]


def to_decision(run: Run) -> None:
    to_review(run)
    run.complete("review", APPROVE)
    assert run.ready_ids() == ["unit_decision"]


def to_publicity(run: Run) -> None:
    to_decision(run)
    run.complete("unit_decision", {"result": "approve"})
    assert "record_decision" in run.services.calls
    assert run.ready_ids() == []
    assert run.services.calls[-1] == "open_publicity"


def pass_publicity(run: Run, frozen) -> None:
    frozen.move_to(run.timer_due() + timedelta(seconds=1))
    run.advance()
    assert run.ready_ids() == ["agreement_terms"]
    assert run.data()["publicity_outcome"] == "passed"


def sign_and_archive(run: Run, terms_task: str = "agreement_terms") -> None:
    run.complete(terms_task, {"terms": "v1"})
    assert run.services.calls[-1] == "render_agreement"
    run.complete("sign_representative", SIGN)
    run.complete("sign_unit", SIGN)
    assert "finalize_agreement" in run.services.calls[-2:]


# ---------------------------------------------------------------------------------------------
# The diagrams against the contract
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("process_id", PROCESSES)
def test_diagram_matches_contract(parser, process_id):
    spec = parser.get_spec(process_id)
    assert spec.name == process_id
    user_tasks = {s.bpmn_id: s for s in spec.task_specs.values() if isinstance(s, UserTask)}
    assert {k: (s.lane, s.extensions["properties"]["formJsonSchemaFilename"]) for k, s in user_tasks.items()} == {
        k: (lane, f"{form}.schema.json") for k, (lane, form) in USER_TASKS[process_id].items()}
    for _lane, form in USER_TASKS[process_id].values():
        assert (FORMS_DIR / f"{form}.schema.json").is_file()
    services = {s.bpmn_id: s for s in spec.task_specs.values() if isinstance(s, ServiceTask)}
    assert {k: (s.operation_name.rsplit("/", 1)[-1], s.result_variable) for k, s in services.items()} == {
        k: (k, var) for k, var in SERVICE_TASKS[process_id].items()}
    # every end of a top-level process is preceded by a script that sets `outcome`
    if process_id != "publicity":
        ends = [s for s in spec.task_specs.values() if isinstance(s, EndEvent)]
        assert sorted(s.bpmn_id for s in ends) == ["end_completed", "end_refused", "end_withdrawn"]
        for end in ends:
            (before,) = end.inputs
            assert before.script.startswith("outcome = ")


def test_publicity_waits_for_the_term_or_an_objection(parser):
    # SpiffWorkflow moves the catch events behind an event-based gateway into the gateway
    timer, message = parser.get_spec("publicity").task_specs["wait"].event_definition.event_definitions
    assert (type(timer).__name__, timer.expression) == ("TimeDateEventDefinition", 'publicity_window["timer_at"]')
    assert (message.name, message.message_var) == ("objection", "objection")


# ---------------------------------------------------------------------------------------------
# Grants (ownership and long-term use right have the same shape)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("process_id", GRANTS)
def test_grant_completed(parser, process_id):
    with freeze_time(START) as frozen:
        run = Run(parser, process_id, kind=process_id.split("_grant")[0])
        to_publicity(run)
        assert run.timer_due() == START + timedelta(days=15)
        pass_publicity(run, frozen)
        assert run.data()["consents"] == [{"agree": True}] * 3
        sign_and_archive(run)
        run.complete("ip_transfer", {"registry_number": "ZL-1"})
        assert run.services.calls[-1] == "update_registry"
        run.complete("complete_archive", {"archive_number": "D-1"})
        run.finish("completed", "end_completed")
        assert run.services.calls == ["record_decision", "open_publicity", "close_publicity", "render_agreement",
                                      "finalize_agreement", "update_registry"]
        assert run.wf.data["publicity_window"]["ends_at"] == (START + timedelta(days=15)).isoformat()


def test_return_for_revision_and_resubmit(parser):
    run = Run(parser, "ownership_grant")
    to_review(run)
    run.complete("review", {"decision": "return"})
    assert run.ready_ids() == ["draft"]
    assert run.ready("draft")[0].data["review"] == {"decision": "return"}  # the draft sees why
    run.complete("draft", {"members": MEMBERS[:2]})
    assert run.ready_ids() == ["consent", "consent"]
    for _ in range(2):
        run.complete("consent", {"agree": True})
    run.complete("review", APPROVE)
    assert run.ready_ids() == ["unit_decision"]


def test_refused_at_review(parser):
    run = Run(parser, "ownership_grant")
    to_review(run)
    run.complete("review", {"decision": "refuse"})
    run.finish("refused", "end_refused")
    assert run.services.calls == []


def test_refused_at_unit_decision(parser):
    run = Run(parser, "use_right_grant", kind="use_right")
    to_decision(run)
    run.complete("unit_decision", {"result": "refuse"})
    run.finish("refused", "end_refused")
    assert run.services.calls == ["record_decision"]


def test_unit_decision_returns_to_review(parser):
    run = Run(parser, "ownership_grant")
    to_decision(run)
    run.complete("unit_decision", {"result": "return"})
    assert run.ready_ids() == ["review"]
    run.complete("review", APPROVE)
    assert run.ready_ids() == ["unit_decision"]


def test_member_refusal_goes_back_to_draft_and_second_round_works(parser):
    run = Run(parser, "ownership_grant")
    run.complete("draft", {"members": MEMBERS})
    members = sorted(t.data["member"]["username"] for t in run.ready("consent"))
    assert members == ["m1", "m2", "m3"]  # one consent task per member, each knows its member
    run.complete("consent", {"agree": True})
    run.complete("consent", {"agree": False, "comment": "分配比例不同意"})
    run.complete("consent", {"agree": True})
    assert run.ready_ids() == ["draft"]
    assert sorted(c["agree"] for c in run.ready("draft")[0].data["consents"]) == [False, True, True]
    # second round: fresh consents, no stale item left in the data
    run.complete("draft", {"members": MEMBERS[:2]})
    assert run.ready_ids() == ["consent", "consent"]
    assert run.ready("consent")[0].data.get("consents") in (None, [])
    run.complete("consent", {"agree": True})
    run.complete("consent", {"agree": True})
    assert run.ready_ids() == ["review"]
    assert run.ready("review")[0].data["consents"] == [{"agree": True}, {"agree": True}]


@pytest.mark.parametrize("stage", ["draft", "consent", "review", "unit_decision"])
def test_withdrawal_before_decision(parser, stage):
    run = Run(parser, "ownership_grant")
    if stage != "draft":
        run.complete("draft", {"members": MEMBERS})
    if stage in ("review", "unit_decision"):
        for _ in MEMBERS:
            run.complete("consent", {"agree": True})
    if stage == "unit_decision":
        run.complete("review", APPROVE)
    assert stage in run.ready_ids()
    run.send("withdraw", {"by": "rep"})
    run.finish("withdrawn", "end_withdrawn")


def test_no_withdrawal_once_decided(parser):
    with freeze_time(START):
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        with pytest.raises(WorkflowException):
            run.wf.send_event(BpmnEvent(MessageEventDefinition("withdraw"), {}))
        run.advance()
        assert not run.wf.is_completed()


# ---------------------------------------------------------------------------------------------
# Publicity (called by both grants)
# ---------------------------------------------------------------------------------------------
def test_timer_fires_at_the_end_of_the_term_not_before(parser):
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        due = START + timedelta(days=15)
        # SpiffWorkflow fires a timer only once its time is strictly past, so the timer is set
        # one microsecond before the end of the term: it closes at the end, not a second before.
        assert run.timer_due() == due
        frozen.move_to(due - timedelta(seconds=1))
        run.advance()
        assert run.ready_ids() == []
        frozen.move_to(due)
        run.advance()
        assert run.ready_ids() == ["agreement_terms"]
        assert run.services.calls[-1] == "close_publicity"


def test_objection_dismissed_publicity_continues_and_passes(parser):
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        frozen.tick(timedelta(days=3))
        run.send("objection", {"objection_id": 7})
        assert run.ready_ids() == ["handle_objection"]
        assert run.ready("handle_objection")[0].data["objection"] == {"objection_id": 7}
        run.complete("handle_objection", handling("dismiss", "理由不成立"))
        assert run.ready_ids() == []
        assert run.timer_due() == START + timedelta(days=15)  # the term is not restarted
        pass_publicity(run, frozen)


def test_two_objections_in_one_term(parser):
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        run.send("objection", {"objection_id": 1})
        frozen.tick(timedelta(days=1))
        run.send("objection", {"objection_id": 2})
        open_ids = {t.data["objection"]["objection_id"] for t in run.ready("handle_objection")}
        assert open_ids == {1, 2}
        run.complete("handle_objection", handling("dismiss", "x"))
        run.complete("handle_objection", handling("dismiss", "y"))
        assert run.ready_ids() == []
        pass_publicity(run, frozen)


def test_objection_still_open_when_term_ends(parser):
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        run.send("objection", {"objection_id": 3})
        frozen.move_to(run.timer_due() + timedelta(seconds=1))
        run.advance()
        assert run.ready_ids() == ["handle_objection"]  # the call activity waits for it
        run.complete("handle_objection", handling("dismiss", "z", term_over=True, outcome="passed"))
        assert run.ready_ids() == ["agreement_terms"]
        assert run.data()["publicity_outcome"] == "passed"


@pytest.mark.parametrize(("decisions", "outcome", "next_step"), [
    (["uphold"], "upheld", ["review"]),
    (["dismiss_restart"], "restart", []),
    (["uphold", "dismiss"], "upheld", ["review"]),
    (["dismiss", "uphold"], "upheld", ["review"]),
    (["dismiss_restart", "dismiss"], "restart", []),
    (["dismiss", "dismiss"], "passed", ["agreement_terms"]),
])
def test_objections_handled_after_the_term(parser, decisions, outcome, next_step):
    """After the term no decision terminates: every open objection keeps its task until handled,
    and the last one carries the notice's outcome (computed by the engine) out of publicity."""
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        for objection_id in range(1, len(decisions) + 1):
            run.send("objection", {"objection_id": objection_id})
        frozen.move_to(run.timer_due() + timedelta(seconds=1))
        run.advance()
        assert run.services.calls[-1] == "close_publicity"
        notice = "passed"
        for i, decision in enumerate(decisions):
            assert run.ready_ids() == ["handle_objection"] * (len(decisions) - i)
            notice = max(notice, {"dismiss": "passed", "dismiss_restart": "restart", "uphold": "upheld"}[decision],
                         key=["passed", "restart", "upheld"].index)
            run.complete("handle_objection", handling(decision, "r", term_over=True, outcome=notice))
        assert run.ready_ids() == next_step
        if outcome == "restart":
            assert run.services.calls[-1] == "open_publicity" and run.services.calls.count("open_publicity") == 2
        else:
            assert run.ready(next_step[0])[0].data["publicity_outcome"] == outcome


def test_restricted_engine_refuses_what_spiff_arena_refuses():
    env = RestrictedEnvironment()
    for script, error in [('globals().pop("x", None)', NameError), ('__import__("os")', SyntaxError),
                          ('open("/etc/passwd")', NameError), ('eval("1")', SyntaxError),
                          ("x = ().__class__", SyntaxError)]:
        with pytest.raises(error):
            env.execute(script, {"x": 1})
    data = {"review": {"decision": "approve"}, "consents": [{"agree": True}]}
    assert env.evaluate('review["decision"] == "approve"', dict(data))
    assert env.evaluate('all(c["agree"] for c in consents)', dict(data))
    env.execute("outcome = None", data)
    assert data["outcome"] is None and "__builtins__" not in data


def test_objection_upheld_goes_back_to_review(parser):
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        run.send("objection", {"objection_id": 9})
        run.complete("handle_objection", handling("uphold", "权属有争议"))
        assert run.ready_ids() == ["review"]
        assert run.ready("review")[0].data["publicity_outcome"] == "upheld"
        assert [e.event_type for e in run.wf.waiting_events()] == ["MessageEventDefinition"]  # withdraw again
        # review again, decide again, publicise again: a fresh round that passes
        run.complete("review", APPROVE)
        run.complete("unit_decision", {"result": "approve"})
        assert run.timer_due() == datetime.now(UTC) + timedelta(days=15)
        pass_publicity(run, frozen)


def test_dismiss_restart_runs_publicity_again_with_fresh_window(parser):
    with freeze_time(START) as frozen:
        run = Run(parser, "ownership_grant")
        to_publicity(run)
        frozen.tick(timedelta(days=10))
        run.send("objection", {"objection_id": 4})
        run.complete("handle_objection", handling("dismiss_restart", "修正公示内容"))
        assert run.ready_ids() == []
        assert run.services.calls[-2:] == ["open_publicity", "open_publicity"]
        due = run.timer_due()
        assert due == START + timedelta(days=25)  # a new 15-day term from the restart
        (waiting,) = [t for t in run.wf.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "wait"]
        assert waiting.data["publicity_outcome"] is None  # the stale "restart" was cleared
        assert waiting.data["handle_objection"] is None
        # the old term's end passes without effect
        frozen.move_to(START + timedelta(days=15, seconds=1))
        run.advance()
        assert run.ready_ids() == []
        frozen.move_to(due + timedelta(seconds=1))
        run.advance()
        assert run.ready_ids() == ["agreement_terms"]
        data = run.data()
        assert data["publicity_outcome"] == "passed"  # not the stale "restart"
        assert data["publicity_window"]["starts_at"] == (START + timedelta(days=10)).isoformat()


# ---------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("refusing", ["sign_representative", "sign_unit"])
def test_request_changes_at_signing_goes_back_to_terms(parser, refusing):
    with freeze_time(START) as frozen:
        run = Run(parser, "use_right_grant", kind="use_right")
        to_publicity(run)
        pass_publicity(run, frozen)
        run.complete("agreement_terms", {"terms": "v1"})
        run.complete("sign_representative", CHANGES if refusing == "sign_representative" else SIGN)
        if refusing == "sign_unit":
            run.complete("sign_unit", CHANGES)
        assert run.ready_ids() == ["agreement_terms"]
        assert run.services.calls.count("render_agreement") == 1
        sign_and_archive(run)
        assert run.services.calls.count("render_agreement") == 2  # new draft, old signatures void
        run.complete("ip_transfer", {})
        run.complete("complete_archive", {})
        run.finish("completed", "end_completed")


# ---------------------------------------------------------------------------------------------
# Extension of the long-term use right
# ---------------------------------------------------------------------------------------------
def test_extension_completed_after_returns(parser):
    run = Run(parser, "use_right_extension", kind="extension")
    assert run.ready_ids() == ["extension_request"]
    run.complete("extension_request", {"years": 5})
    run.complete("extension_review", {"decision": "return"})
    assert run.ready_ids() == ["extension_request"]
    run.complete("extension_request", {"years": 3})
    run.complete("extension_review", APPROVE)
    run.complete("extension_decision", {"result": "return"})
    assert run.ready_ids() == ["extension_review"]
    run.complete("extension_review", APPROVE)
    run.complete("extension_decision", {"result": "approve"})
    run.complete("supplementary_terms", {"terms": "v1"})
    run.complete("sign_representative", SIGN)
    run.complete("sign_unit", CHANGES)
    assert run.ready_ids() == ["supplementary_terms"]
    sign_and_archive(run, "supplementary_terms")
    run.complete("complete_archive", {})
    run.finish("completed", "end_completed")
    assert run.services.calls == ["record_decision", "record_decision", "render_agreement", "render_agreement",
                                  "finalize_agreement", "update_registry"]


@pytest.mark.parametrize("refused_by", ["extension_review", "extension_decision"])
def test_extension_refused(parser, refused_by):
    run = Run(parser, "use_right_extension", kind="extension")
    run.complete("extension_request", {"years": 5})
    if refused_by == "extension_review":
        run.complete("extension_review", {"decision": "refuse"})
    else:
        run.complete("extension_review", APPROVE)
        run.complete("extension_decision", {"result": "refuse"})
    run.finish("refused", "end_refused")


@pytest.mark.parametrize("stage", ["extension_request", "extension_review", "extension_decision"])
def test_extension_withdrawal(parser, stage):
    run = Run(parser, "use_right_extension", kind="extension")
    if stage != "extension_request":
        run.complete("extension_request", {"years": 5})
    if stage == "extension_decision":
        run.complete("extension_review", APPROVE)
    assert run.ready_ids() == [stage]
    run.send("withdraw", {})
    run.finish("withdrawn", "end_withdrawn")
