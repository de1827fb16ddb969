"""The task list, the public board with its archive and receipt look-up, the objection form and
a task form with several errors, at 1280 px and on a 390 px phone: screenshots, and nothing
sticks out sideways (finding 1's check applied to the pages of finding 5 and 6)."""
from __future__ import annotations

import re

import pytest

from tests import board_seed

from .conftest import Person, assert_no_horizontal_overflow

pytestmark = pytest.mark.browser


def _check(person: Person, name: str) -> None:
    person.shot(name)
    assert_no_horizontal_overflow(person.page)


def test_board_archive_and_forms_with_errors_fit_the_screen(browser, live, driver):
    base, _app = live
    assert driver.to_publicity()
    board_seed.past_notices(driver)
    for width in (1280, 390):
        _pages_at(browser, base, width)


def _pages_at(browser, base: str, width: int) -> None:
    researcher = Person(browser, base, width).login("researcher1")
    researcher.go("/tasks")
    assert researcher.page.locator('[data-testid="task-table"] tbody tr').count() >= 5
    _check(researcher, f"board-{width}-task-list")

    researcher.open_task("draft")
    researcher.fill({"achievement.title": "", "team_share": "八十", "members.0.share": "x"})
    researcher.submit()
    summary = researcher.page.locator('[data-testid="error-summary"]')
    links = summary.locator("a[data-error-link]")
    assert links.count() >= 4
    for i in range(links.count()):  # every item leads to an element of the page
        target = links.nth(i).get_attribute("href")[1:]
        assert researcher.page.locator(f"#{target}").count() == 1, target
    _check(researcher, f"board-{width}-task-form-errors")
    summary.locator('a[href="#f-members-0-share"]').click()
    assert researcher.page.evaluate("document.activeElement.id") == "f-members-0-share"
    researcher.close()

    visitor = Person(browser, base, width)
    visitor.go("/publicity")
    assert visitor.page.locator('[data-testid="notice"]').count() == 1
    assert visitor.page.locator('[data-testid="lookup-form"]').is_visible()
    _check(visitor, f"board-{width}-board")
    visitor.page.click('[data-testid="archive-tab"]')
    rows = visitor.page.locator('[data-testid="archived-notice"]')
    assert rows.count() == 5
    assert "公示期满，异议经核查不成立" in visitor.page.text_content('[data-testid="archive-table"]')
    _check(visitor, f"board-{width}-archive")
    rows.first.locator("a").first.click()
    assert visitor.page.locator('[data-testid="notice-outcome"]').get_attribute("data-outcome") == "no_objection"
    _check(visitor, f"board-{width}-archived-notice")

    visitor.go("/publicity")
    visitor.page.click('[data-testid="notice"] a:has-text("提出异议")')
    visitor.fill({"reason": "太短"})
    visitor.page.set_input_files("#f-attachment", files=[{"name": "x.txt", "mimeType": "text/plain",
                                                          "buffer": b"not a document"}])
    visitor.page.click('[data-testid="file-objection"]')
    summary = visitor.page.locator('[data-testid="error-summary"]')
    assert [a.get_attribute("href") for a in summary.locator("a").all()] == \
        ["#f-name", "#f-contact", "#f-reason", "#f-attachment"]
    assert visitor.page.locator(".field-error").count() == 4
    _check(visitor, f"board-{width}-objection-errors")
    summary.locator('a[href="#f-contact"]').click()
    assert visitor.page.evaluate("document.activeElement.id") == "f-contact"
    visitor.fill({"name": "赵强", "contact": "13800000000", "reason": "本人参与了该成果的样机研制，但未列入成果完成人名单。"})
    visitor.page.set_input_files("#f-attachment", files=[])
    visitor.page.click('[data-testid="file-objection"]')
    receipt = visitor.page.text_content('[data-testid="receipt"]').strip()
    assert re.fullmatch(r"YY\d{8}-[0-9A-F]{8}", receipt)
    visitor.close()

    other = Person(browser, base, width)  # someone else's browser: number and contact needed
    other.go("/publicity/lookup")
    other.fill({"receipt": receipt, "contact": "138 0000 0000"})
    other.page.click('[data-testid="lookup-submit"]')
    assert other.page.locator('[data-testid="receipt-status"]').get_attribute("data-status") == "open"
    _check(other, f"board-{width}-receipt-status")
    other.close()
