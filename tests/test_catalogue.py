"""The process catalogue (workflows/catalogue.py) and the diagrams agree: every user and
service task of bpmn/*.bpmn has one entry with the diagram's lane role and form, every entry
is in a diagram, and every status, kind, role and step has an English label."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from babel.support import Translations
from lxml import etree

import webapp
from workflows import catalogue
from workflows.process import specs

BPMN = specs.BPMN_DIR
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


def _tasks(tag: str) -> dict[str, set[tuple[str, str | None, str | None]]]:
    """bpmn id -> {(process, lane role, form)} for every <tag> in every diagram."""
    found: dict[str, set[tuple[str, str | None, str | None]]] = {}
    for path in sorted(BPMN.glob("*.bpmn")):
        tree = etree.parse(str(path))
        lanes = {ref.text: lane.get("name") for lane in tree.iterfind(".//bpmn:lane", NS)
                 for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
        for node in tree.iterfind(f".//bpmn:{tag}", NS):
            form = node.find(".//spiffworkflow:property[@name='formJsonSchemaFilename']", NS)
            role = catalogue.LANE_ROLES.get(lanes.get(node.get("id")))
            found.setdefault(node.get("id"), set()).add((path.stem, role, None if form is None else form.get("value")))
    return found


def test_every_user_task_is_catalogued_with_its_role_and_form_and_vice_versa():
    tasks = _tasks("userTask")
    assert set(tasks) == {s.id for s in catalogue.USER_STEPS}
    for step in catalogue.USER_STEPS:
        kinds = [k.code for k in catalogue.KINDS_ALL if k.process in step.processes] or [""]
        expected = {(p, step.role, catalogue.step_form(step.id, k)) for p in step.processes for k in kinds
                    if p == "publicity" or catalogue.PROCESS_FOR_KIND.get(k) == p}
        assert tasks[step.id] == expected, step.id


def test_every_service_task_is_catalogued_and_vice_versa():
    tasks = _tasks("serviceTask")
    assert set(tasks) == set(catalogue.SERVICE_STEP_IDS)
    for step_id, seen in tasks.items():
        assert {p for p, _role, _form in seen} == set(catalogue.STEP[step_id].processes), step_id


def test_catalogue_entries_point_at_real_things():
    for step in catalogue.USER_STEPS:
        assert step.status in catalogue.OPEN_STATUSES and step.role in catalogue.TASK_ROLES and step.stage
    for kind in catalogue.KINDS_ALL:
        assert kind.process in specs.TOP_LEVEL and kind.notice in catalogue.NOTICE_KINDS
        assert kind.process in catalogue.STEP[kind.filed_step].processes
        if kind.terms_step:
            assert kind.process in catalogue.STEP[kind.terms_step].processes
    assert set(catalogue.STATUS_CODES) == {*catalogue.OPEN_STATUSES, *catalogue.CLOSED_STATUSES}


def _labels():
    yield from catalogue.STATUS_LABELS.values()
    yield from catalogue.KIND_LABELS.values()
    yield from catalogue.ROLE_LABELS.values()
    yield from (s.label for s in catalogue.STEP.values())
    yield from catalogue.NOTICE_KINDS.values()
    yield from catalogue.REGISTRY_STATES.values()
    yield from catalogue.GRANT_KIND_SHORT.values()


@pytest.mark.parametrize("label", sorted({str(label) for label in _labels()}))
def test_every_catalogue_label_has_an_english_translation(label):
    english = Translations.load(str(Path(webapp.__file__).resolve().parent / "translations"), ["en"])
    translated = english.gettext(label)
    assert translated != label and not any("\u4e00" <= ch <= "\u9fff" for ch in translated), label


def test_every_status_the_engine_can_set_is_catalogued():
    """The engine sets statuses from the steps' statuses, the waiting status and the outcomes."""
    from workflows.process import engine
    possible = {*catalogue.STEP_STATUS.values(), catalogue.WAITING_STATUS, catalogue.WATCH_STATUS,
                *engine.OUTCOME_STATUS.values()}
    assert possible <= set(catalogue.STATUS_CODES)
    assert set(catalogue.STATUS_CODES) <= possible


