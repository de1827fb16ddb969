"""Paginated, sortable, searchable lists: the arguments every list reads (`?q=`, `?sort=`,
`?page=`, `?per_page=`) and the API's answer: a JSON array with `X-Total-Count` and `Link`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify, request, url_for
from sqlalchemy import Select

from workflows.people import access
from workflows.process import queries

from .. import database


def args() -> tuple[int, str | None, str]:
    return request.args.get("page", 1, type=int) or 1, request.args.get("sort") or None, \
        request.args.get("q", "").strip()


def page_of(query: Select, sorts: dict[str, tuple], default: str, search=None, key=None) -> queries.Page:
    """Filter by `q` (when the list has a search), order by `sort`, cut out `page` (by its
    keys first when `key` is given: `queries.paginate`)."""
    page, sort, text = args()
    if search is not None:
        query = search(query, text)
    query, sort = queries.sorted_by(query, sorts, sort, default)
    return queries.paginate(database.session(), query, page, _per_page(), sort, key)


def _per_page() -> int:
    return request.args.get("per_page", queries.PER_PAGE, type=int) or queries.PER_PAGE


def task_page(user, kind: str | None = None, step: str | None = None, since=None, plain: bool = False) -> queries.Page:
    """The user's tasks: in creation order without a search or a kind, each source's index gives
    the page (`queries.task_page`; `plain`: as column mappings there); any other sort or a search
    takes the general query (tasks)."""
    page, sort, text = args()
    key = sort if sort and sort.lstrip("-") in queries.TASK_SORTS else "created"
    if not text and not kind and key.lstrip("-") == "created":
        return queries.task_page(database.session(), user, page, _per_page(), key, step=step, since=since, plain=plain)
    return page_of(queries.tasks_for(user, kind=kind, step=step, since=since), queries.TASK_SORTS, "created",
                   queries.search_tasks)


def application_page(user, where: tuple = ()) -> queries.Page:
    """The applications the user may read: in updated/created order without a search, each
    source's index gives the page (`queries.application_page`); otherwise the general query."""
    page, sort, text = args()
    key = sort if sort and sort.lstrip("-") in queries.APPLICATION_SORTS else "-updated"
    if not text and key.lstrip("-") in ("updated", "created"):
        return queries.application_page(database.session(), user, page, _per_page(), key, where)
    return page_of(access.visible_applications(user).where(*where), queries.APPLICATION_SORTS, "-updated",
                   queries.search_applications)


def url_for_page(page: int, **changes: Any) -> str:
    """This list's address with another page (and other arguments kept)."""
    params = {k: v for k, v in request.args.items() if k != "page"}
    params.update(changes)
    if page > 1:
        params["page"] = page
    return url_for(request.endpoint, **(request.view_args or {}), **params)


def api_response(found: queries.Page, serialize: Callable[[Any], dict[str, Any]], rows: list | None = None):
    """The page as a JSON array; the total in X-Total-Count, neighbours in an RFC 8288 Link header."""
    response = jsonify([serialize(r) for r in (found.rows if rows is None else rows)])
    links = [(1, "first"), (found.pages, "last")]
    if found.page > 1:
        links.append((found.page - 1, "prev"))
    if found.has_next:
        links.append((found.page + 1, "next"))
    response.headers["X-Total-Count"] = str(found.total)
    response.headers["Link"] = ", ".join(f'<{url_for_page(p, per_page=found.per_page)}>; rel="{rel}"'
                                         for p, rel in links)
    return response


def register(app) -> None:
    app.jinja_env.globals.setdefault("url_for_page", url_for_page)
