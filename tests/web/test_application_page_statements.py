"""The application page reads a bounded number of SQL statements, whatever the number of history
events, documents, revisions, objections and notices (counted with a before_cursor_execute
listener), and never deserializes a workflow for a plain view (issue 10)."""
from __future__ import annotations

import pytest

from tests.driver import example
from workflows import publicity
from workflows.documents import uploads
from workflows.models import PublicityNotice
from workflows.process import engine, runtime

from .conftest import login
from .test_application_page import PDF
from .test_lists import counted

# The page's own reads (application with its team, history with its actors' names, waiting steps,
# their queues' claimants, submissions, notices with their objections, a grant's children,
# documents, signatures; "my tasks" is tested on the waiting steps' columns) plus the sign-in
# (user with roles) and the top bar (task and unread counts together), with BEGIN.
MOST = 11


def _statements(app, client, app_id: int) -> list[str]:
    with counted(app) as statements:
        response = client.get(f"/applications/{app_id}")
    assert response.status_code == 200
    return [s for s in statements if not s.startswith("PRAGMA")]


def _upload(driver, app_id: int, name: str) -> int:
    return driver.run(lambda s: uploads.accept(s, driver.app(app_id), name, PDF, driver.user(s, "researcher1")).id)


def _return_and_redraft(driver, app_id: int, draft: dict, attachments: list[dict]) -> None:
    """One more round: the office returns the filing, the team files it again (a new revision,
    more history, new attachments) and consents again."""
    driver.review(app_id, decision="return")
    draft = {**draft, "attachments": attachments}
    driver.complete(app_id, "draft", "researcher1", draft)
    driver.consent_all(app_id)


def test_statements_do_not_grow_with_history_documents_and_revisions(app, client, driver, monkeypatch):
    loads: list[str] = []
    real_load = runtime.load

    def load(*args, **kwargs):  # counts calls, runs the real thing
        loads.append("load")
        return real_load(*args, **kwargs)
    app_id = driver.start()
    draft = driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, "tto1")
    monkeypatch.setattr(runtime, "load", load)
    few = _statements(app, client, app_id)
    monkeypatch.setattr(runtime, "load", real_load)
    attachments: list[dict] = []
    for n in range(3):
        attachments = [*attachments, *({"document_id": _upload(driver, app_id, f"附件{n}-{k}.pdf"), "label": f"证明{n}-{k}"}
                                       for k in range(2))]
        _return_and_redraft(driver, app_id, draft, attachments)
    monkeypatch.setattr(runtime, "load", load)
    many = _statements(app, client, app_id)
    page = client.get(f"/applications/{app_id}").get_data(as_text=True)
    assert "第4次" in page and "证明2-1" in page  # the page does show the revisions and attachments
    assert len(many) == len(few) <= MOST, many
    assert loads == []  # a plain view deserializes no workflow


def test_statements_do_not_grow_with_objections(app, client, driver):
    app_id = driver.to_publicity()
    notice_id = driver.run(lambda s: s.query(PublicityNotice).filter_by(application_id=app_id).one().id)

    def object_(n: int) -> None:
        objection = {**example("objection"), "reason": f"第{n}条异议理由：本人参与了该成果的样机研制。"}
        driver.run(lambda s: publicity.file_objection(s, notice_id, objection, f"c{n}"))
    object_(0)
    login(client, "tto1")
    one = _statements(app, client, app_id)
    for n in range(1, 5):
        object_(n)
    task_id = driver.task_id(app_id, "handle_objection")
    driver.run(lambda s: engine.complete_task(s, driver.user(s, "tto1"), task_id,
                                              {"decision": "dismiss", "reasoning": "经核实，异议不成立。"}))
    many = _statements(app, client, app_id)
    page = client.get(f"/applications/{app_id}").get_data(as_text=True)
    assert "第4条异议理由" in page and "经核实，异议不成立。" in page
    assert len(many) == len(one) <= MOST, many


@pytest.mark.parametrize("who", ["researcher1", "auditor1"])
def test_the_team_and_auditors_read_no_more(app, client, driver, who):
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, who)
    assert len(_statements(app, client, app_id)) <= MOST


def test_the_history_names_whom_a_step_was_handed_to(app, client, driver):
    """The actors' names come with the history; whom a step was handed to (`to`, who may never
    have acted) are read in one more statement, only when not already known."""
    from workflows.people import accounts
    from workflows.people.access import SystemActor
    driver.run(lambda s: accounts.create_user(s, "tto1b", "赵敏", "another-pass-2026", roles=[("tto", "SZDU")],
                                              actor=SystemActor("tests")))
    app_id = driver.start()
    driver.draft(app_id)
    driver.consent_all(app_id)
    login(client, "tto1")
    before = _statements(app, client, app_id)
    review = driver.task_id(app_id, "review")
    driver.run(lambda s: engine.reassign_task(s, driver.user(s, "tto1"), review, "tto1b"))
    after = _statements(app, client, app_id)
    page = client.get(f"/applications/{app_id}").get_data(as_text=True)
    assert "→ 赵敏" in page
    assert len(after) == len(before) + 1 <= MOST + 1
