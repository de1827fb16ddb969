"""The REST write path stays lean (issue 10): a bounded number of SQL statements per start and
per submit, counted with an SQLAlchemy event listener. No timings are asserted. The bounds are
today's counts (start 20, draft 28, consent 22 with one member; of them one or two upserts of the
statistics summaries at commit) plus a little slack; before the write-path work they were 33, 41
and 34, mostly the same task and people loaded again."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from .conftest import example


@contextmanager
def counted(app):
    statements: list[str] = []
    engine = app.extensions["grants_engine"]

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_start_and_two_submits_issue_a_bounded_number_of_statements(api, app):
    api.start()  # the unit's first start also creates its counter, audit log and process version rows
    with counted(app) as start:
        created = api.start()
    draft = example("ownership_draft")
    draft["members"] = [dict(draft["members"][0], share=100)]
    with counted(app) as submit_draft:
        after_draft = api.ok(api.post(f"/tasks/{created['task']['id']}/complete", "researcher1", draft))
    consent_id = after_draft["current_steps"][0]["task_id"]
    with counted(app) as submit_consent:
        after_consent = api.ok(api.post(f"/tasks/{consent_id}/complete", "researcher1",
                                        {"agree": True, "comment": ""}))
    assert created["task"]["bpmn_id"] == "draft" and after_consent["status"] == "in_review"
    assert len(start) <= 21, start
    assert len(submit_draft) <= 28, submit_draft
    assert len(submit_consent) <= 23, submit_consent
    # the draft is the representative's own task: he is on the loaded application, not read again
    assert not [s for s in start if "WHERE users.username" in s], start
    # the same task row is read once per request, not once per layer
    task_loads = [s for s in submit_consent if "FROM human_tasks LEFT OUTER JOIN applications" in s]
    assert len(task_loads) == 1, task_loads
    # one flush a submit: the draft's application (its title, team and then its status) is
    # updated once, and each summary table takes one upsert at commit
    for statements in (submit_draft, submit_consent):
        assert len([s for s in statements if s.startswith("UPDATE applications")]) == 1, statements
        assert len([s for s in statements if s.startswith("UPDATE human_tasks")]) == 1, statements
        assert len([s for s in statements if s.startswith("INSERT INTO application_counts")]) <= 1, statements
        assert len([s for s in statements if s.startswith("INSERT INTO duration_bins")]) <= 1, statements


def test_a_started_application_carries_its_real_number_everywhere(api, app):
    """The number is taken after the engine ran (late, to shorten the counter lock): the
    workflow data, the row and the answer all hold the real, consecutive number."""
    from workflows.models import Application
    from workflows.process import runtime
    first, second = api.start(), api.start()
    assert first["number"].startswith("SZDU-") and second["number"].startswith("SZDU-")
    assert int(second["number"][-4:]) == int(first["number"][-4:]) + 1
    with app.extensions["grants_sessions"]() as s:
        row = s.get(Application, second["id"])
        wf = runtime.load(row.state.serialized, row.state.process_version)
        numbers = {t.data.get("application_number") for t in wf.get_tasks() if "application_number" in t.data}
        assert numbers == {second["number"]}
