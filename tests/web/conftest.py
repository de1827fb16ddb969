"""HTML view tests: a fresh SQLite file per test, copied from one seeded once per session;
applications are walked to the needed state through the engine by tests/driver.py."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.driver import PASSWORD, Driver
from webapp import create_app
from workflows import db, demo


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.create_schema(engine)
    with db.session_factory(engine)() as session:
        demo.seed(session)
        session.commit()
    engine.dispose()
    return path


def make_app(seeded_db: Path, tmp_path: Path, **config):
    path = tmp_path / "web.db"
    shutil.copy(seeded_db, path)
    settings = {"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "WTF_CSRF_ENABLED": False,
                "SECRET_KEY": "test-secret"}
    settings.update(config)
    return create_app(settings)


@pytest.fixture
def app(seeded_db, tmp_path):
    application = make_app(seeded_db, tmp_path)
    yield application
    application.extensions["grants_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def driver(app) -> Driver:
    return Driver(app.extensions["grants_sessions"])


def login(client, username: str, password: str = PASSWORD):
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def text_of(response) -> str:
    """Page text without tags, whitespace collapsed: what a person reads."""
    html = response.get_data(as_text=True)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def form_fields(data: dict, prefix: str = "", top: bool = True) -> list[tuple[str, str]]:
    """A payload as the generic task form posts it: dotted names, checkboxes only when ticked,
    yes/no radios for top-level booleans, one line per item for lists of text."""
    fields: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            if top:
                fields.append((name, "true" if value else "false"))
            elif value:
                fields.append((name, "1"))
        elif isinstance(value, dict):
            fields += form_fields(value, name + ".", False)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, row in enumerate(value):
                fields += form_fields(row, f"{name}.{i}.", False)
        elif isinstance(value, list):
            if key == "security_categories":
                fields += [(name, v) for v in value]
            else:
                fields.append((name, "\n".join(value)))
        else:
            fields.append((name, str(value)))
    return fields


def post_form(client, url: str, fields: list[tuple[str, str]], **extra):
    from werkzeug.datastructures import MultiDict
    return client.post(url, data=MultiDict(fields + list(extra.items())))