@pytest.mark.parametrize("values", [{"status": "drafted"}, {"kind": "licence"}, {"role": "superuser"}])
def test_the_database_refuses_a_code_the_catalogue_does_not_know(sessions, values):
    """CHECK constraints from migration 0003_catalogue, on SQLite and PostgreSQL alike; the same
    insert with catalogued codes is accepted, so the refusal is the constraint's."""
    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    from workflows.models import Application, RoleGrant, Unit, User
    with sessions() as s:
        unit_id, user_id = s.scalar(select(Unit.id)), s.scalar(select(User.id))
        table = RoleGrant if "role" in values else Application
        row = ({"user_id": user_id, "unit_id": unit_id, "role": "auditor"} if table is RoleGrant else
               {"unit_id": unit_id, "number": "CK-1", "kind": "ownership", "status": "draft", "title": "",
                "ip_numbers": [], "representative_id": user_id, "summary": {}})
        s.execute(insert(table).values(**row))
        s.execute(table.__table__.delete())
        with pytest.raises(IntegrityError, match=r"ck_|CHECK constraint"):
            s.execute(insert(table).values(**{**row, **values}))


FLOOR_TEXT = re.compile(r"(不低于|不少于|不得低于|不得少于)\s*([0-9]+|十)\s*(%|％|日|年|天)")


def test_policy_floors_are_numbers_only_in_the_catalogue():
    """Code, page and document templates and forms name the floors through workflows/catalogue.py
    (FLOORS in templates), so changing a floor is one edit."""
    root = BPMN.parent
    places = [*root.glob("workflows/**/*.py"), *root.glob("workflows/documents/templates/*.html"),
              *root.glob("webapp/**/*.py"), *root.glob("webapp/templates/**/*.html"), *root.glob("forms/**/*.json")]
    found = [f"{p.relative_to(root)}: {m.group(0)}" for p in places if p.name != "catalogue.py"
             for m in FLOOR_TEXT.finditer(p.read_text(encoding="utf-8"))]
    assert found == []


# --- Every code spelled once: the catalogue's enums, read everywhere else -------------------------

ROOT = BPMN.parent
CODES = {str(member) for codes in catalogue.CODES for member in codes}

