"""The registry, the dashboard (charts drawn by ECharts) and the annual report page in Chromium."""
from __future__ import annotations

import pytest

from tests import registry_seed
from tests.driver import PASSWORD
from workflows.people import accounts
from workflows.people.access import SystemActor

from .conftest import Person

pytestmark = pytest.mark.browser
YEAR = registry_seed.YEAR


def test_registry_dashboard_and_report(browser, live, driver):
    base, _app = live
    driver.run(registry_seed.seed)
    driver.run(registry_seed.seed_registry)
    driver.run(lambda s: accounts.create_user(s, "city1", "市科技局审计", PASSWORD, "", [("city_auditor", None)], actor=SystemActor("tests")))
    errors: list[str] = []

    office = Person(browser, base).login("tto1")
    office.page.on("pageerror", lambda exc: errors.append(str(exc)))
    office.page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    office.go("/registry/new")
    office.fill({"title": "一种柔性电池", "ip_type": "patent", "ip_numbers": "ZL2026-B1",
                 "inventors": "researcher1\nresearcher2", "funding_source": "fiscal"})
    office.page.click('form[data-testid="registry-form"] button[type=submit]')
    office.page.wait_for_selector('[data-testid="entry-history"]')
    office.page.fill('[data-testid="flag-form"] input[name="on"]', f"{YEAR}-11-02")
    office.page.click('[data-testid="flag-form"] button')
    office.page.wait_for_selector('[data-testid="flag-venue"]:has-text("2026-11-02")')
    office.shot("registry-entry")
    office.go(f"/registry?year={YEAR}")
    assert "一种柔性电池" in office.page.text_content('[data-testid="registry-table"]')
    office.shot("registry-list")

    office.go(f"/statistics?year={YEAR}")
    office.page.wait_for_selector('[data-chart="applications"][data-rendered="true"]')
    for key in ("applications", "grants_per_month", "steps", "registry"):
        box = office.page.locator(f'[data-chart="{key}"] canvas').first
        assert box.is_visible()
        painted = box.evaluate("""c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i]) n++; } return n; }""")
        assert painted > 1000, (key, painted)
    office.shot("dashboard-unit")

    office.page.click('[data-testid="report-link"]')
    office.page.wait_for_selector('[data-testid="report-registry_movements"]')
    office.shot("annual-report")
    with office.page.expect_download() as download:
        office.page.click('[data-testid="report-pdf"]')
    assert download.value.suggested_filename.endswith(".pdf")
    office.close()

    city = Person(browser, base).login("city1")
    city.go(f"/statistics?year={YEAR}")
    city.page.wait_for_selector('[data-chart="registry"][data-rendered="true"]')
    units = city.page.text_content('[data-testid="table-units"]')
    assert "SZDU" in units and "SZDI" in units
    city.shot("dashboard-city")
    city.close()
    assert errors == []
