"""Shared fixtures: a fresh database per test, on SQLite and (when the test command started
one) on a throwaway PostgreSQL; demo data; a driver that walks applications step by step."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from workflows import db, demo, settings
from workflows.evidence import keys

POSTGRES_URL = os.environ.get("GRANTS_TEST_POSTGRES")  # e.g. postgresql+psycopg://postgres@127.0.0.1:54329


# The suite's own instance directory and keys (checkpoint key, secret key, unit CAs), made once per
# run at import, so module-scoped fixtures that run before the per-test settings sign with them too.
SUITE_INSTANCE = Path(tempfile.mkdtemp(prefix="grants-test-instance-"))
keys.init(SUITE_INSTANCE)
os.environ["GRANTS_INSTANCE"] = str(SUITE_INSTANCE)  # apps made by module-scoped fixtures use it too
TEST_SETTINGS = settings.configure(instance_dir=str(SUITE_INSTANCE))


@pytest.fixture(scope="session")
def test_keys() -> Path:
    return SUITE_INSTANCE / "keys"


@pytest.fixture(autouse=True)
def _engine_settings(test_keys, tmp_path, monkeypatch):
    """create_app reconfigures the engine; each test starts from the same settings, with an
    instance directory of its own (its own anchor file) that shares the suite's keys."""
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    if not (instance / "keys").exists():
        (instance / "keys").symlink_to(test_keys, target_is_directory=True)
    monkeypatch.setenv("GRANTS_INSTANCE", str(instance))
    settings.configure(**dict(vars(TEST_SETTINGS), instance_dir=str(instance)))
    yield
    settings.configure(**vars(TEST_SETTINGS))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """Migrate once; each test copies the file (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.create_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template():
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not started (the README test command starts one)")
    name = f"grants_template_{os.getpid()}"  # one per run: parallel runs may share a server
    admin = create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine = db.make_engine(f"{POSTGRES_URL}/{name}")
    db.create_schema(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def _postgres_db(template: str | None) -> tuple[str, callable]:
    """A new database (copied from `template`, or empty) and the function that drops it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f" TEMPLATE {template}" if template else "")))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return f"{POSTGRES_URL}/{name}", drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "grants.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url, drop = _postgres_db(request.getfixturevalue("postgres_template"))
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    path = tmp_path / "grants.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_template) -> str:
    url, drop = _postgres_db(postgres_template)
    yield url
    drop()


def _seeded_sessions(url: str):
    engine = db.make_engine(url)
    factory = db.session_factory(engine)
    with factory() as session:
        demo.seed(session)
        session.commit()
    yield factory
    engine.dispose()


@pytest.fixture
def sessions(database_url):
    """A session factory on a fresh database with the demo units and users."""
    yield from _seeded_sessions(database_url)


@pytest.fixture
def postgres_sessions(postgres_url):
    """The same on PostgreSQL only, for tests of real concurrency."""
    yield from _seeded_sessions(postgres_url)


@pytest.fixture(scope="session")
def _snapshots():
    """Databases built once per run by `snapshot` (SQLite files, PostgreSQL template names)."""
    made: dict[tuple[str, str], tuple[str, object]] = {}
    yield made
    for backend, _key in made:
        if backend == "postgresql":
            admin = create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{made[(backend, _key)][0]}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def snapshot(_snapshots, tmp_path_factory):
    """`snapshot(url, key, build)`: the first call per backend runs `build(url)` on the fresh
    database at `url` and keeps a copy; later calls with that key copy it into their own fresh
    database instead of building again (a shared, expensive prefix such as an application
    walked to its publicity, with its signed PDFs). Returns what `build` returned. Call it
    before opening `url`; every engine `build` opened must be disposed."""
    def use(url: str, key: str, build):
        backend = "sqlite" if url.startswith("sqlite:///") else "postgresql"
        if (backend, key) not in _snapshots:
            result = build(url)
            _snapshots[(backend, key)] = (_keep(url, backend, key, tmp_path_factory), result)
            return result
        kept, result = _snapshots[(backend, key)]
        _restore(kept, url, backend)
        return result
    return use


def _keep(url: str, backend: str, key: str, tmp_path_factory) -> str:
    if backend == "sqlite":
        kept = tmp_path_factory.mktemp("snapshot") / f"{key}.db"
        _sqlite_copy(url.removeprefix("sqlite:///"), str(kept))
        return str(kept)
    name, kept = url.rsplit("/", 1)[1], f"snap_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{kept}" TEMPLATE "{name}"'))
    admin.dispose()
    return kept


def _restore(kept: str, url: str, backend: str) -> None:
    if backend == "sqlite":
        _sqlite_copy(kept, url.removeprefix("sqlite:///"))
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{kept}"'))
    admin.dispose()


def _sqlite_copy(source: str, target: str) -> None:
    """SQLite's online backup: a WAL database's recent pages live in its -wal file, not the main one."""
    import sqlite3
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
