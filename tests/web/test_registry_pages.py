"""The registry pages, exports, dashboard and annual report as people use them, with who sees what."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from tests import registry_seed
from tests.driver import PASSWORD
from workflows.models import RegistryEntry, Unit
from workflows.people import accounts
from workflows.people.access import SystemActor
from workflows.reporting import registry, statistics

from .conftest import login, text_of


def text_of_html(html: str) -> str:
    import re
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))

YEAR = registry_seed.YEAR


@pytest.fixture
def city(driver):
    driver.run(lambda s: accounts.create_user(s, "city1", "市科技局审计", PASSWORD, "", [("city_auditor", None)], actor=SystemActor("tests")))
    return "city1"


def register_form(client, **changes):
    data = {"unit": "SZDU", "title": "一种=SUM(A1)样品", "ip_type": "patent", "ip_numbers": "ZL2026-1\nZL2026-2",
            "inventors": "researcher1\nresearcher2", "funding_source": "fiscal", "registered_on": "2026-03-02"}
    data.update(changes)
    return client.post("/registry/new", data=data)


def test_office_registers_edits_flags_and_marks_converted(client, driver):
    login(client, "tto1")
    response = register_form(client)
    assert response.status_code == 302
    entry_url = response.headers["Location"]
    page = text_of(client.get(entry_url))
    assert "一种=SUM(A1)样品" in page and "在库" in page and "李明" in page and "登记入库" in page
    assert client.post(entry_url + "/edit", data={"title": "样品芯片", "ip_type": "patent",
                                                  "ip_numbers": "ZL2026-1", "inventors": "researcher1",
                                                  "funding_source": "fiscal",
                                                  "registered_on": "2026-03-02"}).status_code == 302
    assert client.post(entry_url + "/flag", data={"flag": "venue", "on": "2026-04-01"}).status_code == 302
    assert client.post(entry_url + "/leave", data={"state": "converted", "on": "2026-05-01", "mode": "licence",
                                                   "contract": "HT-9"}).status_code == 302
    page = text_of(client.get(entry_url))
    assert "已转化" in page and "HT-9" in page and "2026-04-01" in page
    assert "成果名称：一种=SUM(A1)样品 → 样品芯片" in page  # the history shows what changed
    with driver.sessions() as s:
        entry = s.query(RegistryEntry).one()
        assert (entry.status, entry.left_mode, entry.venue_registered_on) == ("converted", "licence", "2026-04-01")


def test_form_errors_are_shown_and_nothing_is_saved(client, driver):
    login(client, "tto1")
    response = register_form(client, title="", inventors="nobody")
    assert response.status_code == 422
    assert "请填写成果名称" in text_of(response) and "nobody" in text_of(response)
    with driver.sessions() as s:
        assert s.query(RegistryEntry).count() == 0


def test_exports_match_the_list(client, driver):
    login(client, "tto1")
    register_form(client)
    register_form(client, title="第二项", ip_numbers="ZL2026-3", ip_type="software_copyright")
    with driver.sessions() as s:
        tto = driver.user(s, "tto1")
        want = [registry.export_row(e) for e in s.execute(registry.search(tto, ip_type="patent")).scalars()]
    book = load_workbook(io.BytesIO(client.get("/registry/export.xlsx?ip_type=patent").data))
    cells = [[c.value for c in row] for row in book.active.iter_rows()]
    assert cells[0] == registry.EXPORT_HEADERS
    assert [[("" if v is None else v) for v in row] for row in cells[1:]] == \
        [[("'" + v if isinstance(v, str) and v[:1] == "=" else v) for v in row] for row in want]
    assert cells[1][2] == "一种=SUM(A1)样品" and len(cells) == 2
    raw = client.get("/registry/export.csv").data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    assert rows[0] == registry.EXPORT_HEADERS and len(rows) == 3
    assert {r[2] for r in rows[1:]} == {"一种=SUM(A1)样品", "第二项"}


def test_search_and_pagination_on_the_page(client, driver):
    login(client, "tto1")
    for i in range(23):
        register_form(client, title=f"成果{i:02d}", ip_numbers=f"ZL-{i}", registered_on=f"2026-01-{i + 1:02d}")
    page = text_of(client.get("/registry"))
    assert "(23)" in page and "成果22" in page and "成果02" not in page and "第 1 / 2 页" in page
    assert "成果02" in text_of(client.get("/registry?page=2"))
    assert "(1)" in text_of(client.get("/registry?q=ZL-7"))


def test_who_sees_which_entries_and_who_may_change(client, driver, city):
    login(client, "tto1")
    register_form(client, inventors="researcher1")
    register_form(client, title="王芳的成果", ip_numbers="ZL-W", inventors="researcher2")
    with driver.sessions() as s:
        mine, others = [e.id for e in s.query(RegistryEntry).order_by(RegistryEntry.id)]
    client.post("/logout")
    login(client, "researcher1")
    page = text_of(client.get("/registry"))
    assert "(1)" in page and "王芳的成果" not in page
    assert client.get(f"/registry/{others}").status_code == 404
    assert client.get(f"/registry/{mine}").status_code == 200
    assert client.get("/statistics").status_code == 403
    client.post("/logout")
    login(client, "auditor2")  # the other unit's auditor
    assert "(0)" in text_of(client.get("/registry")) and client.get(f"/registry/{mine}").status_code == 404
    assert client.get("/statistics?unit=SZDU").status_code == 404
    client.post("/logout")
    login(client, city)
    assert "(2)" in text_of(client.get("/registry"))
    assert "编辑" not in text_of(client.get(f"/registry/{mine}"))
    assert client.get("/registry/new").status_code == 403
    assert client.post(f"/registry/{mine}/flag", data={"flag": "venue", "on": "2026-04-01"}).status_code == 403
    assert client.post(f"/registry/{mine}/leave", data={"state": "left", "on": "2026-04-01", "mode": "other",
                                                        "contract": ""}).status_code == 403
    with driver.sessions() as s:
        assert s.get(RegistryEntry, mine).status == "registered" and s.get(RegistryEntry, mine).venue_registered_on is None


def test_dashboard_shows_the_figures_and_their_csv(client, driver, city):
    rows = driver.run(registry_seed.seed)
    entries = driver.run(registry_seed.seed_registry)
    want = registry_seed.expected(rows, entries, "SZDU")
    login(client, "decider1")
    page = client.get(f"/statistics?year={YEAR}").get_data(as_text=True)
    assert 'id="chart-data"' in page and "echarts.common.min.js" in page and "<script>" not in page
    with driver.sessions() as s:
        figures = statistics.compute(s, s.query(Unit).filter_by(code="SZDU").one().id, YEAR)
    assert figures["applications"] == want["applications"]
    for chart in statistics.chart_tables(figures):
        response = client.get(f"/statistics/{chart['key']}.csv?unit=SZDU&year={YEAR}")
        got = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
        assert got[0] == chart["headers"] and got[1:] == [[str(v) for v in r] for r in chart["rows"]]
    text = text_of(client.get(f"/statistics?year={YEAR}"))
    assert f"已完成 {want['applications']['completed']}" in text
    client.get("/locale/en")
    english = client.get(f"/statistics?year={YEAR}").get_data(as_text=True)
    assert "Applications by status" in text_of_html(english) and '"Completed"' in english  # tables and chart data
    client.get("/locale/zh_CN")
    client.post("/logout")
    login(client, city)
    text = text_of(client.get(f"/statistics?year={YEAR}"))
    assert "全市" in text and "SZDI" in text and "SZDU" in text
    total = sum(registry_seed.expected(rows, entries, None)["applications"].values())
    assert "申请（按状态）" in text
    with driver.sessions() as s:
        assert sum(statistics.compute(s, None, YEAR)["applications"].values()) == total


def test_annual_report_page_and_files(client, driver):
    driver.run(registry_seed.seed)
    driver.run(registry_seed.seed_registry)
    login(client, "tto1")
    text = text_of(client.get(f"/statistics/report?unit=SZDU&year={YEAR}"))
    assert "成果库变动" in text and "成果清单" in text
    pdf = client.get(f"/statistics/report.pdf?unit=SZDU&year={YEAR}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert "filename*=UTF-8''SZDU-2026-" in pdf.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(client.get(f"/statistics/report.xlsx?unit=SZDU&year={YEAR}").data))
    assert book.sheetnames[0] == "成果库变动"
    client.post("/logout")
    login(client, "auditor2")
    assert client.get(f"/statistics/report?unit=SZDU&year={YEAR}").status_code == 404


def test_annual_report_command(app, driver, tmp_path):
    driver.run(registry_seed.seed_registry)
    result = app.test_cli_runner().invoke(args=["annual-report", "--unit", "SZDU", "--year", str(YEAR),
                                                "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    pdf = tmp_path / "out" / f"SZDU-{YEAR}-年度单列管理报告.pdf"
    xlsx = tmp_path / "out" / f"SZDU-{YEAR}-年度单列管理报告.xlsx"
    assert pdf.read_bytes().startswith(b"%PDF") and load_workbook(xlsx).sheetnames
    from workflows import settings  # signed by the unit, like its notices
    from workflows.evidence import pki, signing
    roots = pki.trust_roots(settings.get().instance_dir, "SZDU", "深圳示范大学")
    assert signing.problems(pdf.read_bytes(), roots, expected=1) == []
    bad = app.test_cli_runner().invoke(args=["annual-report", "--unit", "NOPE", "--year", "2026", "--out",
                                             str(tmp_path)])
    assert bad.exit_code != 0 and "未知单位" in bad.output


def test_city_auditor_is_created_from_the_command_line(app):
    result = app.test_cli_runner().invoke(args=["create-user", "city2", "--name", "市审计", "--role", "city_auditor",
                                                "--password", PASSWORD])
    assert result.exit_code == 0, result.output


def test_city_auditor_reads_every_units_applications_and_changes_nothing(client, driver, city):
    szdu = driver.start()
    second = driver.start(who="researcher9")
    driver.draft(szdu)
    task_id = driver.task_id(szdu, "consent", "researcher2")
    before = driver.status(szdu)
    login(client, city)
    for app_id in (szdu, second):
        page = client.get(f"/applications/{app_id}")
        assert page.status_code == 200 and "@example.org" not in page.get_data(as_text=True)  # no contact data
    assert client.post(f"/applications/{szdu}/withdraw").status_code in (403, 409)
    assert client.get(f"/applications/{szdu}/evidence").status_code == 403
    assert client.post(f"/tasks/{task_id}", data={"agree": "true"}).status_code in (403, 404)
    assert client.post(f"/tasks/{task_id}/claim").status_code in (403, 404)
    assert driver.status(szdu) == before and driver.task_id(szdu, "consent", "researcher2") == task_id


def test_the_annual_report_pdf_is_laid_out_in_a_child_process(client, driver, monkeypatch):
    """A big unit's report takes ~700 MB to lay out: the server must not keep that (issue 10)."""
    import weasyprint

    def not_here(*_args, **_kwargs):
        raise AssertionError("laid out in the server process")
    driver.run(registry_seed.seed_registry)
    login(client, "tto1")
    monkeypatch.setattr(weasyprint.HTML, "render", not_here)
    pdf = client.get(f"/statistics/report.pdf?unit=SZDU&year={YEAR}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_check_statistics_command_finds_and_repairs_a_wrong_bin(app, driver):
    """`grants check-statistics` recounts the duration bins from the rows: exit 0 when they agree,
    1 naming the bin when one was changed behind the ORM, and --rebuild rewrites them."""
    from sqlalchemy import update

    from workflows.models import DurationBin
    driver.run(registry_seed.seed)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["check-statistics"])
    assert ok.exit_code == 0 and "一致" in ok.output, ok.output
    driver.run(lambda s: s.execute(update(DurationBin).where(DurationBin.scope_id == 0).values(n=DurationBin.n + 1)))
    bad = runner.invoke(args=["check-statistics"])
    assert bad.exit_code == 1 and "范围 0" in bad.output, bad.output
    fixed = runner.invoke(args=["check-statistics", "--rebuild"])
    assert fixed.exit_code == 0 and "已按记录重建" in fixed.output, fixed.output
    assert runner.invoke(args=["check-statistics"]).exit_code == 0


