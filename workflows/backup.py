"""Backup and restore: the database (with the stored documents in it), the instance directory's
public keys and anchors, and a manifest of SHA-256s, taken consistently while the server runs.

SQLite is copied with its online backup API (one snapshot, writers keep going in WAL mode).
PostgreSQL is dumped by Debian's pg_dump inside a REPEATABLE READ snapshot exported from our own
transaction, so the dump, the document list and the audit head in the manifest are the same moment.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, make_url

from . import clock, db
from .errors import GrantError
from .evidence import audit
from .i18n import msg

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "grants.sqlite3"
PG_FILE = "grants.pgdump"
INSTANCE = "instance"


class BackupError(GrantError):
    """A backup or restore that cannot be done or does not check out; nothing was changed."""


def _fail(template: str, **params: object) -> BackupError:
    return BackupError(msg(template, **params))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _backend(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise _fail("不支持的数据库类型：{name}", name=name)
    return name


def _libpq(url: str) -> str:
    """pg_dump and pg_restore take a libpq URL, not SQLAlchemy's `postgresql+psycopg://`."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


# -- what is in the database ---------------------------------------------------------------
def _documents(conn: Connection) -> Iterator[dict[str, Any]]:
    """Every stored document with the SHA-256 of its bytes as read now, one row at a time."""
    ids: Sequence[int] = conn.execute(text("SELECT id FROM documents ORDER BY id")).scalars().all()
    for doc_id in ids:
        row = conn.execute(text("SELECT sha256, content FROM documents WHERE id = :id"), {"id": doc_id}).one()
        content = bytes(row.content)
        yield {"id": doc_id, "sha256": row.sha256, "actual": hashlib.sha256(content).hexdigest(),
               "size": len(content)}


def _snapshot_facts(conn: Connection) -> dict[str, Any]:
    """The document list and the audit head, both checked at backup time."""
    documents = []
    for doc in _documents(conn):
        if doc["actual"] != doc["sha256"]:
            raise _fail("文件{id}的内容与存档时的SHA-256不符，未生成备份", id=doc["id"])
        documents.append({"id": doc["id"], "sha256": doc["sha256"], "size": doc["size"]})
    return {"documents": documents, "audit": _audit_heads(conn)}


def _audit_heads(conn: Connection) -> dict[str, Any]:
    """The last event id and every log's size and Merkle root, as of this snapshot."""
    last_id: int = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM audit_events")).scalar_one()
    logs = {str(row.log_id): [row.size, row.root]
            for row in conn.execute(text("SELECT log_id, size, root FROM audit_logs ORDER BY log_id"))}
    return {"last_id": int(last_id), "logs": logs}


def _has_data(url: str) -> bool:
    """True if any table (other than Alembic's own) holds a row: a restore would overwrite it."""
    if _backend(url) == "sqlite" and not _sqlite_path(url).exists():
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
            return any(conn.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first() for t in tables)
    finally:
        engine.dispose()


# -- backup --------------------------------------------------------------------------------
def backup(url: str, instance_dir: str | Path, target: str | Path, with_secrets: bool = False) -> dict[str, Any]:
    """Write a backup to the empty (or new) directory `target`; returns the manifest."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise _fail("备份目录{path}不是空目录，请指定一个新目录", path=str(target))
    target.mkdir(parents=True, exist_ok=True)
    backend = _backend(url)
    facts = _backup_sqlite(url, target) if backend == "sqlite" else _backup_postgres(url, target)
    files = _copy_instance(Path(instance_dir), target / INSTANCE, with_secrets)
    db_file = SQLITE_FILE if backend == "sqlite" else PG_FILE
    manifest = {"format": FORMAT, "created_at": clock.now().isoformat(), "backend": backend,
                "database": {"file": db_file, "sha256": sha256_file(target / db_file),
                             "size": (target / db_file).stat().st_size},
                "with_secrets": with_secrets, "files": files, **facts}
    (target / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def _backup_sqlite(url: str, target: Path) -> dict[str, Any]:
    source_path = _sqlite_path(url)
    if not source_path.exists():
        raise _fail("数据库文件{path}不存在", path=str(source_path))
    source = sqlite3.connect(source_path, timeout=30)
    dest = sqlite3.connect(target / SQLITE_FILE)
    try:
        source.backup(dest)  # all pages in one step: one consistent snapshot
    finally:
        dest.close()
        source.close()
    engine = create_engine(f"sqlite:///{target / SQLITE_FILE}")
    try:
        with engine.connect() as conn:
            return _snapshot_facts(conn)
    finally:
        engine.dispose()


def _backup_postgres(url: str, target: Path) -> dict[str, Any]:
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            snapshot: str = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                  f"--file={target / PG_FILE}", f"--dbname={_libpq(url)}"])
            facts = _snapshot_facts(conn)
            conn.rollback()
            return facts
    finally:
        engine.dispose()


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    except FileNotFoundError:
        raise _fail("找不到{tool}，请安装与服务器版本一致的 postgresql-client", tool=argv[0]) from None
    if done.returncode != 0:
        raise _fail("{tool}失败：{error}", tool=argv[0], error=done.stderr.strip()[-800:])


def _is_secret(path: Path) -> bool:
    """Private keys and the Flask secret stay out of a backup unless asked; public keys and the
    units' CA certificates (needed to check old signatures) always go in."""
    name = path.name
    return name.endswith((".key.pem", ".key")) or "secret" in name or name.endswith(".p12")


