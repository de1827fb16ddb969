"""The OpenAPI 3.1 document of the REST API (webapp/blueprints/api.py), built as a dict.

A test checks that every /api/v1 route is described here and that nothing else is, so the
document cannot drift from the code silently.
"""
from __future__ import annotations

from typing import Any

from workflows import catalogue
from workflows.catalogue import NoticeKind, NoticeOutcome, ObjectionStatus
from workflows.process import queries

JSON = "application/json"
DATETIME = {"type": "string", "format": "date-time", "description": "UTC, ISO-8601"}
KINDS, STATUSES = list(catalogue.KIND_CODES), list(catalogue.STATUS_CODES)


NOTICE_OUTCOMES = ["open", "closing", "handling", "no_objection", "dismissed", NoticeOutcome.RESTARTED, NoticeOutcome.UPHELD]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _array(item: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(item)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


SCHEMAS: dict[str, Any] = {
    "Incident": _obj(
        ["id", "application_id", "application_number", "kind", "error", "attempts", "created_at", "updated_at",
         "next_retry_at", "resolved_at"],
        id={"type": "integer"}, application_id={"type": "integer"}, application_number={"type": "string"},
        kind={"type": "string", "description": "timer"}, error={"type": "string"},
        attempts={"type": "integer"}, created_at=DATETIME, updated_at=DATETIME, next_retry_at=DATETIME,
        resolved_at=_nullable(DATETIME)),
    "Error": _obj(["error"], error={"type": "string", "description": "Message in Chinese"},
                  errors={"type": "array", "items": _ref("FieldError")}),
    "FieldError": _obj(["field", "message"], field={"type": "string", "description": "Dotted path"},
                       message={"type": "string"}),
    "TokenRequest": _obj(["username", "password"], username={"type": "string"}, password={"type": "string"}),
    "Token": _obj(["token"], token={"type": "string", "description": "Valid 12 hours; a password change revokes it"}),
    "RoleGrant": _obj(["role", "unit"], role={"type": "string"},
                      unit=_nullable({"type": "string", "description": "Unit code; null: every unit"})),
    "Me": _obj(["id", "username", "name", "roles"], id={"type": "integer"}, username={"type": "string"},
               name={"type": "string"}, roles=_array("RoleGrant")),
    "NewApplication": _obj(["kind"], kind={"type": "string", "enum": KINDS},
                           unit={"type": "string", "description": "Unit code; default: the caller's researcher unit"},
                           original_number={"type": "string", "description": "Required for kind=extension"}),
    "CurrentStep": _obj(["task_id", "bpmn_id", "name", "lane", "role", "assignee"],
                        task_id={"type": "string"}, bpmn_id={"type": "string"}, name={"type": "string"},
                        lane={"type": "string"}, role={"type": "string"}, assignee=_nullable({"type": "string"})),
    "Application": _obj(
        ["id", "number", "kind", "status", "title", "unit", "representative", "created_at", "updated_at",
         "current_steps"],
        id={"type": "integer"}, number={"type": "string"}, kind={"type": "string", "enum": KINDS},
        status={"type": "string", "enum": STATUSES}, title={"type": "string"},
        unit={"type": "string", "description": "Unit code"},
        representative={"type": "string", "description": "Username"},
        created_at=DATETIME, updated_at=DATETIME, current_steps=_array("CurrentStep")),
    "HistoryEvent": _obj(["at", "actor", "action", "step"], at=DATETIME, actor={"type": "string"},
                         action={"type": "string"}, step={"type": "string"}),
    "ApplicationDetail": {"allOf": [_ref("Application"),
                                    _obj(["history"], history=_array("HistoryEvent"))]},
    "NewApplicationResult": {"allOf": [_ref("Application"),
                                       _obj(["task"], task=_nullable(_ref("Task")))]},
    "Task": _obj(["id", "application_id", "number", "bpmn_id", "name", "lane", "role", "assignee", "state",
                  "created_at"],
                 id={"type": "string"}, application_id={"type": "integer"}, number={"type": "string"},
                 bpmn_id={"type": "string"}, name={"type": "string"}, lane={"type": "string"},
                 role={"type": "string", "enum": list(catalogue.TASK_ROLES)},
                 assignee=_nullable({"type": "string"}),
                 state={"type": "string", "enum": ["ready", "completed", "cancelled"]}, created_at=DATETIME),
    "TaskDetail": {"allOf": [_ref("Task"), _obj(
        ["schema", "ui_schema", "data"],
        schema={"type": "object", "description": "The form's JSON Schema (2020-12)"},
        ui_schema={"type": "object", "description": "Presentation hints; may be empty"},
        data={"type": "object", "description": "The data the form starts from (saved draft or last payload)"},
        context={"type": "object", "description": "The workflow data the ready task sees"})]},
    "FormData": {"type": "object", "additionalProperties": True,
                 "description": "The payload of the task's form; validated against TaskDetail.schema"},
    "Notice": _obj(["id", "application_id", "number", "title", "kind", "starts_at", "ends_at", "last_day"],
                   id={"type": "integer"}, application_id={"type": "integer"}, number={"type": "string"},
                   title={"type": "string"}, kind={"type": "string", "enum": KINDS}, starts_at=DATETIME,
                   ends_at=DATETIME, last_day={"type": "string", "format": "date",
                                               "description": "Last day of the term, Asia/Shanghai"}),
    "ArchivedNotice": {"allOf": [_ref("Notice"), _obj(
        ["notice_kind", "round", "posted_title", "closed_at", "outcome", "objections", "unit"],
        notice_kind={"type": "string", "enum": list(NoticeKind),
                     "description": "What was publicized: a grant, a price fixed by agreement, leaders' rewards"},
        round={"type": "integer"}, posted_title={"type": "string"}, closed_at=_nullable(DATETIME),
        outcome={"type": "string", "enum": NOTICE_OUTCOMES,
                 "description": "open; closing (term over, not yet closed); handling (objections still open); "
                                "no_objection; dismissed (objections found unfounded); restarted; upheld"},
        objections={"type": "integer", "description": "Objections filed (no objector is named)"},
        unit={"type": "string"})]},
    "ReceiptLookup": _obj(["receipt", "contact"], receipt={"type": "string", "maxLength": 40},
                          contact={"type": "string", "maxLength": 200,
                                   "description": "The contact given when objecting (second factor)"}),
    "ReceiptStatus": _obj(["receipt", "notice_id", "status", "filed_at", "handled_at", "reasoning", "notice_outcome"],
                          receipt={"type": "string"}, notice_id={"type": "integer"},
                          status={"type": "string", "enum": list(ObjectionStatus)},
                          filed_at=DATETIME, handled_at=_nullable(DATETIME), reasoning=_nullable({"type": "string"}),
                          notice_outcome={"type": "string", "enum": NOTICE_OUTCOMES}),
    "ObjectionRequest": _obj(["name", "contact", "reason"], name={"type": "string"},
                             contact={"type": "string"}, reason={"type": "string"}),
    "ObjectionReceipt": _obj(["receipt", "notice_id", "status", "filed_at"], receipt={"type": "string"},
                             notice_id={"type": "integer"}, status={"type": "string"}, filed_at=DATETIME),
    "Money": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,2})?$",
              "description": "Yuan as a decimal string with at most two places, never a float"},
    "Conversion": {"allOf": [_ref("Application"), _obj(
        ["grant_number", "plan", "contract", "receipts", "deductions", "distributions"],
        grant_number={"type": "string"}, plan=_nullable({"type": "object"}), contract=_nullable({"type": "object"}),
        receipts={"type": "array", "items": {"type": "object"}}, deductions={"type": "array", "items": {"type": "object"}},
        distributions=_array("Distribution"))]},
    "IncomeLine": {"type": "object", "required": ["amount", "evidence_document_id"],
                   "description": "A receipt (received_on) or, with category, a deduction (incurred_on)",
                   "properties": {"amount": _ref("Money"), "received_on": {"type": "string", "format": "date"},
                                  "incurred_on": {"type": "string", "format": "date"},
                                  "category": {"type": "string", "enum": ["development_cost", "taxes", "maintenance",
                                                                          "service_fees", "valuation_fees"]},
                                  "evidence_document_id": {"type": "integer"}, "note": {"type": "string"}}},
    "IncomeRecorded": _obj(["id", "amount"], id={"type": "integer"}, amount=_ref("Money"),
                           received_on={"type": "string"}, category={"type": "string"}),
    "DistributionShare": _obj(["name", "mode", "amount"], name={"type": "string"},
                              username={"type": "string"}, role={"type": "string"},
                              leader_post={"type": "string", "enum": ["none", "principal", "other"]},
                              mode={"type": "string", "enum": ["cash", "equity", "contribution_share"]},
                              amount=_ref("Money"), contribution={"type": "string"}),
    "DistributionRequest": _obj(["period_from", "period_to", "net_income", "to_people", "to_office", "to_unit",
                                 "shares"],
                                period_from={"type": "string", "format": "date"},
                                period_to={"type": "string", "format": "date"},
                                net_income=_ref("Money"), to_people=_ref("Money"), to_office=_ref("Money"),
                                to_unit=_ref("Money"), shares=_array("DistributionShare")),
    "Distribution": _obj(["id", "period_from", "period_to", "received", "deducted", "net_income", "to_people",
                          "to_office", "to_unit", "status", "shares"],
                         id={"type": "integer"}, period_from={"type": "string"}, period_to={"type": "string"},
                         received=_ref("Money"), deducted=_ref("Money"), net_income=_ref("Money"),
                         to_people=_ref("Money"), to_office=_ref("Money"), to_unit=_ref("Money"),
                         status={"type": "string", "enum": ["proposed", "approved", "refused", "paid"]},
                         process_id=_nullable({"type": "integer", "description": "Its distribution process"}),
                         shares=_array("DistributionShare")),
    "Document": _obj(["id", "kind", "filename", "content_type", "sha256", "size", "created_at"],
                     id={"type": "integer"}, kind={"type": "string"}, filename={"type": "string"},
                     content_type={"type": "string"}, sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
                     size={"type": "integer"}, created_at=DATETIME),
}

