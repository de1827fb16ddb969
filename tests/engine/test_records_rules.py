"""The record says what happened: team members are the accounts (their registered names are
printed), the terms signed are the terms decided and publicized, an IP filing is not dated in
the future, and 回避 cannot strand an application. Each refusal leaves everything as it was."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from tests.driver import Driver, example
from tests.engine import test_policy as rules
from workflows import clock
from workflows.errors import Forbidden
from workflows.grants import recusal
from workflows.models import Application, Document, RoleGrant, User
from workflows.people import accounts
from workflows.people.access import SystemActor
from workflows.process import engine, forms, queries


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def _text(document: Document) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(document.content)).pages)


# -- team members are accounts ---------------------------------------------------------------
def test_a_typed_name_that_differs_from_the_account_is_refused(drive):
    app_id = drive.start()
    members = example("ownership_draft")["members"]
    members[1]["name"] = "李四"
    rules.refused(drive, app_id, "draft", "researcher1", rules.draft_with(members=members),
                  "members.1.name", '第2行：用户 researcher2 的姓名为"王芳"，与填写的"李四"不一致')


def test_documents_print_the_registered_names(drive):
    def rename(s):
        drive.user(s, "researcher2").name = "王芳华"
    drive.run(rename)
    app_id = drive.start()
    rules.refused(drive, app_id, "draft", "researcher1", rules.draft_with(), "members.1.name",
                  '用户 researcher2 的姓名为"王芳华"')
    members = example("ownership_draft")["members"]
    members[1]["name"] = "王芳华"
    drive.draft(app_id, members=members)
    drive.consent_all(app_id)
    drive.review(app_id)
    drive.decide(app_id)
    with drive.sessions() as s:
        docs = {d.kind: d for d in queries.documents(s, s.get(Application, app_id))}
        assert "王芳华" in _text(docs["publicity_notice"])  # the decision record names no members


# -- terms signed = terms decided and publicized ----------------------------------------------
@pytest.mark.parametrize(("field", "value", "words"), [
    ("licence_term_years", 12, "许可期限12年与经决策并公示的使用权期限10年不一致"),
    ("licence_mode", "ordinary", "许可方式与经决策并公示的“独占许可”不一致"),
])
def test_use_right_terms_must_be_the_publicized_ones(drive, field, value, words):
    app_id = rules._agreement_step(drive, "use_right")
    terms = example("use_right_terms")
    terms[field] = value
    rules.refused(drive, app_id, "agreement_terms", "tto1", terms, field, words)
    drive.complete(app_id, "agreement_terms", "tto1", example("use_right_terms"))
    assert drive.steps(app_id) == ["sign_representative"]


def test_ownership_mode_share_and_members_come_from_the_publicized_draft(drive):
    """Ownership terms do not re-enter the mode, the team share or the members: the agreement
    prints the draft that was decided and publicized."""
    app_id = rules._agreement_step(drive)
    assert {"ownership_mode", "team_share", "members"}.isdisjoint(
        forms.load_schema("ownership_terms.schema.json")["properties"])
    drive.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    draft = example("ownership_draft")
    with drive.sessions() as s:
        text = _text(queries.documents(s, s.get(Application, app_id))[-1])
    assert all(m["name"] in text for m in draft["members"])
    assert "按份共有" in text or "共同共有" in text


# -- an IP filing is not dated in the future --------------------------------------------------
def test_ip_transfer_date_in_the_future_is_refused(drive):
    app_id = rules._agreement_step(drive)
    drive.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    drive.sign_both(app_id)
    filing = example("ip_transfer")
    filing["filing_date"] = (clock.local_date(clock.now()) + timedelta(days=1)).isoformat()
    rules.refused(drive, app_id, "ip_transfer", "tto1", filing, "filing_date", "办理日期不能晚于今天")
    filing["filing_date"] = clock.local_date(clock.now()).isoformat()
    drive.complete(app_id, "ip_transfer", "tto1", filing)
    with drive.sessions() as s:
        record = queries.agreement_record(s.get(Application, app_id), queries.application_data(
            s.get(Application, app_id)))
    assert record["ip_transfer"][1]["filing_number"] == filing["filing_number"]
    assert record["terms"][1]["conversion_period_months"] == example("ownership_terms")["conversion_period_months"]


# -- 回避 cannot strand an application ------------------------------------------------------
def _tto_in_the_team() -> list[dict]:
    members = example("ownership_draft")["members"]
    members[2].update(username="tto1", name="刘洋")
    return members


def test_the_only_tto_in_the_team_is_warned_and_an_admin_grant_recovers(drive):
    app_id = drive.start()
    members = _tto_in_the_team()
    with drive.sessions() as s:
        app = s.get(Application, app_id)
        (warning,) = recusal.warnings(s, app, {"members": members})
        assert "刘洋（tto1）是本单位仅有的成果转化部门经办人" in warning
        assert recusal.warnings(s, app, example("ownership_draft")) == []
    drive.draft(app_id, members=members)
    for who in ("researcher1", "researcher2", "tto1"):
        drive.complete(app_id, "consent", who, {"agree": True, "comment": ""})
    review = drive.task_id(app_id, "review")
    with pytest.raises(Forbidden):  # 回避: the only officer may not take it
        drive.run(lambda s: engine.claim_task(s, drive.user(s, "tto1"), review))
    with drive.sessions() as s:
        assert recusal.stranded_roles(s, drive.app(app_id).unit_id, [m["username"] for m in members]).keys() == {"tto"}

    def grant(s):
        user = accounts.create_user(s, "tto3", "钱进", "a-long-password", roles=[("tto", "SZDU")], actor=SystemActor("tests"))
        return user.id
    drive.run(grant)
    with drive.sessions() as s:
        tto3 = drive.user(s, "tto3")
        assert [t.id for t in s.execute(queries.tasks_for(tto3)).scalars()] == [review]
        assert recusal.stranded_roles(s, drive.app(app_id).unit_id, [m["username"] for m in members]) == {}
    drive.run(lambda s: engine.claim_task(s, drive.user(s, "tto3"), review))
    drive.complete(app_id, "review", "tto3", example("review"))
    assert drive.status(app_id) == "deciding"


def test_a_role_granted_across_units_counts_as_a_holder(drive):
    def grant(s):
        accounts.grant_role(s, drive.user(s, "admin"), "tto", None, actor=SystemActor("tests"))
    drive.run(grant)
    with drive.sessions() as s:
        unit_id = s.execute(select(RoleGrant.unit_id).join(User).where(User.username == "tto1")).scalar_one()
        assert recusal.stranded_roles(s, unit_id, ["tto1"]) == {}
