"""The spec is stored once per process version; each state keeps only its task tree and data."""
from __future__ import annotations

import json

from sqlalchemy import select

from tests.driver import Driver
from workflows.models import Application, ProcessVersion, WorkflowState
from workflows.process import runtime


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
        processes = s.execute(select(ProcessVersion.process_id)).scalars().all()
        assert sorted(processes) == ["conversion_watch", "ownership_grant"]  # one version each (the
        # completed grant started its conversion-period watch)
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
        _state_only, spec, sha = runtime.split_legacy(legacy)
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


def test_migration_0003_splits_states_that_embed_their_spec(sessions, database_url):
    """Down before 0003_scale puts the spec back into each state (the old format); up again splits it out."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import workflows
    d = Driver(sessions)
    app_id = d.start()
    d.draft(app_id)
    with sessions() as s:
        before = runtime.state_json(s.get(WorkflowState, app_id).serialized)
        engine = s.get_bind()
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(workflows.__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    command.downgrade(cfg, "0003_hardweb")  # the revision before 0003_scale
    with engine.connect() as conn:
        from sqlalchemy import text
        legacy = conn.execute(text("SELECT serialized FROM workflow_states WHERE application_id = :i"),
                              {"i": app_id}).scalar_one()
    assert "spec" in json.loads(legacy)
    command.upgrade(cfg, "head")
    with sessions() as s:
        state = s.get(WorkflowState, app_id)
        assert json.loads(runtime.state_json(state.serialized)) == json.loads(before)
        assert s.get(Application, app_id).summary["draft"]["achievement"]["title"]
        assert [t.bpmn_id for t in runtime.ready_human_tasks(runtime.load(state.serialized, state.process_version))] \
            == ["consent"] * 3
    d.consent_all(app_id)
    assert d.status(app_id) == "in_review"
