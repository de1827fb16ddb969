"""Seed a city-scale database: `python bench/seed.py --applications 100000 --units 40 [--database URL]`.

Real engine states first: three applications are walked through the engine (tests/driver.py,
demo people) in a scratch SQLite file, and read back at each of the 11 states on their way. Each
state is then replicated with fresh ids, numbers, people, titles, task ids, notices, document
metadata and audit events. A copy is the template's workflow state with its tokens replaced (task
UUIDs, number, usernames, names, title, unit code, notice and document ids), so every seeded
application can be opened, acted on and finished like any other. Each template is compiled once
into `str.format` strings (class Compiled), so a copy costs a format, not a regex pass; worker
processes pack the states and hash the audit leaves; rows go to the database as tuples
(executemany on SQLite, COPY on PostgreSQL) from a writer thread, with the loaded tables'
secondary indexes (SQLite: and the FTS triggers; PostgreSQL: and foreign keys) dropped during the
load and recreated from the database's own definitions afterwards, so the schema is the
migrations' own. The audit chain is one RFC 6962 Merkle log per unit, as workflows/evidence/audit.py
writes it; `grants verify-audit` passes on the result (tests/scale/test_seed.py).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import os
import queue
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from workflows import clock, db, demo, settings
from workflows.evidence import audit, keys
from workflows.evidence.pack_verify import canonical, frontier_append, frontier_root, leaf_hash
from workflows.models import (
    Application,
    AuditEvent,
    AuditLog,
    Document,
    HumanTask,
    PublicityNotice,
    RoleGrant,
    Unit,
    User,
    rebuild_duration_bins,
    rebuild_ip_claims,
    seconds_between,
)
from workflows.people import accounts
from workflows.process import engine, runtime, specs, textsearch

PASSWORD = "bench-pass-2026"
# Share of each state among the seeded applications (sums to 1).
MIX = {"draft": .10, "consenting": .08, "in_review": .12, "deciding": .08, "publicity": .05, "agreement": .07,
       "signing": .06, "ip_transfer": .04, "completed": .30, "refused": .05, "withdrawn": .05}
RESEARCHERS_PER_UNIT = 60
PLACEHOLDER_PDF = b"%PDF-1.4\n% seeded document metadata: the bytes are a placeholder\n%%EOF\n"
CHUNK = 5000


# --- templates: real engine states -------------------------------------------------------------

def _ip_number(state: str) -> str:
    return f"ZL2023{list(MIX).index(state):06d}.1"


def _walks(d):
    """Drive three applications through the engine, as requests would, yielding (state, id) at
    each state on the way: the main line to 已完成, one withdrawn while consenting, one refused."""
    from tests.driver import example
    app_id = d.start()
    yield "draft", app_id
    d.draft_for_ip(app_id, _ip_number("completed"))
    yield "consenting", app_id
    d.consent_all(app_id)
    yield "in_review", app_id
    d.review(app_id)
    yield "deciding", app_id
    d.decide(app_id)
    yield "publicity", app_id
    d.pass_publicity(app_id)
    yield "agreement", app_id
    d.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    yield "signing", app_id
    d.sign_both(app_id)
    yield "ip_transfer", app_id
    d.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
    d.complete(app_id, "complete_archive", "tto1", example("completion"))
    yield "completed", app_id
    app_id = d.start()
    d.draft_for_ip(app_id, _ip_number("withdrawn"))
    d.run(lambda s: engine.withdraw(s, d.user(s, "researcher1"), app_id))
    yield "withdrawn", app_id
    app_id = d.start()
    d.draft_for_ip(app_id, _ip_number("refused"))
    d.consent_all(app_id)
    d.review(app_id)
    d.decide(app_id, result="refuse")
    yield "refused", app_id


IP_OF = {"withdrawn": "withdrawn", "refused": "refused"}  # the others are the main line's


def _row(obj, columns) -> dict:
    return {c: getattr(obj, c) for c in columns}


def make_templates() -> dict[str, dict]:
    """One real application per state, read back as plain rows."""
    from tests.driver import Driver
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None))  # no fsync per step
    path = scratch / "templates.db"
    instance = settings.get().instance_dir
    settings.configure(instance_dir=str(scratch / "instance"))  # the templates' documents sign with scratch keys
    keys.init(scratch / "instance")
    eng = db.make_engine(f"sqlite:///{path}")
    db.create_schema(eng)
    factory = db.session_factory(eng)
    with factory() as s:
        demo.seed(s)
        s.commit()
    d = Driver(factory)
    templates = {}
    for state, app_id in _walks(d):  # each state read back as the engine left it there
        with factory() as s:
            app = s.get(Application, app_id)
            assert app.status == state, (state, app.status)
            templates[state] = {
                "app": _row(app, ("kind", "status", "title", "ip_numbers", "created_at", "updated_at", "decided_at",
                                  "closed_at", "summary")),
                "number": app.number, "ip": _ip_number(IP_OF.get(state, "completed")),
                "state": runtime.state_json(app.state.serialized), "timer_due_at": app.state.timer_due_at,
                "tasks": [_row(t, ("id", "bpmn_id", "name", "lane", "role", "form", "state", "created_at",
                                   "context")) | {"assignee": t.assignee.username if t.assignee else None}
                          for t in s.execute(select(HumanTask).where(HumanTask.application_id == app_id,
                                                                     HumanTask.state == "ready")).scalars()],
                "notices": [_row(n, ("id", "round", "starts_at", "ends_at", "last_day", "closed_at", "outcome",
                                     "document_id", "summary", "kind"))
                            for n in s.execute(select(PublicityNotice).where(
                                PublicityNotice.application_id == app_id)).scalars()],
                "documents": [_row(doc, ("id", "kind", "filename", "content_type", "created_at"))
                              for doc in s.execute(select(Document).where(Document.application_id == app_id)
                                                   .order_by(Document.id)).scalars()],
                "events": [_row(e, ("at", "actor", "action", "step", "detail", "data_digest"))
                           for e in s.execute(select(AuditEvent).where(AuditEvent.application_id == app_id)
                                              .order_by(AuditEvent.id)).scalars()],
            }
    eng.dispose()
    settings.configure(instance_dir=instance)
    shutil.rmtree(scratch, ignore_errors=True)  # it was left in /dev/shm (~5 MB a run)
    assert set(templates) == set(MIX), set(MIX) ^ set(templates)
    return templates


# --- people and units ----------------------------------------------------------------------------

TEMPLATE_PEOPLE = {"researcher1": "李明", "researcher2": "王芳", "researcher3": "张伟", "tto1": "刘洋",
                   "decider1": "黄建国", "signer1": "周红"}


def seed_people(s, n_units: int) -> list[dict]:
    """Units U01… with researchers, two tech-transfer officers, a decider, a signer, an auditor."""
    pw = accounts.hash_password(PASSWORD)  # one hash for all: hashing is slow on purpose
    units, users, grants = [], [], []
    user_id = (s.execute(select(func.max(User.id))).scalar() or 0) + 1
    unit_id = (s.execute(select(func.max(Unit.id))).scalar() or 0) + 1
    people = []
    for u in range(n_units):
        code = f"U{u + 1:02d}"
        units.append({"id": unit_id, "code": code, "name": f"示范单位{u + 1:02d}",
                      "contact": f"{code}成果转化办公室，电话 0755-1000{u:04d}"})
        staff = {}
        for role, count in (("researcher", RESEARCHERS_PER_UNIT), ("tto", 2), ("decider", 1), ("signer", 1),
                            ("auditor", 1)):
            for i in range(count):
                username = f"{code.lower()}-{role}{i + 1}"
                users.append({"id": user_id, "username": username, "name": f"{code}{role}{i + 1}号",
                              "email": f"{username}@example.org", "password_hash": pw, "active": True,
                              "failed_logins": 0})
                grants.append({"user_id": user_id, "unit_id": unit_id, "role": role})
                staff.setdefault(role, []).append((user_id, username, f"{code}{role}{i + 1}号"))
                user_id += 1
        people.append({"unit_id": unit_id, "code": code, **staff})
        unit_id += 1
    s.execute(insert(Unit.__table__), units)
    for i in range(0, len(users), CHUNK):
        s.execute(insert(User.__table__), users[i:i + CHUNK])
    s.execute(insert(RoleGrant.__table__), grants)
    return people


# --- bulk writing ----------------------------------------------------------------------------------

# The tables the copies fill. During the load their secondary indexes (and on PostgreSQL their
# foreign keys) are dropped and afterwards recreated from the definitions read back from the
# database itself, so the schema at the end is exactly the one the migrations left.
LOADED = ("applications", "application_members", "workflow_states", "documents", "publicity_notices",
          "human_tasks", "audit_events")


def _sqlite_dt(value):
    """SQLAlchemy's SQLite DATETIME storage format (UTC, microseconds always written)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = clock.as_utc(value)
    return value.isoformat(" ", "microseconds")[:26]


