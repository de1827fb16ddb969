"""The diagrams parse against the BPMN XSD, open cleanly in bpmn-js, and agree with the forms."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from workflows.errors import ValidationFailed
from workflows.process import assignment, forms, specs

FORM_FILES = sorted(p.name for p in forms.FORMS_DIR.glob("*.schema.json"))


def _user_tasks(spec):
    for process in [spec.spec, *spec.subprocess_specs.values()]:
        for task_spec in process.task_specs.values():
            if getattr(task_spec, "manual", False):
                yield task_spec


@pytest.mark.parametrize("process_id", specs.TOP_LEVEL)
def test_every_user_task_has_a_lane_role_and_an_existing_form(process_id):
    spec = specs.current(process_id)
    tasks = list(_user_tasks(spec))
    assert tasks
    for task_spec in tasks:
        assignment.role_for_lane(task_spec.lane)
        form = task_spec.extensions["properties"]["formJsonSchemaFilename"]
        assert form in FORM_FILES, (task_spec.bpmn_id, form)


@pytest.mark.parametrize("filename", FORM_FILES)
def test_forms_are_valid_schemas_with_valid_examples(filename):
    schema = forms.load_schema(filename)
    Draft202012Validator.check_schema(schema)
    assert schema["examples"], "each form carries an example payload"
    for example in schema["examples"]:
        errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(example))
        assert errors == [], errors


def test_versions_are_content_hashes():
    library = specs.library()
    assert len({s.sha256 for s in library.values()}) == len(library)
    assert "publicity.bpmn" in library["ownership_grant"].files


@pytest.mark.skipif(not os.environ.get("GRANTS_BPMN_CHECK"), reason="bpmn-check set up by scripts/test.sh")
def test_diagrams_open_cleanly_in_bpmn_js(tmp_path):
    checker = os.environ["GRANTS_BPMN_CHECK"]
    files = sorted(str(p) for p in specs.BPMN_DIR.glob("*.bpmn"))
    report = tmp_path / "report.json"
    result = subprocess.run(["node", "check.mjs", "--out", str(tmp_path), "--json", str(report), *files],
                            cwd=checker, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(report.read_text())


@pytest.mark.parametrize("filename", ["ownership_draft.schema.json", "use_right_draft.schema.json"])
def test_the_grant_drafts_share_their_common_parts_from_forms_defs(filename):
    """The team, achievement, eligibility … are written once (forms/defs/grant_draft.json); the
    validator, the renderer and the documents get them written out by forms.load_schema."""
    raw = json.loads((forms.FORMS_DIR / filename).read_text(encoding="utf-8"))
    assert raw["properties"]["members"] == {"$ref": "defs/grant_draft.json#/$defs/members"}
    schema = forms.load_schema(filename)
    assert "defs/" not in json.dumps(schema) and schema["properties"]["members"]["type"] == "array"
    draft = dict(schema["examples"][0])
    draft["members"] = [{**draft["members"][0], "share": "many"}]
    with pytest.raises(ValidationFailed) as refused:
        forms.validate(filename, draft)
    assert [e["field"] for e in refused.value.errors] == ["members.0.share"]
