"""After a large response or a long request the server hands its freed heap back to the system
(glibc malloc_trim), after an ordinary one it does not spend the time (issue 10: RSS ≤ 250 MB)."""
from __future__ import annotations

import pytest

from workflows.documents import render

from .conftest import login


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    """The heap trims counted; each still runs the real malloc_trim."""
    made: list[str] = []
    real = render._MALLOC_TRIM

    def counted(pad: int) -> int:
        made.append("trim")
        return real(pad) if real is not None else 0
    monkeypatch.setattr(render, "_MALLOC_TRIM", counted)
    return made


def test_large_responses_trim_the_heap_once_sent(app, client, calls):
    app.config["TRIM_AFTER_CPU_SECONDS"] = 3600.0  # the size alone decides here
    login(client, "tto1")
    page = client.get("/applications")
    page.close()
    assert page.status_code == 200 and calls == []  # an ordinary page: no trim
    app.config["TRIM_AFTER_BYTES"] = len(page.data) // 2
    response = client.get("/applications")
    assert calls == []  # not before the response is sent …
    response.close()
    assert calls == ["trim"]  # … but once it is


def test_long_requests_trim_the_heap_too(app, client, calls):
    app.config.update(TRIM_AFTER_BYTES=2**40, TRIM_AFTER_CPU_SECONDS=3600.0)  # the time alone decides here
    login(client, "tto1")
    client.get("/applications").close()
    assert calls == []
    app.config["TRIM_AFTER_CPU_SECONDS"] = 0.0  # every request counts as long
    client.get("/applications").close()
    assert calls == ["trim"]
