"""One session per request and one commit per request: views call workflows/, which only
flushes; the request commits when the response is a success and rolls back otherwise."""
from __future__ import annotations

from http import HTTPStatus

from flask import Flask, Response, current_app, g, request
from sqlalchemy.orm import Session

from workflows import db


def register(app: Flask) -> None:
    engine = db.make_engine(app.config["DATABASE_URL"])
    app.extensions["grants_engine"] = engine
    app.extensions["grants_sessions"] = db.session_factory(engine)
    app.after_request(_commit_on_success)
    app.teardown_appcontext(_close)


READ_METHODS = ("GET", "HEAD", "OPTIONS")


def session() -> Session:
    """The request's session; a request that may write (POST, PUT, DELETE…) starts as a writer,
    so on SQLite two writers queue rather than race (see workflows.db.begin_write)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["grants_sessions"]()
        if request and request.method not in READ_METHODS:
            db.begin_write(g.db_session)
    return g.db_session


def discard_changes() -> None:
    """Roll back what the request did so far: an error page must not be rendered (and its
    queries autoflush) on a session still holding a failed step's changes."""
    s = g.get("db_session")
    if s is not None:
        s.rollback()


def _commit_on_success(response: Response) -> Response:
    s = g.get("db_session")
    if s is not None:
        if response.status_code < HTTPStatus.BAD_REQUEST:
            s.commit()
        else:
            s.rollback()
    return response


def _close(exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        if exc is not None:
            s.rollback()
        s.close()