def test_check_statistics_command_finds_and_repairs_a_lost_ip_claim(app, driver):
    """The claims on IP numbers (ip_claims) are recounted from the applications and registry
    entries too: a claim deleted behind the ORM is named, and --rebuild writes it back."""
    from sqlalchemy import delete, func, select

    from workflows.models import IpClaim
    driver.run(registry_seed.seed)
    driver.draft(driver.start())  # an open application's claim
    with driver.sessions() as s:
        claims = s.execute(select(func.count()).select_from(IpClaim)).scalar_one()
        victim = s.execute(select(IpClaim.id, IpClaim.ip_number).order_by(IpClaim.id)).first()
    assert claims and victim is not None
    runner = app.test_cli_runner()
    driver.run(lambda s: s.execute(delete(IpClaim).where(IpClaim.id == victim.id)))
    bad = runner.invoke(args=["check-statistics"])
    assert bad.exit_code == 1 and f"编号 {victim.ip_number}" in bad.output, bad.output
    fixed = runner.invoke(args=["check-statistics", "--rebuild"])
    assert fixed.exit_code == 0 and "已按记录重建" in fixed.output, fixed.output
    assert runner.invoke(args=["check-statistics"]).exit_code == 0
    with driver.sessions() as s:
        assert s.execute(select(func.count()).select_from(IpClaim)).scalar_one() == claims


