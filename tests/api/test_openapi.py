"""The OpenAPI document describes exactly the routes the app serves under /api/v1."""
from __future__ import annotations

import io
import json
import re

from .conftest import PDF

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _served(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods if m.lower() in HTTP_METHODS}
    return routes


def _resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_openapi_document_matches_the_routes(app, api):
    response = api.get("/openapi.json")  # public: no token
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    documented = {(path, method) for path, item in doc["paths"].items() for method in item if method in HTTP_METHODS}
    assert documented == _served(app)


def test_every_operation_is_complete_and_every_ref_resolves(app, api):
    doc = api.get("/openapi.json").get_json()
    for path, item in doc["paths"].items():
        placeholders = set(re.findall(r"{([^}]+)}", path))
        for method, op in item.items():
            assert op["summary"] and op["responses"], (path, method)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == placeholders, (path, method)
            for p in op.get("parameters", []):
                assert p["required"] or p["in"] != "path"
            if method == "post" and not path.endswith(("/claim", "/withdraw", "/retry", "/conversions")):
                assert op["requestBody"]["content"], (path, method)
            for code, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", code)
                assert _resolve(doc, response)["description"]
    refs = re.findall(r"\"\$ref\": \"([^\"]+)\"", json.dumps(doc))
    for ref in refs:
        assert _resolve(doc, {"$ref": ref}) is not None


def test_public_operations_need_no_token(app, api):
    doc = api.get("/openapi.json").get_json()
    public = {(p, m) for p, item in doc["paths"].items() for m, op in item.items() if op.get("security") == []}
    assert public == {("/api/v1/tokens", "post"), ("/api/v1/publicity", "get"),
                      ("/api/v1/publicity/{notice_id}/objections", "post"), ("/api/v1/openapi.json", "get"),
                      ("/api/v1/units/{code}/certificate", "get"), ("/api/v1/publicity/archive", "get"),
                      ("/api/v1/publicity/{notice_id}", "get"), ("/api/v1/publicity/receipts", "post")}
    for template, method in public - {("/api/v1/tokens", "post"), ("/api/v1/publicity/{notice_id}/objections", "post"),
                                      ("/api/v1/publicity/{notice_id}", "get"), ("/api/v1/publicity/receipts", "post")}:
        path = template.replace("{code}", "SZDU")
        assert app.test_client().open(path, method=method.upper()).status_code == 200


def _check(doc, name: str, instance) -> None:
    """Validate a response body against a component schema (OpenAPI 3.1 schemas are JSON Schema)."""
    from jsonschema import Draft202012Validator
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(instance)]
    assert not errors, (name, errors)


def test_responses_match_the_documented_schemas(api):
    doc = api.get("/openapi.json").get_json()
    created = api.ok(api.post("/applications", "researcher1", {"kind": "ownership"}), 201)
    _check(doc, "NewApplicationResult", created)
    api.draft(created["id"])
    _check(doc, "Me", api.ok(api.get("/me", "researcher1")))
    _check(doc, "ApplicationDetail", api.ok(api.get(f"/applications/{created['id']}", "researcher1")))
    for item in api.ok(api.get("/applications", "tto1")):
        _check(doc, "Application", item)
    tasks = api.ok(api.get("/tasks", "researcher2"))
    assert tasks
    for item in tasks:
        _check(doc, "Task", item)
    _check(doc, "TaskDetail", api.ok(api.get(f"/tasks/{tasks[0]['id']}", "researcher2")))
    refused = api.post(f"/tasks/{tasks[0]['id']}/complete", "researcher2", {"agree": "yes", "extra": 1})
    assert refused.status_code == 422
    _check(doc, "Error", refused.get_json())
    upload = api.post(f"/applications/{created['id']}/attachments", "researcher1",
                      data={"file": (io.BytesIO(PDF), "a.pdf")}, content_type="multipart/form-data")
    _check(doc, "Document", api.ok(upload, 201))
    for item in api.ok(api.get(f"/applications/{created['id']}/documents", "researcher2")):
        _check(doc, "Document", item)
    _check(doc, "Token", api.client.post("/api/v1/tokens", json={"username": "tto1",
                                                                 "password": "demo-pass-2026"}).get_json())
