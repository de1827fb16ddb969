"""A WeasyPrint URL fetcher that can only read this package's templates and data: URLs.

User-entered text ends up in the HTML; autoescaping stops markup, and this fetcher makes
sure that even a stray <img src> or CSS url() can neither read server files nor call out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher

TEMPLATES_DIR = (Path(__file__).resolve().parent / "templates")


class RefusedURL(ValueError):
    """The URL is outside what documents may load."""


def allowed_path(url: str) -> Path:
    """The file a file:// URL points to, if it lies inside the templates dir; else refuse."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise RefusedURL(f"refused URL: {url}")
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(TEMPLATES_DIR) or not path.is_file():
        raise RefusedURL(f"refused URL: {url}")
    return path


class RestrictedURLFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint is untyped (Any base)
    """Allows data: URLs and files under templates/; refuses everything else (http, https,
    ftp, other files). Refusals raise, so WeasyPrint logs a warning and leaves the resource out."""

    def __init__(self) -> None:
        super().__init__(timeout=1, allowed_protocols=("file", "data"), allow_redirects=False)

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:  # WeasyPrint's URLFetcherResponse
        if url.lower().startswith("data:"):
            return super().fetch(url, headers)
        path = allowed_path(url)
        return super().fetch(path.as_uri(), headers)