def test_the_spreadsheets_are_built_in_a_child_process(client, driver, monkeypatch):
    """openpyxl keeps every cell of a workbook until it is saved (the annual report at 100k: ~20 MB
    the server kept, issue 10): the report's and the registry's XLSX are built in a child process,
    with the same sheets and cells as `sheets.xlsx` builds here."""
    import openpyxl

    from workflows.reporting import annual_report, sheets

    def not_here(*_args, **_kwargs):
        raise AssertionError("a workbook built in the server process")
    driver.run(registry_seed.seed)
    driver.run(registry_seed.seed_registry)
    login(client, "tto1")
    monkeypatch.setattr(openpyxl, "Workbook", not_here)
    report = client.get(f"/statistics/report.xlsx?unit=SZDU&year={YEAR}")
    export = client.get("/registry/export.xlsx")
    monkeypatch.undo()
    assert report.status_code == export.status_code == 200
    with driver.sessions() as s:
        built = annual_report.build(s, None, "SZDU", YEAR)
    here = sheets.xlsx([(t["title"].split("、", 1)[-1], t["headers"], t["rows"]) for t in built["tables"]])

    def cells(data: bytes) -> list[list[list[object]]]:
        book = load_workbook(io.BytesIO(data))
        return [[list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets]
    assert cells(report.data) == cells(here) and len(cells(report.data)[0]) > 1
    assert len(cells(export.data)[0]) > 1  # headers and the registry's rows


def test_the_annual_report_pdf_is_signed_in_the_child_too(client, driver, monkeypatch):
    """Signing imports pyHanko (~35 MB the server kept, issue 10): the report is signed where it
    is laid out, in the child, with the unit's key from the server's instance directory."""
    from workflows.evidence import signing

    def not_here(*_args, **_kwargs):
        raise AssertionError("signed in the server process")
    driver.run(registry_seed.seed_registry)
    login(client, "tto1")
    monkeypatch.setattr(signing, "sign_pdf", not_here)
    pdf = client.get(f"/statistics/report.pdf?unit=SZDU&year={YEAR}")
    monkeypatch.undo()
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    checks = signing.validate(pdf.data, [])  # no trust roots given: intact and valid, not trusted
    assert [c.field for c in checks] == ["Sig_unit"] and all(c.intact and c.valid for c in checks)
