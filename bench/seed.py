"""Seed a city-scale database: `python bench/seed.py --applications 100000 --units 40 [--database URL]`.

Real engine states first: one application per state is walked through the engine (tests/driver.py,
demo people) in a scratch SQLite file. Each is then replicated with fresh ids, numbers, people,
titles, task ids, notices, document metadata and audit events, written in bulk. A copy is the
template's workflow state with its tokens replaced (task UUIDs of ready tasks, number, usernames,
names, title, unit code, notice and document ids), so every seeded application can be opened,
acted on and finished like any other. The audit chain is written through `bulk_audit` below
(one RFC 6962 Merkle log per unit, workflows/evidence/audit.py); `grants verify-audit` passes on the result.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from workflows import clock, db, demo, settings
from workflows.evidence import audit, keys
from workflows.evidence.pack_verify import frontier_append, frontier_root, leaf_hash
from workflows.models import (
    Application,
    ApplicationMember,
    AuditEvent,
    AuditLog,
    Document,
    HumanTask,
    PublicityNotice,
    RoleGrant,
    Unit,
    User,
    WorkflowState,
    rebuild_duration_bins,
    rebuild_ip_claims,
    seconds_between,
)
from workflows.people import accounts
from workflows.process import engine, runtime, specs

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


def _walk(d, state: str) -> int:
    """Drive one application to `state` through the engine, as requests would."""
    app_id = d.start()
    if state == "draft":
        return app_id
    d.draft_for_ip(app_id, _ip_number(state))
    if state == "consenting":
        return app_id
    if state == "withdrawn":
        d.run(lambda s: engine.withdraw(s, d.user(s, "researcher1"), app_id))
        return app_id
    d.consent_all(app_id)
    if state == "in_review":
        return app_id
    d.review(app_id)
    if state == "deciding":
        return app_id
    if state == "refused":
        d.decide(app_id, result="refuse")
        return app_id
    d.decide(app_id)
    if state == "publicity":
        return app_id
    d.pass_publicity(app_id)
    if state == "agreement":
        return app_id
    from tests.driver import example
    d.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    if state == "signing":
        return app_id
    d.sign_both(app_id)
    if state == "ip_transfer":
        return app_id
    d.complete(app_id, "ip_transfer", "tto1", example("ip_transfer"))
    d.complete(app_id, "complete_archive", "tto1", example("completion"))
    return app_id


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
    for state in MIX:
        app_id = _walk(d, state)
        with factory() as s:
            app = s.get(Application, app_id)
            assert app.status == state, (state, app.status)
            templates[state] = {
                "app": _row(app, ("kind", "status", "title", "ip_numbers", "created_at", "updated_at", "decided_at",
                                  "closed_at", "summary")),
                "number": app.number, "ip": _ip_number(state),
                "state": runtime.state_json(app.state.serialized), "timer_due_at": app.state.timer_due_at,
                "tasks": [_row(t, ("id", "bpmn_id", "name", "lane", "role", "form", "state", "created_at",
                                   "context")) | {"assignee": t.assignee.username if t.assignee else None}
                          for t in s.execute(select(HumanTask).where(HumanTask.application_id == app_id,
                                                                     HumanTask.state == "ready")).scalars()],
                "notices": [_row(n, ("id", "round", "starts_at", "ends_at", "last_day", "closed_at", "outcome",
                                     "document_id", "summary"))
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


# --- audit in bulk ---------------------------------------------------------------------------------

def bulk_audit(s, events: list[dict]) -> None:
    """Append events to their units' Merkle logs in one go (the same leaves and heads as
    audit.record, without a lock and a flush per event). `events` are in time order."""
    heads = {h.log_id: h for h in s.execute(select(AuditLog)).scalars()}
    state = {log_id: (h.size, [list(x) for x in h.frontier]) for log_id, h in heads.items()}
    app_seqs = dict(s.execute(select(AuditEvent.application_id, func.max(AuditEvent.app_seq))
                              .where(AuditEvent.application_id.is_not(None))
                              .group_by(AuditEvent.application_id)).all())
    rows = []
    for e in events:
        log_id = e["unit_id"] if e["unit_id"] is not None else audit.SYSTEM_LOG
        size, frontier = state.setdefault(log_id, (0, []))
        app_seq = None
        if e["application_id"] is not None:
            app_seq = app_seqs[e["application_id"]] = app_seqs.get(e["application_id"], 0) + 1
        row = {"log_id": log_id, "seq": size, "app_seq": app_seq, "leaf_version": 2, **e}
        fields = {"v": 2, "log_id": log_id, "seq": size, "app_seq": app_seq, "at": clock.as_utc(e["at"]).isoformat(),
                  "unit_id": e["unit_id"], "application_id": e["application_id"], "actor": e["actor"],
                  "action": e["action"], "step": e["step"], "detail": e["detail"], "data_digest": e["data_digest"]}
        row["leaf_hash"] = leaf_hash(fields)
        frontier_append(frontier, row["leaf_hash"])
        state[log_id] = (size + 1, frontier)
        rows.append(row)
        if len(rows) >= CHUNK:
            s.execute(insert(AuditEvent.__table__), rows)
            rows = []
    if rows:
        s.execute(insert(AuditEvent.__table__), rows)
    for log_id, (size, frontier) in state.items():
        head = heads.get(log_id)
        if head is None:
            s.add(AuditLog(log_id=log_id, size=size, frontier=frontier, root=frontier_root(frontier)))
        else:
            head.size, head.frontier, head.root = size, frontier, frontier_root(frontier)
    s.flush()


# --- replication -------------------------------------------------------------------------------------

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(UUID)


class Copier:
    """Replaces one template's tokens with a copy's: a single regex pass over each JSON text."""

    def __init__(self, template: dict):
        self.t = template
        tokens = [re.escape(f'"{u}"') for u in TEMPLATE_PEOPLE] + [re.escape(f'"{n}"') for n in
                                                                   TEMPLATE_PEOPLE.values()]
        tokens += [re.escape(template["number"]), re.escape('"SZDU"'), re.escape(template["ip"])]
        if template["app"]["title"]:
            tokens.append(re.escape(template["app"]["title"]))
        tokens.append(UUID)  # every task, process and subprocess id: fresh in each copy (future tasks too)
        tokens.append(r'"(?:document_id|notice_id)":\s?\d+')
        self.pattern = re.compile("|".join(tokens))

    def sub(self, text: str, m: dict[str, str]) -> str:
        def repl(match):
            token = match.group(0)
            if token in m:
                return m[token]
            if token[0] not in '"#' and UUID_RE.fullmatch(token):
                m[token] = str(uuid.uuid4())
                return m[token]
            key, _, value = token.partition(":")
            ids = m["#notice"] if "notice" in key else m["#document"]
            return f'{key}:{ids.get(int(value), int(value))}'
        return self.pattern.sub(repl, text)

    def sub_json(self, data, m):
        return json.loads(self.sub(json.dumps(data, ensure_ascii=False), m))


def replicate(s, templates: dict, people: list[dict], n: int, version_ids: dict[str, int], seed: int = 7):
    rnd = random.Random(seed)
    now = clock.now()
    year = clock.local_date(now).year
    states = list(MIX)
    weights = [MIX[k] for k in states]
    copiers = {k: Copier(t) for k, t in templates.items()}
    app_id = (s.execute(select(func.max(Application.id))).scalar() or 0) + 1
    doc_id = (s.execute(select(func.max(Document.id))).scalar() or 0) + 1
    notice_id = (s.execute(select(func.max(PublicityNotice.id))).scalar() or 0) + 1
    unit_weights = [1 + (i % 7) for i in range(len(people))]  # uneven units: one office is the busiest
    counters = {p["unit_id"]: 0 for p in people}
    placeholder_sha = hashlib.sha256(PLACEHOLDER_PDF).hexdigest()
    batch: dict[str, list] = {k: [] for k in ("apps", "members", "states", "tasks", "notices", "docs")}
    events: list[dict] = []

    period = timedelta(days=settings.get().reminder_after_days)

    def reminded(created):
        """A steady state: an old task was last reminded some time within the past period."""
        return now - rnd.uniform(0, 1) * period if created < now - period else None

    def flush():
        for key, table in (("apps", Application), ("members", ApplicationMember), ("states", WorkflowState),
                           ("docs", Document), ("notices", PublicityNotice), ("tasks", HumanTask)):
            if batch[key]:
                s.execute(insert(table.__table__), batch[key])
                batch[key].clear()

    for _ in range(n):
        state = rnd.choices(states, weights)[0]
        t, c = templates[state], copiers[state]
        unit = rnd.choices(people, unit_weights)[0]
        counters[unit["unit_id"]] += 1
        number = f"{unit['code']}-{year}-{counters[unit['unit_id']]:05d}"
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
        m["#document"] = {d["id"]: doc_id + k for k, d in enumerate(t["documents"])}
        m["#notice"] = {x["id"]: notice_id + k for k, x in enumerate(t["notices"])}
        task_ids = {x["id"]: str(uuid.uuid4()) for x in t["tasks"]}
        m |= task_ids
        a = t["app"]
        batch["apps"].append({
            "id": app_id, "unit_id": unit["unit_id"], "number": number, "kind": a["kind"], "status": a["status"],
            "title": title, "ip_numbers": c.sub_json(a["ip_numbers"], m), "representative_id": team[0][0], "original_id": None,
            "created_at": a["created_at"] + shift, "updated_at": a["updated_at"] + shift,
            "decided_at": a["decided_at"] and a["decided_at"] + shift, "closed_at": a["closed_at"] and
            a["closed_at"] + shift, "summary": c.sub_json(a["summary"], m)})
        batch["members"] += [{"application_id": app_id, "user_id": p[0]} for p in team] if state != "draft" else []
        text = c.sub(t["state"], m)
        batch["states"].append({"application_id": app_id, "process_version_id": version_ids[a["kind"]],
                                "serialized": runtime.pack(text), "timer_due_at": t["timer_due_at"], "version": 1})
        users = dict(zip(("researcher1", "researcher2", "researcher3"), team, strict=True)) | staff
        for x in t["tasks"]:
            assignee = users[x["assignee"]][0] if x["assignee"] in users else None
            batch["tasks"].append({"id": task_ids[x["id"]], "application_id": app_id, "unit_id": unit["unit_id"],
                                   "bpmn_id": x["bpmn_id"], "name": x["name"], "lane": x["lane"], "role": x["role"],
                                   "form": x["form"], "assignee_id": assignee, "state": "ready",
                                   "created_at": x["created_at"] + shift, "duration_seconds": None,  # ready: not finished
                                   "context": c.sub_json(x["context"], m),
                                   "reminded_at": reminded(x["created_at"] + shift)})
        for k, d in enumerate(t["documents"]):
            batch["docs"].append({"id": doc_id + k, "application_id": app_id, "kind": d["kind"],
                                  "filename": c.sub(d["filename"], m), "content_type": "application/pdf",
                                  "sha256": placeholder_sha, "size": len(PLACEHOLDER_PDF), "content": PLACEHOLDER_PDF,
                                  "created_at": d["created_at"] + shift, "created_by_id": None})
        for k, x in enumerate(t["notices"]):
            batch["notices"].append({
                "id": notice_id + k, "application_id": app_id, "unit_id": unit["unit_id"], "round": x["round"],
                "starts_at": x["starts_at"] + shift, "ends_at": x["ends_at"] + shift, "last_day": x["last_day"],
                "closed_at": x["closed_at"] and x["closed_at"] + shift, "outcome": x["outcome"],
                "duration_seconds": seconds_between(x["starts_at"], x["closed_at"]),  # shifted alike
                "document_id": m["#document"].get(x["document_id"]), "summary": c.sub_json(x["summary"], m)})
        for e in t["events"]:
            actor = users[e["actor"]][1] if e["actor"] in users else e["actor"]
            events.append({"at": e["at"] + shift, "unit_id": unit["unit_id"], "application_id": app_id,
                           "actor": actor, "action": e["action"], "step": e["step"],
                           "detail": c.sub_json(e["detail"], m), "data_digest": e["data_digest"]})
        app_id += 1
        doc_id += len(t["documents"])
        notice_id += len(t["notices"])
        if len(batch["apps"]) >= CHUNK:
            flush()
    flush()
    events.sort(key=lambda e: e["at"])
    bulk_audit(s, events)
    rebuild_duration_bins(s.connection())  # the Core inserts above bypass the listener that keeps them
    rebuild_ip_claims(s.connection())  # and the one that keeps the claims on IP numbers
    return len(events)


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
        n_events = replicate(s, templates, people, args.applications, versions)
        s.commit()
        username, count = busiest_tto(s)
    eng.dispose()
    print(f"seeded {args.applications} applications over {args.units} units, {n_events} audit events "
          f"in {time.monotonic() - started:.1f} s")
    print(f"busiest tto: {username} ({count} ready tasks)")
    print(f"password: {PASSWORD}")


if __name__ == "__main__":
    main()
