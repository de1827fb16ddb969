"""The spec is stored once per process version; each state keeps only its task tree and data."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from tests.driver import Driver
from workflows import runtime
from workflows.models import Application, ProcessVersion, WorkflowState


def test_states_hold_no_spec_and_a_grant_runs_to_completion(sessions):
    d = Driver(sessions)
    app_id = d.to_publicity()
    d.pass_publicity(app_id)
    d.finish(app_id)
    other = d.start()
    with sessions() as s:
        assert d.status(app_id) == "completed"
        states = s.execute(select(WorkflowState)).scalars().all()
        for state in states:
            dct = json.loads(runtime.state_json(state.serialized))
            assert "spec" not in dct and "subprocess_specs" not in dct
        version = s.execute(select(ProcessVersion).where(ProcessVersion.process_id == "ownership_grant")).scalar_one()
        assert version.spec_sha256 and json.loads(version.spec).keys() == {"spec", "subprocess_specs"}
        assert s.execute(select(func.count()).select_from(ProcessVersion)).scalar_one() == 1
        done = s.get(WorkflowState, app_id)
        assert len(done.serialized.encode()) <= 15_000
        assert runtime.load(done.serialized, done.process_version).is_completed()
        assert s.get(WorkflowState, other).process_version_id == version.id


def test_summary_column_follows_the_draft(sessions):
    d = Driver(sessions)
    app_id = d.start()
    data = d.draft(app_id)
    with sessions() as s:
        app = s.get(Application, app_id)
        assert app.summary["draft"]["achievement"]["title"] == data["achievement"]["title"]


def test_a_legacy_state_with_its_spec_still_loads(sessions):
    d = Driver(sessions)
    app_id = d.start()
    with sessions() as s:
        state = s.get(WorkflowState, app_id)
        wf = runtime.load(state.serialized, state.process_version)
        legacy = runtime.SERIALIZER.serialize_json(wf)
        assert "spec" in json.loads(legacy)
        again = runtime.load(legacy)
        assert [t.task_spec.bpmn_id for t in again.get_tasks(manual=True)] == \
               [t.task_spec.bpmn_id for t in wf.get_tasks(manual=True)]
        state_only, spec, sha = runtime.split_legacy(legacy)
        assert sha == state.process_version.spec_sha256 or json.loads(spec).keys() == {"spec", "subprocess_specs"}


def test_the_state_is_the_full_serialization_minus_the_spec(sessions):
    d = Driver(sessions)
    app_id = d.to_publicity()
    with sessions() as s:
        state = s.get(WorkflowState, app_id)
        wf = runtime.load(state.serialized, state.process_version)
        full = json.loads(runtime.SERIALIZER.serialize_json(wf))
        del full["spec"], full["subprocess_specs"]
        assert json.loads(runtime.state_json(runtime.dump(wf))) == full