ERRORS = {
    "400": "Malformed request: the body is not a JSON object, JSON nested too deeply, or a NUL character "
           "in any input (path, query, form, JSON)",
    "401": "Missing, invalid or expired bearer token",
    "403": "Visible, but the action is not yours (auditors never write)",
    "404": "Unknown id, or not yours (indistinguishable)",
    "409": "Wrong state, or someone else acted first",
    "413": "Upload larger than the limit",
    "422": "Invalid data: `errors` lists every failing field",
    "429": "Too many attempts from this client (objections today, or wrong receipt look-ups): try later",
    "500": "Stored document no longer matches its SHA-256 (tampered); no bytes are sent",
    "501": "Not available in this deployment",
    "503": "The database cannot be reached: retry after `Retry-After` seconds",
}
# Any request can be malformed (NUL, too deep) or meet an unreachable database; a body can be too large.
ALWAYS = ("400", "503")


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


def _param(name: str, schema: dict[str, Any], where: str = "path", description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


def _body(schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


def _op(summary: str, ok: str, ok_response: dict[str, Any], errors: tuple[str, ...], *,
        params: list | None = None, body: dict | None = None, public: bool = False) -> dict[str, Any]:
    every = ALWAYS + (("413",) if body else ())
    codes = tuple(sorted(set(errors) | set(every)))
    op: dict[str, Any] = {"summary": summary, "responses": {ok: ok_response, **_errors(*codes)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


APP_ID = _param("application_id", {"type": "integer"})
TASK_ID = _param("task_id", {"type": "string"})
DOC_ID = _param("document_id", {"type": "integer"})
NOTICE_ID = _param("notice_id", {"type": "integer"})
CONV_ID = _param("conversion_id", {"type": "integer"})
READ = ("401", "404")
WRITE = ("400", "401", "403", "404", "409", "422")
BINARY = {"type": "string", "format": "binary"}


def _list_params(sorts: list[str], default: str) -> list[dict[str, Any]]:
    """Every list: a JSON array of one page; the total in `X-Total-Count`, neighbour pages in `Link`."""
    keys = sorts + [f"-{k}" for k in sorts]
    return [_param("q", {"type": "string"}, "query", "Search by number, title, team member or step"),
            _param("sort", {"type": "string", "enum": keys, "default": default}, "query",
                   "Sort key; a leading '-' sorts descending"),
            _param("page", {"type": "integer", "minimum": 1, "default": 1}, "query"),
            _param("per_page", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "query")]


def _list_response(item: str) -> dict[str, Any]:
    return {"description": "One page as a JSON array (no envelope). `X-Total-Count` holds the number of rows "
                           "over all pages; `Link` (RFC 8288) gives the first, last, prev and next pages.",
            "headers": {"X-Total-Count": {"schema": {"type": "integer"}},
                        "Link": {"schema": {"type": "string"}}},
            "content": {JSON: {"schema": _array(item)}}}


def _paths() -> dict[str, Any]:
    app_json = _json_response("The application", _ref("Application"))
    return {
        "/api/v1/tokens": {"post": _op(
            "Exchange username and password for a bearer token", "201", _json_response("Token", _ref("Token")),
            ("400", "401", "403"), body=_body(_ref("TokenRequest")), public=True)},
        "/api/v1/me": {"get": _op("Who am I, with roles per unit", "200", _json_response("Me", _ref("Me")),
                                  ("401",))},
        "/api/v1/applications": {
            "get": _op("Applications I may see (newest change first)", "200", _list_response("Application"),
                       ("401",),
                       params=[_param("status", {"type": "string", "enum": STATUSES}, "query"),
                               _param("kind", {"type": "string", "enum": KINDS}, "query"),
                               *_list_params(list(queries.APPLICATION_SORTS), "-updated")]),
            "post": _op("Start an application (researchers)", "201",
                        _json_response("The application and its first task", _ref("NewApplicationResult")),
                        ("400", "401", "403", "404", "409", "422"), body=_body(_ref("NewApplication")))},
        "/api/v1/applications/{application_id}": {"get": _op(
            "One application with its current steps and history", "200",
            _json_response("Application", _ref("ApplicationDetail")), READ, params=[APP_ID])},
        "/api/v1/applications/{application_id}/withdraw": {"post": _op(
            "Withdraw (the representative, before the unit decides)", "200", app_json, ("401", "403", "404", "409"),
            params=[APP_ID])},
        "/api/v1/applications/{application_id}/attachments": {"post": _op(
            "Upload an attachment (PDF, PNG or JPEG; judged by content)", "201",
            _json_response("The stored document", _ref("Document")), ("401", "403", "404", "409", "413", "422"),
            params=[APP_ID], body=_body(_obj(["file"], file=BINARY), "multipart/form-data"))},
        "/api/v1/applications/{application_id}/documents": {"get": _op(
            "Documents of an application", "200", _json_response("List", _array("Document")), READ,
            params=[APP_ID])},
        "/api/v1/applications/{application_id}/evidence": {"get": _op(
            "Evidence pack (ZIP): auditors, the unit's tech-transfer office, the team", "200",
            {"description": "ZIP archive", "content": {"application/zip": {"schema": BINARY}}},
            ("401", "403", "404", "501"), params=[APP_ID])},
        "/api/v1/applications/{application_id}/conversions": {
            "get": _op("Conversions of a granted achievement", "200", _json_response("List", _array("Application")),
                       READ, params=[APP_ID]),
            "post": _op("Start a conversion of a completed grant (its representative or the office)", "201",
                        _json_response("The conversion", _ref("Conversion")), WRITE, params=[APP_ID])},
        "/api/v1/conversions/{conversion_id}": {"get": _op(
            "A conversion: plan, contract, income, deductions and distributions", "200",
            _json_response("Conversion", _ref("Conversion")), READ, params=[CONV_ID])},
        "/api/v1/conversions/{conversion_id}/income": {"post": _op(
            "Record a receipt or a deduction line (the office)", "201",
            _json_response("Recorded", _ref("IncomeRecorded")), WRITE, params=[CONV_ID], body=_body(_ref("IncomeLine")))},
        "/api/v1/conversions/{conversion_id}/distributions": {"post": _op(
            "Propose a distribution of a period's net income (the office; §三(六) checked)", "201",
            _json_response("The plan", _ref("Distribution")), WRITE, params=[CONV_ID],
            body=_body(_ref("DistributionRequest")))},
        "/api/v1/documents/{document_id}": {"get": _op(
            "Download a stored document, verified against its SHA-256", "200",
            {"description": "The bytes; ETag is the quoted SHA-256",
             "headers": {"ETag": {"schema": {"type": "string"}},
                         "Content-Disposition": {"schema": {"type": "string"}}},
             "content": {"*/*": {"schema": BINARY}}},
            ("401", "404", "500"), params=[DOC_ID])},
        "/api/v1/tasks": {"get": _op(
            "Ready tasks for me, including my roles' unclaimed queues (oldest first)", "200",
            _list_response("Task"), ("401",),
            params=[_param("kind", {"type": "string", "enum": KINDS}, "query"),
                    _param("step", {"type": "string"}, "query", "BPMN id of the step, e.g. review"),
                    *_list_params(list(queries.TASK_SORTS), "created")])},
        "/api/v1/tasks/{task_id}": {"get": _op(
            "A task with its form schema and current data", "200", _json_response("Task", _ref("TaskDetail")),
            READ, params=[TASK_ID])},
        "/api/v1/tasks/{task_id}/claim": {"post": _op(
            "Claim a queue task", "200", _json_response("The task", _ref("Task")), ("401", "403", "404", "409"),
            params=[TASK_ID])},
        "/api/v1/tasks/{task_id}/complete": {"post": _op(
            "Submit the task's form", "200", app_json, WRITE, params=[TASK_ID], body=_body(_ref("FormData")))},
        "/api/v1/publicity": {"get": _op(
            "Notices under publicity now (public; the term ending soonest first)", "200", _list_response("Notice"), (),
            params=[_param("unit", {"type": "string"}, "query", "Unit code"),
                    *_list_params(list(queries.NOTICE_SORTS), "ends")], public=True)},
        "/api/v1/publicity/archive": {"get": _op(
            "Past notices of every kind with their outcome (public; the latest end first)", "200",
            _list_response("ArchivedNotice"), (),
            params=[_param("unit", {"type": "string"}, "query", "Unit code"),
                    _param("kind", {"type": "string", "enum": list(NoticeKind)}, "query"),
                    *_list_params(list(queries.NOTICE_SORTS), "-ends")], public=True)},
        "/api/v1/publicity/{notice_id}": {"get": _op(
            "One notice, open or past, with its outcome (public; never gone once posted)", "200",
            _json_response("Notice", _ref("ArchivedNotice")), ("404",), params=[NOTICE_ID], public=True)},
        "/api/v1/publicity/receipts": {"post": _op(
            "An objection's processing state: its receipt number and the contact given when filing (public; "
            "throttled like sign-in: 429 while locked; 404 for a wrong number or contact alike)", "200",
            _json_response("State", _ref("ReceiptStatus")), ("404", "422", "429"), body=_body(_ref("ReceiptLookup")),
            public=True)},
        "/api/v1/publicity/{notice_id}/objections": {"post": _op(
            "File an objection (public)", "201", _json_response("Receipt", _ref("ObjectionReceipt")),
            ("400", "404", "409", "422", "429"), params=[NOTICE_ID], body=_body(_ref("ObjectionRequest")),
            public=True)},
        "/api/v1/units/{code}/certificate": {"get": _op(
            "The unit's signing certificate (PEM, public): trust it to validate the PDFs' signatures", "200",
            {"description": "PEM certificate(s): the unit's CA, or an imported certificate with its chain",
             "content": {"application/x-pem-file": {"schema": {"type": "string"}}}},
            ("404",), params=[_param("code", {"type": "string"}, description="Unit code, e.g. SZDU")], public=True)},
        "/api/v1/incidents": {"get": _op(
            "Failed timer steps (incidents); administrators of every unit", "200",
            _json_response("List, open first", _array("Incident")), ("401", "403"),
            params=[_param("all", {"type": "string", "enum": ["0", "1", "true", "false"]}, "query",
                           "1: include resolved incidents")])},
        "/api/v1/incidents/{incident_id}/retry": {"post": _op(
            "Retry a failed timer step now (administrators); resolved_at is set if it went through", "200",
            _json_response("The incident", _ref("Incident")), ("401", "403", "404"),
            params=[_param("incident_id", {"type": "integer"})])},
        "/api/v1/openapi.json": {"get": _op(
            "This document", "200", _json_response("OpenAPI document", {"type": "object"}), (), public=True)},
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "职务科技成果赋权 API", "version": "1.0.0",
                 "description": "Rights-grant applications for service inventions. Messages are in Chinese."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {**_paths(), **_registry_paths()},
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "POST /api/v1/tokens"}},
            "schemas": {**SCHEMAS, **REGISTRY_SCHEMAS},
            "responses": {**{f"E{code}": _json_response(text, _ref("Error")) for code, text in ERRORS.items()},
                          "E503": {**_json_response(ERRORS["503"], _ref("Error")),
                                   "headers": {"Retry-After": {"required": True, "schema": {"type": "string"},
                                                               "description": "Seconds"}}}},
        },
    }


# --- the registry and the statistics (webapp/blueprints/api_registry.py) -------------------------

REGISTRY_STATES = list(catalogue.REGISTRY_STATES)
IP_TYPES = ["patent", "software_copyright", "ic_layout", "plant_variety", "biomedical_variety", "technical_secret",
            "joint_application_right"]
MODES = ["transfer", "licence", "equity", "abandoned", "other"]
DAY = {"type": "string", "format": "date", "description": "Shanghai calendar date"}
YUAN = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "Yuan, two decimals"}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
REGISTRY_SCHEMAS: dict[str, Any] = {
    "Inventor": _obj(["username", "name"], username={"type": "string"}, name={"type": "string"}),
    "RegistryEntry": _obj(
        ["id", "unit", "title", "ip_type", "ip_numbers", "status", "registered_on", "inventors"],
        id={"type": "integer"}, unit={"type": "string"}, title={"type": "string"},
        ip_type={"type": "string", "enum": IP_TYPES}, ip_numbers={"type": "array", "items": {"type": "string"}},
        funding_source={"type": "string", "enum": ["fiscal", "commissioned", "other"]}, registered_on=DAY,
        status={"type": "string", "enum": REGISTRY_STATES, "description": " / ".join(catalogue.REGISTRY_STATES.values())},
        grant_kind=_nullable({"type": "string", "enum": list(catalogue.GRANT_KINDS)}), granted_on=_nullable(DAY),
        left_on=_nullable(DAY), left_mode=_nullable({"type": "string", "enum": MODES}),
        left_contract=_nullable({"type": "string"}), venue_registered_on=_nullable(DAY),
        fund_pushed_on=_nullable(DAY), application_id=_nullable({"type": "integer"}),
        inventors=_array("Inventor")),
    "RegistryHistory": _obj(["at", "actor", "action", "changes"], at=DATETIME, actor={"type": "string"},
                            action={"type": "string"}, application_id=_nullable({"type": "integer"}),
                            changes={"type": "object", "description": "field: [before, after]"}),
    "RegistryEntryDetail": {"allOf": [_ref("RegistryEntry"), _obj(
        ["history", "applications"], history=_array("RegistryHistory"),
        applications={"type": "array", "items": _obj(["id", "number", "kind", "status"], id={"type": "integer"},
                                                     number={"type": "string"}, kind={"type": "string"},
                                                     status={"type": "string"})})]},
    "RegistryPage": _obj(["items", "total", "page", "per_page"], items=_array("RegistryEntry"),
                         total={"type": "integer"}, page={"type": "integer"}, per_page={"type": "integer"}),
    "NewRegistryEntry": _obj(
        ["unit", "title", "ip_type", "funding_source", "inventors"], unit={"type": "string", "description": "Unit code"},
        title={"type": "string", "maxLength": 200}, ip_type={"type": "string", "enum": IP_TYPES},
        ip_numbers={"type": "array", "items": {"type": "string"}},
        funding_source={"type": "string", "enum": ["fiscal", "commissioned", "other"]},
        inventors={"type": "array", "items": {"type": "string"}, "description": "Usernames"},
        registered_on=DAY),
    "Statistics": _obj(
        ["year", "unit", "applications", "granted", "converted", "registry", "income"],
        year={"type": "integer"}, unit=_nullable({"type": "string", "description": "null: every unit"}),
        applications={**COUNTS, "description": "Applications started in the year, by current status"},
        applications_by_kind=COUNTS,
        granted={**COUNTS, "description": "Grants completed in the year, by kind"},
        grants_per_month={"type": "array", "items": {"type": "integer"}, "minItems": 12, "maxItems": 12},
        steps={"type": "array", "items": _obj(["step", "count", "median_days", "p90_days"], step={"type": "string"},
                                              name={"type": "string"}, count={"type": "integer"},
                                              median_days=_nullable({"type": "number"}),
                                              p90_days=_nullable({"type": "number"}))},
        objections=_obj(["notices", "filed", "upheld"], notices={"type": "integer"}, filed={"type": "integer"},
                        upheld={"type": "integer"}),
        registry={**COUNTS, "description": "The registry today, by state"},
        registry_movements={"type": "object"},
        converted={**COUNTS, "description": "Converted in the year, by mode"},
        income=_obj(["received", "net", "to_inventors", "to_office"], received=YUAN, net=YUAN, to_inventors=YUAN,
                    to_office=YUAN, to_unit=YUAN),
        income_source={"type": "string", "description": "Zero until the conversion module records income"}),
}