def _instance_files(instance: Path, with_secrets: bool) -> Iterator[Path]:
    """Public key parts and anchors; secret keys only when asked for."""
    keys = instance / "keys"
    if keys.is_dir():
        for path in sorted(keys.rglob("*")):
            if path.is_file() and (with_secrets or not _is_secret(path)):
                yield path
    anchors = instance / "anchors"
    if anchors.is_dir():
        yield from (p for p in sorted(anchors.rglob("*")) if p.is_file())


def _copy_instance(instance: Path, dest: Path, with_secrets: bool) -> list[dict[str, Any]]:
    files = []
    for path in _instance_files(instance, with_secrets):
        rel = path.relative_to(instance)
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
        files.append({"path": f"{INSTANCE}/{rel.as_posix()}", "sha256": sha256_file(out), "size": out.stat().st_size})
    return files


# -- restore -------------------------------------------------------------------------------
def read_manifest(source: str | Path) -> dict[str, Any]:
    """The manifest, after checking every file it names against its SHA-256."""
    source = Path(source)
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _fail("{path}中没有可读的备份清单 manifest.json", path=str(source)) from None
    if manifest.get("format") != FORMAT:
        raise _fail("备份格式{format}不受支持", format=str(manifest.get("format")))
    for entry in [manifest["database"], *manifest["files"]]:
        path = source / (entry.get("file") or entry["path"])
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            raise _fail("备份文件{path}缺失或与清单中的SHA-256不符", path=str(path))
    return manifest


def restore(source: str | Path, url: str, instance_dir: str | Path, force: bool = False) -> dict[str, Any]:
    """Restore a backup into `url` and `instance_dir`, then check it; returns the check's result."""
    source, instance = Path(source), Path(instance_dir)
    manifest = read_manifest(source)
    backend = _backend(url)
    if backend != manifest["backend"]:
        raise _fail("备份来自{source}数据库，不能恢复到{target}数据库", source=manifest["backend"], target=backend)
    if not force and (_has_data(url) or any(_instance_files(instance, True))):
        raise _fail("目标数据库或实例目录不是空的；确认要覆盖请加 --force")
    if backend == "sqlite":
        _restore_sqlite(source / SQLITE_FILE, _sqlite_path(url))
    else:
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
              "--exit-on-error", f"--dbname={_libpq(url)}", str(source / PG_FILE)])
    for entry in manifest["files"]:
        out = instance / Path(entry["path"]).relative_to(INSTANCE)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / entry["path"], out)
    return check(url, manifest)


def _restore_sqlite(backup_file: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(backup_file)
    dest = sqlite3.connect(target, timeout=30)
    try:
        source.backup(dest)  # replaces every page of the target, WAL included
    finally:
        dest.close()
        source.close()


def check(url: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The restored database against the manifest: audit chain, audit head, every document."""
    engine = db.make_engine(url)
    try:
        with db.session_factory(engine)() as session:
            problems = audit.verify(session)
            conn = session.connection()
            facts = {doc["id"]: doc for doc in _documents(conn)}
            heads = _audit_heads(conn)
    finally:
        engine.dispose()
    expected = manifest["audit"]
    if heads != expected:
        problems.append(str(msg("恢复后的审计链末端与备份清单不符")))
    for doc in manifest["documents"]:
        found = facts.pop(doc["id"], None)
        if found is None or found["actual"] != doc["sha256"] or found["sha256"] != doc["sha256"]:
            problems.append(str(msg("文件{id}缺失或内容与SHA-256不符", id=doc["id"])))
    problems.extend(str(msg("文件{id}不在备份清单中", id=doc_id)) for doc_id in facts)
    return {"problems": problems, "documents": len(manifest["documents"]), "audit_events": expected["last_id"]}
