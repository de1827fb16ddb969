"""The Content-Security-Policy in a real browser: the diagram (bpmn-js), the app's own script and
the error page's back link all work, and Chromium reports no CSP violation (the autouse check in
conftest.py); a page that tries inline script is refused, proving the policy is enforced."""
from __future__ import annotations

import pytest

from .conftest import CSP_VIOLATIONS, Person

pytestmark = pytest.mark.browser


def test_pages_work_under_the_policy_and_inline_script_is_refused(browser, live, driver):
    base, _app = live
    app_id = driver.to_publicity()
    tto = Person(browser, base).login("tto1")
    tto.go(f"/applications/{app_id}")
    tto.page.wait_for_selector('#diagram[data-rendered="true"]')
    assert tto.page.locator("#diagram svg").count() >= 1
    tto.go("/tasks")
    tto.go("/no-such-page")
    tto.page.click("a[data-history-back]")
    tto.page.wait_for_url("**/tasks")
    tto.page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';
                                 document.body.appendChild(s); }""")
    assert tto.page.evaluate("() => window.pwned") is None
    assert CSP_VIOLATIONS, "the injected inline script must have been refused by the CSP"
    CSP_VIOLATIONS.clear()  # the refusals above were the point of this test
    tto.close()