def _registry_paths() -> dict[str, Any]:
    query = lambda name, schema, text="": _param(name, schema, "query", text)  # noqa: E731
    return {
        "/api/v1/registry": {
            "get": _op("Registry entries I may see (office, auditors, city auditor; researchers their own)", "200",
                       _json_response("A page", _ref("RegistryPage")), ("401", "422"), params=[
                           query("q", {"type": "string"}, "Title, IP number or inventor"),
                           query("state", {"type": "string", "enum": REGISTRY_STATES}),
                           query("ip_type", {"type": "string", "enum": IP_TYPES}),
                           query("grant_kind", {"type": "string", "enum": list(catalogue.GRANT_KINDS)}),
                           query("year", {"type": "integer", "minimum": 1980, "maximum": 2999}, "Year registered"),
                           query("unit", {"type": "string"}, "Unit code"),
                           query("sort", {"type": "string", "enum": ["registered_on", "-registered_on", "title",
                                                                     "-title", "status", "-updated_at"]}),
                           query("page", {"type": "integer", "minimum": 1}),
                           query("per_page", {"type": "integer", "minimum": 1, "maximum": 200})]),
            "post": _op("Register an achievement (the unit's tech-transfer office)", "201",
                        _json_response("The entry", _ref("RegistryEntryDetail")), ("400", "401", "403", "422"),
                        body=_body(_ref("NewRegistryEntry")))},
        "/api/v1/registry/{entry_id}": {"get": _op(
            "One entry with its history and applications", "200",
            _json_response("The entry", _ref("RegistryEntryDetail")), READ,
            params=[_param("entry_id", {"type": "integer"})])},
        "/api/v1/statistics": {"get": _op(
            "A unit's (or, for the city auditor, every unit's) figures for a year", "200",
            _json_response("Figures", _ref("Statistics")), ("401", "403", "404", "422"), params=[
                query("unit", {"type": "string"}, "Unit code; omitted: every unit (city auditor only)"),
                query("year", {"type": "integer", "minimum": 1980, "maximum": 2999}, "Default: this year")])},
    }
