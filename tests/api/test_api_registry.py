"""REST: the registry (list, one, register) and the statistics, with who may read and write."""
from __future__ import annotations

import pytest

from tests import registry_seed
from tests.driver import Driver
from workflows.people import accounts
from workflows.people.access import SystemActor

from .conftest import PASSWORD

ENTRY = {"unit": "SZDU", "title": "一种传感器", "ip_type": "patent", "ip_numbers": ["ZL-API-1"],
         "inventors": ["researcher1"], "funding_source": "fiscal", "registered_on": "2026-02-01"}


@pytest.fixture
def drive(app, api) -> Driver:
    api.tokens.pop("city1", None)  # a new account each test: a cached token would not verify
    d = Driver(app.extensions["grants_sessions"])
    d.run(lambda s: accounts.create_user(s, "city1", "市科技局审计", PASSWORD, "", [("city_auditor", None)], actor=SystemActor("tests")))
    return d


def test_office_registers_and_readers_list(api, drive):
    created = api.ok(api.post("/registry", "tto1", ENTRY), 201)
    assert created["status"] == "registered" and created["history"][0]["action"] == "register"
    api.ok(api.post("/registry", "tto1", {**ENTRY, "title": "王芳的", "ip_numbers": ["ZL-API-2"],
                                          "inventors": ["researcher2"]}), 201)
    page = api.ok(api.get("/registry?per_page=1&sort=title", "auditor1"))
    assert page["total"] == 2 and len(page["items"]) == 1
    assert [e["title"] for e in api.ok(api.get("/registry", "researcher1"))["items"]] == ["一种传感器"]
    assert api.ok(api.get("/registry?q=ZL-API-2", "city1"))["total"] == 1
    assert api.ok(api.get("/registry", "auditor2"))["total"] == 0
    assert api.get(f"/registry/{created['id']}", "auditor2").status_code == 404
    assert api.ok(api.get(f"/registry/{created['id']}", "researcher1"))["inventors"][0]["username"] == "researcher1"


@pytest.mark.parametrize(("who", "status"), [("city1", 403), ("auditor1", 403), ("tto2", 403), ("researcher1", 403)])
def test_only_the_office_registers(api, drive, who, status):
    assert api.post("/registry", who, ENTRY).status_code == status
    assert api.ok(api.get("/registry", "city1"))["total"] == 0


def test_invalid_entry_lists_every_field(api, drive):
    body = api.post("/registry", "tto1", {"unit": "SZDU", "title": ""}).get_json()
    assert {"title", "ip_type", "funding_source", "inventors"} <= {e["field"] for e in body["errors"]}


def test_statistics_keys_and_access(api, drive):
    drive.run(registry_seed.seed)
    drive.run(registry_seed.seed_registry)
    body = api.ok(api.get("/statistics?unit=SZDU&year=2026", "tto1"))
    assert {"applications", "granted", "converted", "registry", "income"} <= set(body)
    assert body["income"] == {"received": "0.00", "net": "0.00", "to_inventors": "0.00", "to_office": "0.00",
                              "to_unit": "0.00"}
    assert sum(body["applications"].values()) == sum(
        1 for r in registry_seed.plan() if r["unit"] == "SZDU" and r["created"].year == 2026)
    assert api.get("/statistics?unit=SZDU&year=2026", "auditor2").status_code == 403
    assert api.get("/statistics?year=2026", "auditor1").status_code == 403
    assert api.get("/statistics?unit=NOPE", "city1").status_code == 404
    everyone = api.ok(api.get("/statistics?year=2026", "city1"))
    assert everyone["unit"] is None and sum(everyone["registry"].values()) == 18
