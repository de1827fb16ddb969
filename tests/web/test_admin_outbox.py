"""/admin/outbox: the administrator sees every mail with its delivery state (sent, waiting with
attempts and the last error, given up) and, in the demo, what the loopback catcher received."""
from __future__ import annotations

from tests.web.conftest import login, text_of
from webapp import demo_mail
from webapp.cli import tick_once
from workflows import settings as engine_settings
from workflows.models import OutboxMail
from workflows.people import notify


def test_the_outbox_page_shows_delivery_state_and_caught_mail(app, client, driver, tmp_path):
    app.instance_path = str(tmp_path)
    app.config["DEMO"] = True
    driver.run(lambda s: s.add_all([
        OutboxMail(to="a@example.org", subject="第一封", body="正文一"),
        OutboxMail(to="b@example.org", subject="放弃的", body="x", attempts=notify.MAX_ATTEMPTS, last_error="boom")]))
    engine_settings.configure(smtp_host="127.0.0.1", smtp_port=demo_mail.free_port())  # nobody listens
    tick_once(app)
    catcher = demo_mail.start(tmp_path)
    engine_settings.configure(smtp_host=catcher.hostname, smtp_port=catcher.port)
    driver.run(lambda s: s.add(OutboxMail(to="c@example.org", subject="第三封", body="正文三")))
    try:
        tick_once(app)  # the third goes out; the first waits for its back-off
    finally:
        catcher.stop()
    login(client, "admin")
    page = client.get("/admin/outbox")
    assert page.status_code == 200
    html, text = page.get_data(as_text=True), text_of(page)
    assert html.count('data-state="pending"') == 1 and html.count('data-state="sent"') == 1
    assert html.count('data-state="failed"') == 1
    assert "boom" in text and "Connection refused" in text
    assert "演示模式" in text and "c@example.org · 第三封" in text and "正文三" in text
    other = app.test_client()
    login(other, "tto1")
    assert other.get("/admin/outbox").status_code == 403