class Loader:
    """Rows as tuples straight to the driver: executemany on SQLite, COPY on PostgreSQL; JSON
    columns get their text as built (the copies are JSON text already). Inserts run in a writer
    thread (sqlite3 and psycopg release the GIL while the database works), so building the next
    copies overlaps writing the last ones."""

    def __init__(self, engine):
        self.sqlite = engine.dialect.name == "sqlite"
        if self.sqlite:
            import sqlite3
            engine.dispose()  # the engine's WAL keeper too: the load has the file to itself
            self.path = engine.url.database
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in ("foreign_keys=OFF", "journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000",
                           "temp_store=MEMORY"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.conn.execute("BEGIN")
            self.dt = _sqlite_dt
        else:
            self.raw = engine.raw_connection()
            self.conn = self.raw.driver_connection
            self.dt = lambda value: value
            with self.conn.cursor() as cur:
                cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
                cur.execute("SET LOCAL synchronous_commit = off")
        self._dropped: list[str] = []
        self.spent: dict[str, float] = {}  # seconds the writer spent per table
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None  # started by the first insert: after the workers' fork

    def _write(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._insert(*item)
                except BaseException as error:
                    self._error = error

    def wait(self) -> None:
        """Until every queued insert is written (then the connection is the caller's again)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def insert(self, table: str, columns: tuple[str, ...], rows: list) -> None:
        if self._error is not None:
            raise self._error
        if rows:
            if self._thread is None:
                self._thread = threading.Thread(target=self._write, daemon=True)
                self._thread.start()
            self._queue.put((table, columns, rows))

    def execute(self, sql, params=()):
        if self.sqlite:
            return self.conn.execute(sql, params).fetchall()
        with self.conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []

    def _insert(self, table: str, columns: tuple[str, ...], rows: list) -> None:
        began = time.monotonic()
        self._insert_rows(table, columns, rows)
        self.spent[table] = self.spent.get(table, 0.0) + time.monotonic() - began

    def _insert_rows(self, table: str, columns: tuple[str, ...], rows: list) -> None:
        names = ", ".join(columns)
        if self.sqlite:
            self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)
            return
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def drop_indexes(self) -> None:
        """Remember and drop the secondary indexes (and PostgreSQL's foreign keys) of LOADED."""
        if self.sqlite:  # and the triggers that keep the FTS5 search tables (rebuilt once at the end)
            marks = ",".join("?" * len(LOADED))
            rows = self.execute(f"SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                                f"AND sql IS NOT NULL AND tbl_name IN ({marks}) ORDER BY type, name", LOADED)
            self._dropped = [sql for _type, _name, sql in rows]
            for kind, name, _sql in rows:
                self.execute(f'DROP {kind.upper()} "{name}"')
            return
        schema = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        fkeys = self.execute(
            f"SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            f"JOIN pg_class t ON t.oid = c.conrelid WHERE c.contype = 'f' AND t.relnamespace = {schema} "
            f"AND t.relname = ANY(?) ORDER BY 1, 2", (list(LOADED),))
        indexes = self.execute(
            f"SELECT x.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
            f"JOIN pg_class x ON x.oid = i.indexrelid WHERE t.relnamespace = {schema} AND t.relname = ANY(?) "
            f"AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
            (list(LOADED),))
        for table, name, definition in fkeys:
            self.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
            self._dropped.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            self.execute(f'DROP INDEX "{name}"')
            self._dropped.insert(0, definition)  # indexes first, then the keys (their checks use the indexes)

    def restore_indexes(self) -> None:
        for sql in self._dropped:
            self.execute(sql)
        if self.sqlite:  # the keys were not checked during the load: check them now
            for table in LOADED:
                if table in textsearch.FTS_TABLES:  # as migration 0005_search builds it
                    fts = textsearch.FTS_TABLES[table]
                    self.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
                problems = self.execute(f"PRAGMA foreign_key_check({table})")
                assert not problems, (table, problems[:5])

    def finish(self) -> None:
        if self.sqlite:
            self.conn.execute("COMMIT")
            self.conn.execute("PRAGMA journal_mode=WAL")  # as workflows.db leaves every file
            self.conn.close()
        else:
            self.raw.commit()
            self.raw.close()


# --- copies: each template compiled once into format strings -------------------------------------

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(UUID)


def _keys(data):
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _keys(value)
    elif isinstance(data, list):
        for value in data:
            yield from _keys(value)


class Compiled:
    """One template's texts as `str.format` strings over one list of per-copy values: its tokens
    (people's usernames and names, number, unit code, IP number, title, document and notice ids)
    and every UUID in it (task, process and subprocess ids: fresh in each copy, future tasks too).
    The tokens are found once, with one regex; a copy of a text is then `fmt.format(*values)`.
    JSON values are compiled from their canonical text (sorted keys, no spaces, as audit leaves
    hash them), so a copied event detail is canonical as it stands (no token is ever a key)."""

    def __init__(self, template: dict):
        t = self.t = template
        tokens = [re.escape(f'"{u}"') for u in TEMPLATE_PEOPLE] + [re.escape(f'"{n}"') for n in
                                                                   TEMPLATE_PEOPLE.values()]
        tokens += [re.escape(template["number"]), re.escape('"SZDU"'), re.escape(template["ip"])]
        if template["app"]["title"]:
            tokens.append(re.escape(template["app"]["title"]))
        tokens.append(UUID)
        tokens.append(r'"(?:document_id|signed_document_id|notice_id)":\s?\d+')  # ids of copied rows
        self.pattern = re.compile("|".join(tokens))
        self.fixed = {f'"{u}"' for u in TEMPLATE_PEOPLE} | {f'"{n}"' for n in TEMPLATE_PEOPLE.values()} | {
            template["number"], '"SZDU"', template["ip"], template["app"]["title"]}
        self.slots: list[str] = []  # tokens other than UUIDs, in value order
        self.uuids: list[str] = []
        split = {}
        split["state"] = self._split(t["state"])
        split["ip_numbers"] = self._split(canonical(t["app"]["ip_numbers"]))
        split["summary"] = self._split(canonical(t["app"]["summary"]))
        split["tasks"] = [self._split(canonical(x["context"])) for x in t["tasks"]]
        split["documents"] = [self._split(d["filename"]) for d in t["documents"]]
        split["notices"] = [self._split(canonical(x["summary"])) for x in t["notices"]]
        split["events"] = [self._split(canonical(e["detail"])) for e in t["events"]]
        for e in t["events"]:
            assert not any(self.pattern.search(str(k)) for k in _keys(e["detail"])), e  # keys stay sorted
        assert len(self.uuids) < 0x10000
        where = {tok: k for k, tok in enumerate(self.slots)} | {
            u: len(self.slots) + k for k, u in enumerate(self.uuids)}
        fmt = lambda parts: self._format(parts, where)  # noqa: E731
        self.state = fmt(split["state"])
        self.ip_numbers, self.summary = fmt(split["ip_numbers"]), fmt(split["summary"])
        self.tasks = [fmt(p) for p in split["tasks"]]
        self.documents = [fmt(p) for p in split["documents"]]
        self.notices = [fmt(p) for p in split["notices"]]
        self.events = [fmt(p) for p in split["events"]]
        self.task_slots = [where[x["id"]] for x in t["tasks"]]
        self.suffixes = [f"{k:04x}" for k in range(len(self.uuids))]

    def _split(self, text: str) -> list:
        parts, last = [], 0
        for match in self.pattern.finditer(text):
            token = match.group(0)
            parts += [text[last:match.start()], token]
            last = match.end()
            if token not in self.fixed and UUID_RE.fullmatch(token):
                if token not in self.uuids:
                    self.uuids.append(token)
            elif token not in self.slots:
                self.slots.append(token)
        parts.append(text[last:])
        return parts

    @staticmethod
    def _format(parts: list, where: dict[str, int]) -> str:
        out = []
        for k, part in enumerate(parts):
            out.append(part.replace("{", "{{").replace("}", "}}") if k % 2 == 0 else f"{{{where[part]}}}")
        return "".join(out)

    def values(self, m: dict[str, str], documents: dict[int, int], notices: dict[int, int]) -> list[str]:
        """The copy's value of every slot: `m` maps the people, number, unit code, IP number and title."""
        values = []
        for token in self.slots:
            if token in m:
                values.append(m[token])
            else:
                key, _, value = token.partition(":")
                ids = notices if "notice" in key else documents
                values.append(f"{key}:{ids.get(int(value), int(value))}")
        prefix = str(uuid.uuid4())[:-4]  # 106 random bits per copy, then the UUID's number in the template
        return values + [prefix + suffix for suffix in self.suffixes]


def _js(cache: dict, value) -> str:
    try:
        return cache[value]
    except KeyError:
        cache[value] = json.dumps(value, ensure_ascii=False)
        return cache[value]


AUDIT_COLUMNS = ("log_id", "seq", "app_seq", "leaf_version", "at", "unit_id", "application_id", "actor", "action",
                 "step", "detail", "data_digest", "leaf_hash")


def _leaves(rows: list[tuple]) -> list[bytes]:
    """RFC 6962 leaf hashes of audit rows (AUDIT_COLUMNS order, `at` still a datetime): the
    canonical JSON of audit.record's fields written out with its keys in sorted order."""
    cache: dict = {}
    sha256 = hashlib.sha256
    out = []
    for log_id, seq, app_seq, _v, at, unit_id, app_id, actor, action, step, detail, data_digest in rows:
        body = (f'{{"action":{_js(cache, action)},"actor":{_js(cache, actor)},"app_seq":{_js(cache, app_seq)},'
                f'"application_id":{_js(cache, app_id)},"at":"{clock.as_utc(at).isoformat()}",'
                f'"data_digest":{_js(cache, data_digest)},"detail":{detail},"log_id":{log_id},"seq":{seq},'
                f'"step":{_js(cache, step)},"unit_id":{_js(cache, unit_id)},"v":2}}')
        out.append(sha256(b"\x00" + body.encode()).digest())
    return out


def _append(frontier: list[list], leaf: bytes) -> None:
    """pack_verify.frontier_append on raw digests (hex only when the head is stored)."""
    frontier.append([0, leaf])
    while len(frontier) > 1 and frontier[-1][0] == frontier[-2][0]:
        right, left = frontier.pop(), frontier.pop()
        frontier.append([left[0] + 1, hashlib.sha256(b"\x01" + left[1] + right[1]).digest()])


def audit_rows(events: list[tuple], heads: dict[int, tuple[int, list]], app_seqs: dict[int, int], dt,
               pool=None) -> list[tuple]:
    """Append events (at, unit_id, application_id, actor, action, step, canonical detail text, data
    digest), in time order, to their units' Merkle logs: the same leaves as audit.record. The leaf
    hashes are computed in `pool` (if given), the frontiers here."""
    raw = []
    for at, unit_id, app_id, actor, action, step, detail, data_digest in events:
        log_id = unit_id if unit_id is not None else audit.SYSTEM_LOG
        size, frontier = heads.setdefault(log_id, (0, []))
        app_seq = None
        if app_id is not None:
            app_seq = app_seqs[app_id] = app_seqs.get(app_id, 0) + 1
        heads[log_id] = (size + 1, frontier)
        raw.append((log_id, size, app_seq, 2, at, unit_id, app_id, actor, action, step, detail, data_digest))
    step_ = 20_000
    chunks = [raw[k:k + step_] for k in range(0, len(raw), step_)]
    hashed = pool.imap(_leaves, chunks) if pool is not None else map(_leaves, chunks)
    frontiers = {log_id: [[h, bytes.fromhex(x)] for h, x in frontier] for log_id, (_s, frontier) in heads.items()}
    rows = []
    for chunk, leaves in zip(chunks, hashed, strict=True):
        for row, leaf in zip(chunk, leaves, strict=True):
            _append(frontiers[row[0]], leaf)
            rows.append((*row[:4], dt(row[4]), *row[5:], leaf.hex()))
    check = [list(x) for x in heads[rows[0][0]][1]] if rows else []  # one log replayed with pack_verify's code
    for log_id, (size, _frontier) in list(heads.items()):
        heads[log_id] = (size, [[h, x.hex()] for h, x in frontiers[log_id]])
    for row in rows:
        if row[0] == rows[0][0]:
            frontier_append(check, row[12])
    assert not rows or check == heads[rows[0][0]][1], "the frontier differs from pack_verify's"
    if events:  # the written-out leaf is audit's leaf
        first = events[0]
        fields = {"v": 2, "log_id": rows[0][0], "seq": rows[0][1], "app_seq": rows[0][2],
                  "at": clock.as_utc(first[0]).isoformat(), "unit_id": first[1], "application_id": first[2],
                  "actor": first[3], "action": first[4], "step": first[5], "detail": json.loads(first[6]),
                  "data_digest": first[7]}
        assert leaf_hash(fields) == rows[0][12], "the written-out leaf differs from audit's"
    return rows


# --- replication -------------------------------------------------------------------------------------

_COMPILED: dict[str, Compiled] = {}  # for the worker processes (forked after it is filled)


def _pack_states(jobs: list[tuple[str, list[str]]]) -> list[str]:
    """The stored states of copies (state name, values): the CPU-heavy part, in a worker."""
    return [runtime.pack(_COMPILED[state].state.format(*values)) for state, values in jobs]


def replicate(load: Loader, templates: dict, people: list[dict], n: int, version_ids: dict[str, int],
              start: dict, seed: int = 7, workers: int = 2):
    """Write n copies; `start` holds the first free ids, the audit heads and the applications'
    last audit sequence numbers (read before the load). `workers` processes pack the states and
    hash the audit leaves (0: all in this process)."""
    rnd = random.Random(seed)
    now = clock.now()
    year = clock.local_date(now).year
    states = list(MIX)
    weights = [MIX[k] for k in states]
    compiled = {k: Compiled(t) for k, t in templates.items()}
    _COMPILED.clear()
    _COMPILED.update(compiled)
    pool = multiprocessing.get_context("fork").Pool(workers) if workers else None
    app_id, doc_id, notice_id = start["application"], start["document"], start["notice"]
    unit_weights = [1 + (i % 7) for i in range(len(people))]  # uneven units: one office is the busiest
    counters = {p["unit_id"]: 0 for p in people}
    placeholder_sha = hashlib.sha256(PLACEHOLDER_PDF).hexdigest()
    batch: dict[str, list] = {k: [] for k in ("apps", "members", "states", "tasks", "notices", "docs", "jobs")}
    events: list[tuple] = []
    dt = load.dt
    period = timedelta(days=settings.get().reminder_after_days)
    columns = {
        "apps": ("applications", ("id", "unit_id", "number", "kind", "status", "title", "ip_numbers",
                                  "representative_id", "original_id", "created_at", "updated_at", "decided_at",
                                  "closed_at", "summary")),
        "members": ("application_members", ("application_id", "user_id")),
        "states": ("workflow_states", ("application_id", "process_version_id", "serialized", "timer_due_at",
                                       "version")),
        "docs": ("documents", ("id", "application_id", "kind", "filename", "content_type", "sha256", "size",
                               "content", "created_at", "created_by_id")),
        "notices": ("publicity_notices", ("id", "application_id", "unit_id", "round", "starts_at", "ends_at",
                                          "last_day", "closed_at", "outcome", "duration_seconds", "document_id",
                                          "summary", "kind")),
        "tasks": ("human_tasks", ("id", "application_id", "unit_id", "bpmn_id", "name", "lane", "role", "form",
                                  "assignee_id", "state", "created_at", "duration_seconds", "context",
                                  "reminded_at")),
    }

    def reminded(created):
        """A steady state: an old task was last reminded some time within the past period."""
        return now - rnd.uniform(0, 1) * period if created < now - period else None

    inflight: list = []  # the previous chunk, written once its states are packed

    def write(chunk, packed):
        chunk["states"] = [(*row[:2], text, *row[3:]) for row, text in
                           zip(chunk["states"], itertools.chain.from_iterable(packed.get()), strict=True)]
        for key in ("apps", "members", "states", "docs", "notices", "tasks"):
            table, names = columns[key]
            load.insert(table, names, chunk[key])

    def flush():
        jobs = batch.pop("jobs")
        halves = [jobs[:len(jobs) // 2], jobs[len(jobs) // 2:]]
        packed = pool.map_async(_pack_states, halves) if pool else _Done([_pack_states(h) for h in halves])
        if inflight:
            write(*inflight.pop())
        inflight.append(({k: batch[k] for k in columns}, packed))
        for k in columns:
            batch[k] = []
        batch["jobs"] = []

    pdf = PLACEHOLDER_PDF
    for _ in range(n):
        state = rnd.choices(states, weights)[0]
        t, c = templates[state], compiled[state]
        unit = rnd.choices(people, unit_weights)[0]
        unit_id = unit["unit_id"]
        counters[unit_id] += 1
        number = f"{unit['code']}-{year}-{counters[unit_id]:05d}"
        team = rnd.sample(unit["researcher"], 3)
        age = timedelta(days=rnd.uniform(0, 700), seconds=rnd.uniform(0, 86400))
        shift = (now - age) - t["app"]["created_at"] if state not in ("publicity",) else timedelta(0)
        title = f"{t['app']['title']}（{number}）" if t["app"]["title"] else ""
        staff = {"tto1": unit["tto"][0], "decider1": unit["decider"][0], "signer1": unit["signer"][0]}
        m = {f'"{u}"': f'"{team[k][1]}"' for k, u in enumerate(("researcher1", "researcher2", "researcher3"))}
        m |= {f'"{TEMPLATE_PEOPLE[u]}"': f'"{team[k][2]}"'
              for k, u in enumerate(("researcher1", "researcher2", "researcher3"))}
        m |= {f'"{u}"': f'"{p[1]}"' for u, p in staff.items()} | {
            f'"{TEMPLATE_PEOPLE[u]}"': f'"{p[2]}"' for u, p in staff.items()}
        m |= {t["number"]: number, '"SZDU"': f'"{unit["code"]}"', t["ip"]: f"ZL{year}{app_id:07d}.X"}
        if t["app"]["title"]:
            m[t["app"]["title"]] = title
        documents = {d["id"]: doc_id + k for k, d in enumerate(t["documents"])}
        notices = {x["id"]: notice_id + k for k, x in enumerate(t["notices"])}
        values = c.values(m, documents, notices)
        a = t["app"]
        batch["apps"].append((
            app_id, unit_id, number, a["kind"], a["status"], title, c.ip_numbers.format(*values), team[0][0], None,
            dt(a["created_at"] + shift), dt(a["updated_at"] + shift), dt(a["decided_at"] and a["decided_at"] + shift),
            dt(a["closed_at"] and a["closed_at"] + shift), c.summary.format(*values)))
        if state != "draft":
            batch["members"] += [(app_id, p[0]) for p in team]
        batch["states"].append((app_id, version_ids[a["kind"]], None, dt(t["timer_due_at"]), 1))
        batch["jobs"].append((state, values))
        users = dict(zip(("researcher1", "researcher2", "researcher3"), team, strict=True)) | staff
        for x, fmt, slot in zip(t["tasks"], c.tasks, c.task_slots, strict=True):
            assignee = users[x["assignee"]][0] if x["assignee"] in users else None
            created = x["created_at"] + shift
            batch["tasks"].append((values[slot], app_id, unit_id, x["bpmn_id"], x["name"], x["lane"], x["role"],
                                   x["form"], assignee, "ready", dt(created), None,  # ready: not finished
                                   fmt.format(*values), dt(reminded(created))))
        for k, (d, fmt) in enumerate(zip(t["documents"], c.documents, strict=True)):
            batch["docs"].append((doc_id + k, app_id, d["kind"], fmt.format(*values), "application/pdf",
                                  placeholder_sha, len(pdf), pdf, dt(d["created_at"] + shift), None))
        for k, (x, fmt) in enumerate(zip(t["notices"], c.notices, strict=True)):
            batch["notices"].append((
                notice_id + k, app_id, unit_id, x["round"], dt(x["starts_at"] + shift), dt(x["ends_at"] + shift),
                x["last_day"], dt(x["closed_at"] and x["closed_at"] + shift), x["outcome"],
                seconds_between(x["starts_at"], x["closed_at"]),  # shifted alike
                documents.get(x["document_id"]), fmt.format(*values), x["kind"]))
        for e, fmt in zip(t["events"], c.events, strict=True):
            actor = users[e["actor"]][1] if e["actor"] in users else e["actor"]
            events.append((e["at"] + shift, unit_id, app_id, actor, e["action"], e["step"], fmt.format(*values),
                           e["data_digest"]))
        app_id += 1
        doc_id += len(t["documents"])
        notice_id += len(t["notices"])
        if len(batch["apps"]) >= CHUNK:
            flush()
    flush()
    write(*inflight.pop())
    return write_audit(load, events, start, pool)


def write_audit(load: Loader, events: list[tuple], start: dict, pool) -> int:
    """The copies' audit events, in time order, appended to their logs; the heads updated."""
    events.sort(key=lambda e: e[0])
    heads = start["heads"]
    rows = audit_rows(events, heads, start["app_seqs"], load.dt, pool)
    del events
    if pool is not None:
        pool.close()
        pool.join()
    for first in range(0, len(rows), 50_000):
        load.insert("audit_events", AUDIT_COLUMNS, rows[first:first + 50_000])
    load.wait()
    for log_id, (size, frontier) in heads.items():
        root = frontier_root(frontier)
        if log_id in start["existing_logs"]:
            load.execute("UPDATE audit_logs SET size = ?, frontier = ?, root = ? WHERE log_id = ?",
                         (size, json.dumps(frontier), root, log_id))
        else:
            load.execute("INSERT INTO audit_logs (log_id, size, frontier, root) VALUES (?, ?, ?, ?)",
                         (log_id, size, json.dumps(frontier), root))
    return len(rows)


class _Done:
    """An already computed result, shaped like multiprocessing's AsyncResult."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def starting_point(s) -> dict:
    """The first free ids, the audit heads and each application's last audit number."""
    heads = {h.log_id: (h.size, [list(x) for x in h.frontier]) for h in s.execute(select(AuditLog)).scalars()}
    return {"application": (s.execute(select(func.max(Application.id))).scalar() or 0) + 1,
            "document": (s.execute(select(func.max(Document.id))).scalar() or 0) + 1,
            "notice": (s.execute(select(func.max(PublicityNotice.id))).scalar() or 0) + 1,
            "heads": heads, "existing_logs": set(heads),
            "app_seqs": dict(s.execute(select(AuditEvent.application_id, func.max(AuditEvent.app_seq))
                                       .where(AuditEvent.application_id.is_not(None))
                                       .group_by(AuditEvent.application_id)).all())}


def move_sequences(conn) -> None:
    """PostgreSQL: the rows were copied with their ids, so each id sequence is moved past the
    largest id (else the next application, task or event started by the app collides with a copy)."""
    for table, column in conn.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND (column_default LIKE 'nextval(%%' OR is_identity = 'YES')").all():
        conn.exec_driver_sql(f'SELECT setval(pg_get_serial_sequence(\'"{table}"\', \'{column}\'), '
                             f'GREATEST((SELECT max("{column}") FROM "{table}"), 1))')


def busiest_tto(s) -> tuple[str, int]:
    """The officer with the most ready tasks in their unit's queues (or assigned to them)."""
    from workflows.process import queries
    best = ("", -1)
    rows = s.execute(select(User).join(RoleGrant).where(RoleGrant.role == "tto")).scalars().unique().all()
    counts = dict(s.execute(select(HumanTask.unit_id, func.count()).where(
        HumanTask.state == "ready", HumanTask.role == "tto").group_by(HumanTask.unit_id)).all())
    for user in rows:
        unit = next(iter(user.units_for("tto")))
        if counts.get(unit, 0) > best[1]:
            best = (user.username, counts.get(unit, 0))
    return best[0], queries.task_count(s, s.execute(select(User).where(User.username == best[0])).scalar_one())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--database", default="sqlite:///bench/seed.db")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes that pack states and hash audit leaves (0: none)")
    args = parser.parse_args(argv)
    settings.configure(publicity_days=15)
    started = time.monotonic()
    templates = make_templates()
    print(f"templates: {len(templates)} real states in {time.monotonic() - started:.1f} s", flush=True)
    eng = db.make_engine(args.database)
    db.create_schema(eng)
    with db.session_factory(eng)() as s:
        versions = {kind: specs.deployed_version(s, specs.current(pid)).id
                    for kind, pid in engine.PROCESS_FOR_KIND.items()}
        people = seed_people(s, args.units)
        start = starting_point(s)
        s.commit()
    load = Loader(eng)
    load.drop_indexes()
    n_events = replicate(load, templates, people, args.applications, versions, start, workers=args.workers)
    load.wait()
    copied = time.monotonic()
    load.restore_indexes()
    load.finish()
    eng.dispose()
    indexed = time.monotonic()
    eng = db.make_engine(args.database)
    with db.session_factory(eng)() as s:
        rebuild_duration_bins(s.connection())  # the rows above bypass the listeners that keep them
        rebuild_ip_claims(s.connection())  # and the ones that keep the claims on IP numbers
        s.commit()
        username, count = busiest_tto(s)
    if eng.dialect.name != "sqlite":
        with eng.connect() as conn:
            move_sequences(conn)
            conn.exec_driver_sql("ANALYZE")  # fresh planner statistics, as autovacuum would gather them
            conn.commit()
    eng.dispose()
    print(f"copies written in {copied - started:.1f} s, indexes and keys restored in {indexed - copied:.1f} s; "
          f"writer: " + ", ".join(f"{table} {seconds:.1f} s" for table, seconds in load.spent.items()))
    print(f"seeded {args.applications} applications over {args.units} units, {n_events} audit events "
          f"in {time.monotonic() - started:.1f} s")
    print(f"busiest tto: {username} ({count} ready tasks)")
    print(f"password: {PASSWORD}")


if __name__ == "__main__":
    main()
