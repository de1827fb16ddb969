"""One session per request and one commit per request: views call workflows/, which only
flushes; the request commits when the response is a success and rolls back otherwise."""
from __future__ import annotations

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session

from workflows import db


def register(app: Flask) -> None:
    engine = db.make_engine(app.config["DATABASE_URL"])
    app.extensions["grants_engine"] = engine
    app.extensions["grants_sessions"] = db.session_factory(engine)
    app.after_request(_commit_on_success)
    app.teardown_appcontext(_close)


def session() -> Session:
    if "db_session" not in g:
        g.db_session = current_app.extensions["grants_sessions"]()
    return g.db_session


def _commit_on_success(response: Response) -> Response:
    s = g.get("db_session")
    if s is not None:
        if response.status_code < 400:
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