# (file, literal, reason): strings that equal a code but are not one. Each names why.
NOT_CODES = {
    ("webapp/blueprints/admin.py", "admin", "the blueprint's name (url_for('admin.…'))"),
    ("webapp/blueprints/auditor.py", "auditor", "the blueprint's name (url_for('auditor.…'))"),
    ("webapp/blueprints/api_json.py", "representative", "a JSON field of the API's application (the username)"),
    ("webapp/openapi.py", "representative", "the same JSON field, in the API document"),
    ("workflows/documents/clauses.py", "representative", "a context key of the documents (the representative's name)"),
    ("workflows/documents/render.py", "representative", "the same context key"),
    ("workflows/process/operations.py", "representative", "the same context key, where the documents' context is built"),
    ("workflows/evidence/evidence_pack.py", "representative", "a JSON field of the evidence pack's application.json"),
    ("workflows/process/engine.py", "representative", "the diagram's seed variable: the representative's username"),
    ("workflows/evidence/evidence_pack.py", "signer", "a JSON field of signatures.json (the signer's username)"),
    ("workflows/evidence/signing.py", "signer", "a placeholder of the signature's appearance text"),
    ("webapp/blueprints/applications.py", "grant", "a template variable: the grant a conversion follows"),
    ("workflows/reporting/registry.py", "grant", "a registry event (grant / extend / converting …), not the notice kind"),
    ("webapp/blueprints/public.py", "open", "a notice's public state (publicity.outcome_of), not an objection's"),
    ("webapp/openapi.py", "open", "the same public notice state, in the API document"),
    ("workflows/publicity/__init__.py", "open", "the same public notice state, where outcome_of returns it"),
    ("webapp/blueprints/public.py", "dismissed", "a notice's public state: term over, objections dismissed"),
    ("webapp/openapi.py", "dismissed", "the same public notice state, in the API document"),
    ("workflows/publicity/__init__.py", "dismissed", "the same public notice state, where outcome_of returns it"),
    ("webapp/openapi.py", "upheld", "a figure's name in the statistics schema (objections upheld)"),
    ("workflows/reporting/statistics.py", "upheld", "the same figure's name"),
    ("workflows/reporting/annual_report.py", "upheld", "the same figure's name"),
    ("webapp/openapi.py", "granted", "a column of the statistics export"),
    ("webapp/openapi.py", "converted", "a column of the statistics export"),
    ("webapp/openapi.py", "completed", "a human task's state (ready / completed / cancelled)"),
    ("workflows/process/engine.py", "completed", "a human task's state"),
    ("workflows/process/queries.py", "completed", "the diagram's completed task ids (completed / current)"),
    ("workflows/process/runtime.py", "completed", "the same: the diagram's completed task ids"),
    ("webapp/openapi.py", "refused", "a distribution plan's state (proposed / approved / refused / paid)"),
    ("workflows/process/operations.py", "refused", "the same distribution plan state"),
    ("workflows/process/steps.py", "refused", "the same distribution plan state"),
    ("webapp/blueprints/tasks.py", "agreement", "a template variable: the agreement draft shown beside the task"),
    ("workflows/conversion/__init__.py", "agreement", "a pricing method of the conversion plan form (agreement / listing …)"),
    ("workflows/grants/policy.py", "agreement", "the same pricing method, of the draft form"),
    ("workflows/documents/render.py", "agreement", "the same pricing method"),
    ("webapp/blueprints/tasks.py", "review", "a stage of steps_in() (review steps), not the step"),
    ("workflows/reporting/statistics.py", "review", "a stage of steps_in() and a row of the step-duration table"),
    ("workflows/reporting/statistics.py", "consent", "a stage of steps_in() and a row of the step-duration table"),
    ("workflows/reporting/statistics.py", "draft", "a row of the step-duration table"),
    ("workflows/reporting/statistics.py", "publicity", "a row of the step-duration table"),
    ("workflows/reporting/statistics.py", "signing", "a row of the step-duration table"),
    ("workflows/reporting/annual_report.py", "publicity", "a table of the annual report"),
    ("workflows/documents/clauses.py", "publicity", "a document's clause set (clauses.require)"),
    ("workflows/documents/render.py", "publicity", "the same clause set"),
    ("workflows/documents/clauses.py", "conversion_plan", "a field of the draft form (the team's plan), not the step"),
    ("workflows/conversion/__init__.py", "price", "a field of the conversion plan form"),
    ("workflows/documents/render.py", "price", "the same form field"),
    ("workflows/process/assignment.py", "member", "the consent step's multi-instance element in the task data"),
    ("workflows/process/steps.py", "member", "the same multi-instance element, and a task context key"),
    ("workflows/process/steps.py", "watch", "the schedule step's result in the task data, not the kind"),
    ("workflows/conversion/watch.py", "watch", "the same task-data key"),
    ("workflows/process/runtime.py", "watch", "the same task-data key, kept in the application's summary"),
    ("workflows/conversion/watch.py", "converted", "a key of the lapse check's result (was it converted)"),
    ("workflows/conversion/watch.py", "extension", "a key of the watch's history (the period extension)"),
    ("workflows/demo.py", "admin", "the demo administrator's username"),
    ("workflows/documents/__init__.py", "render_agreement", "a function's name in __all__"),
    # Templates: HTML and CSS words, form values and the notice's public state.
    ("webapp/templates/public/show.html", "open", "a notice's public state (publicity.outcome_of)"),
    ("webapp/templates/tasks/task.html", "open", "the HTML attribute of <details>"),
    ("webapp/templates/public/_notice.html", "agreement", "a pricing method of the draft form"),
    ("workflows/documents/templates/publicity.html", "agreement", "a pricing method of the draft form"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def _python_literals():
    """(file, line, literal) of every string constant equal to a code, outside the catalogue."""
    for path in sorted([*ROOT.glob("workflows/**/*.py"), *ROOT.glob("webapp/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "workflows/catalogue.py" or rel.startswith("workflows/migrations/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in CODES \
                    and id(node) not in skip:
                yield rel, node.lineno, node.value


JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")


def _template_literals():
    """(file, line, literal) of every quoted string equal to a code inside {{ }} / {% %} of a template."""
    for path in sorted([*ROOT.glob("webapp/templates/**/*.html"), *ROOT.glob("workflows/documents/templates/*.html")]):
        rel, text = path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")
        for block in JINJA.finditer(text):
            for quoted in QUOTED.finditer(block.group(0)):
                value = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                if value in CODES:
                    yield rel, text.count("\n", 0, block.start() + quoted.start()) + 1, value


def test_no_code_is_spelled_outside_the_catalogue():
    """Issue 9: each step id, kind, status, role, notice kind, registry state and objection code
    is spelled once, in workflows/catalogue.py; code and templates read the enum member
    (`StepId.REVIEW`). A string equal to a code elsewhere fails here unless NOT_CODES says why."""
    allowed = {(rel, literal) for rel, literal, _reason in NOT_CODES}
    found = [*_python_literals(), *_template_literals()]
    spelled = [f"{rel}:{line}: {literal!r}" for rel, line, literal in found if (rel, literal) not in allowed]
    assert spelled == [], "use the catalogue's enum member (or add a reason to NOT_CODES):\n" + "\n".join(spelled)
    stale = allowed - {(rel, literal) for rel, _line, literal in found}
    assert stale == set(), "NOT_CODES entries that match nothing any more"


def test_the_literal_check_sees_python_and_templates(tmp_path, monkeypatch):
    """The walk above would find a code spelled again, in code and in a template."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "webapp" / "templates").mkdir(parents=True)
    (tmp_path / "workflows" / "x.py").write_text('"""draft"""\nif step == "review":\n    pass\n', encoding="utf-8")
    (tmp_path / "webapp" / "templates" / "x.html").write_text(
        '<p class="left">{% if app.kind == \'extension\' %}x{% endif %}</p>\n', encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert list(_python_literals()) == [("workflows/x.py", 2, "review")]
    assert list(_template_literals()) == [("webapp/templates/x.html", 1, "extension")]


def test_the_codes_are_strings_that_compare_bind_and_serialize_as_their_values():
    import json
    assert catalogue.StepId.DRAFT == "draft" and f"{catalogue.RoleCode.TTO}" == "tto"
    assert json.dumps({catalogue.StepId.REVIEW: [catalogue.StatusCode.IN_REVIEW]}) == '{"review": ["in_review"]}'
    assert all(isinstance(member, str) for codes in catalogue.CODES for member in codes)


@pytest.mark.parametrize("values", [{"status": "withdrawn"}, {"decision": "reject"}])
def test_the_database_refuses_an_objection_code_the_catalogue_does_not_know(sessions, values):
    """Migration 0004_consts: an objection's status and decision are the catalogue's codes, on
    SQLite and PostgreSQL; the same row with catalogued codes is accepted first."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select
    from sqlalchemy.exc import IntegrityError

    from workflows.catalogue import KindCode, NoticeKind, ObjectionDecision, ObjectionStatus, StatusCode
    from workflows.models import Application, Objection, PublicityNotice, Unit, User
    now = datetime(2026, 1, 5, tzinfo=UTC)
    with sessions() as s:
        unit_id, user_id = s.scalar(select(Unit.id)), s.scalar(select(User.id))
        app_id = s.execute(insert(Application).values(
            unit_id=unit_id, number="CK-2", kind=KindCode.OWNERSHIP, status=StatusCode.PUBLICITY, title="",
            ip_numbers=[], representative_id=user_id, summary={}).returning(Application.id)).scalar_one()
        notice_id = s.execute(insert(PublicityNotice).values(
            application_id=app_id, unit_id=unit_id, starts_at=now, ends_at=now, last_day="2026-01-20",
            kind=NoticeKind.GRANT, summary={}).returning(PublicityNotice.id)).scalar_one()
        row = {"receipt": "R-1", "notice_id": notice_id, "application_id": app_id, "name": "x", "contact": "x",
               "reason": "x", "filed_at": now, "status": ObjectionStatus.UPHELD, "decision": ObjectionDecision.UPHOLD}
        s.execute(insert(Objection).values(**row))
        s.execute(Objection.__table__.delete())
        with pytest.raises(IntegrityError, match=r"ck_objections_|CHECK constraint"):
            s.execute(insert(Objection).values(**{**row, **values}))
