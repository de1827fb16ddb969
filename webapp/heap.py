"""Give the heap back to the system after a request that built a large response (issue 10:
server RSS ≤ 250 MB whatever page was asked for).

A page like the annual report (400 KB of HTML from ~2,500 rows) or a 200-row list allocates tens
of MB of small objects in the thread that served it; once freed, glibc keeps those pages in that
thread's arena, so each of waitress's threads keeps its own high-water mark for good
(bench/README, "Server memory"). `malloc_trim(0)` after such a response, once it is sent (the
response's close), returns them; it takes a few ms and only runs for large responses."""
from __future__ import annotations

import ctypes
from typing import Any

from flask import Flask, Response, current_app

LARGE_BYTES = 256 * 1024  # the report page, a 200-row list, the exports; not an ordinary page


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_TRIM = _malloc_trim()


def trim() -> None:
    if _TRIM is not None:
        _TRIM(0)


def _after(response: Response) -> Response:
    size = response.calculate_content_length() if not response.is_streamed else None
    if size is not None and size >= current_app.config.get("TRIM_AFTER_BYTES", LARGE_BYTES):
        response.call_on_close(trim)
    return response


def register(app: Flask) -> None:
    app.after_request(_after)
