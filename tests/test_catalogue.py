"""The process catalogue (workflows/catalogue.py) and the diagrams agree: every user and
service task of bpmn/*.bpmn has one entry with the diagram's lane role and form, every entry
is in a diagram, and every status, kind, role and step has an English label."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.support import Translations
from lxml import etree

import webapp
from workflows import catalogue, specs

BPMN = Path(specs.__file__).resolve().parents[1] / "bpmn"
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
    from workflows import engine
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
