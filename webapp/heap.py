"""Give the heap back to the system after a request that built a large response or worked long
(issue 10: server RSS ≤ 250 MB whatever page was asked for).

A page like the annual report (400 KB of HTML from ~2,500 rows), a 200-row list or a deep list
page at 100k allocates tens of MB of small objects in the thread that served it; once freed,
glibc keeps those pages in that thread's arena, so each of waitress's threads keeps its own
high-water mark for good (bench/README, "Server memory": after the list pages only ~4 MB of
Python objects are still alive, tracemalloc, while RSS grew by ~40 MB). `malloc_trim(0)`, once
such a response is sent (the response's close), returns them. It takes a few ms, so it runs only
after a response of `TRIM_AFTER_BYTES` or more, or a request that took `TRIM_AFTER_CPU_SECONDS`
of its thread's CPU or more; an ordinary page (~20 ms) never pays it."""
from __future__ import annotations

import time

from flask import Flask, Response, current_app, g

from workflows.documents import render

LARGE_BYTES = 256 * 1024  # the report page, a 200-row list, the exports; not an ordinary page
LONG_CPU_SECONDS = 0.1   # a deep list page or the statistics at 100k; not an ordinary page


def trim() -> None:
    render.malloc_trim()


def _before() -> None:
    g.heap_cpu_started = time.thread_time()


def _after(response: Response) -> Response:
    size = response.calculate_content_length() if not response.is_streamed else None
    took = time.thread_time() - g.get("heap_cpu_started", time.thread_time())
    config = current_app.config
    if (size is not None and size >= config.get("TRIM_AFTER_BYTES", LARGE_BYTES)) or \
            took >= config.get("TRIM_AFTER_CPU_SECONDS", LONG_CPU_SECONDS):
        response.call_on_close(trim)
    return response


def register(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_after)
