"""A year of applications over two units, written as rows (statistics read only rows, never a
workflow), with the expected figures counted independently in Python from the same plan."""
from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from workflows.catalogue import ObjectionDecision, ObjectionStatus
from workflows.models import KINDS, STATUSES, Application, HumanTask, Objection, PublicityNotice, Unit, User
from workflows.reporting import registry

YEAR = 2026
STEP_TASKS = {"draft": "draft", "consent": "consent", "review": "review", "decision": "unit_decision",
              "signing": "sign_unit", "transfer": "ip_transfer"}


def _at(month: int, day: int, hour: int = 4, year: int = YEAR) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)  # 12:00 in Shanghai: no year-edge ambiguity


def plan() -> list[dict]:
    """Per unit, every status and kind, some started the year before, some closed across the year."""
    rows = []
    for u, unit in enumerate(("SZDU", "SZDI")):
        for i, status in enumerate(STATUSES):
            for k, kind in enumerate(KINDS):
                if (i + k + u) % 3 == 2:
                    continue
                year = YEAR - 1 if (i + k) % 5 == 4 else YEAR
                created = _at(1 + (i + k) % 11, 1 + u + k, year=year)
                closed = None
                if status in ("completed", "refused", "withdrawn"):
                    closed = _at(min(12, created.month + 1 + k) if year == YEAR else 2 + i % 10, 10 + k)
                rows.append({"unit": unit, "status": status, "kind": kind, "created": created, "closed": closed,
                             "wait": 1 + (i * 3 + k * 5 + u) % 17})
    return rows


def seed(session) -> list[dict]:
    """Writes the plan; returns it with the ids and the task waits it produced."""
    units = {u.code: u for u in session.execute(select(Unit)).scalars()}
    rep = session.execute(select(User).where(User.username == "researcher1")).scalar_one()
    rows = plan()
    for n, row in enumerate(rows):
        app = Application(unit_id=units[row["unit"]].id, number=f"T{row['unit']}-{n:04d}", kind=row["kind"],
                          status=row["status"], title=f"成果{n}", representative_id=rep.id,
                          created_at=row["created"], updated_at=row["created"], closed_at=row["closed"])
        session.add(app)
        session.flush()
        row["id"], row["tasks"] = app.id, []
        for s, (step, bpmn_id) in enumerate(STEP_TASKS.items()):
            began = row["created"] + timedelta(days=s * 20)
            done = began + timedelta(days=row["wait"] + s, hours=6 * (s % 2))
            session.add(HumanTask(id=str(uuid.uuid4()), application_id=app.id, unit_id=app.unit_id, bpmn_id=bpmn_id,
                                  name=step, lane="x", role="tto", form="x.json", state="completed",
                                  created_at=began, completed_at=done))
            row["tasks"].append((step, done, (done - began).total_seconds() / 86400))
        session.add(HumanTask(id=str(uuid.uuid4()), application_id=app.id, unit_id=app.unit_id, bpmn_id="review",
                              name="open", lane="x", role="tto", form="x.json", state="ready",
                              created_at=row["created"]))
        if row["status"] in ("publicity", "completed", "refused"):
            starts = row["created"] + timedelta(days=30)
            closed = starts + timedelta(days=15 + n % 3) if row["status"] != "publicity" else None
            notice = PublicityNotice(application_id=app.id, unit_id=app.unit_id, starts_at=starts,
                                     ends_at=starts + timedelta(days=16), last_day="2026-01-01", closed_at=closed)
            session.add(notice)
            session.flush()
            row["notice"] = (starts, closed)
            row["objections"] = []
            for j in range(n % 3):
                decision = ObjectionDecision.UPHOLD if (n + j) % 2 else ObjectionDecision.DISMISS
                status = ObjectionStatus.UPHELD if decision == ObjectionDecision.UPHOLD else ObjectionStatus.DISMISSED
                session.add(Objection(receipt=f"R{n}-{j}", notice_id=notice.id, application_id=app.id, name="某",
                                      contact="x", reason="理由", filed_at=starts + timedelta(days=1),
                                      status=status, decision=decision))
                row["objections"].append((starts + timedelta(days=1), decision))
    session.flush()
    return rows


def seed_registry(session) -> list[dict]:
    """Entries in every state: registered, flagged and moved by the registry's operations (the grant
    fields set directly, as a completed grant would, without walking a grant per entry)."""
    tto = {c: session.execute(select(User).where(User.username == u)).scalar_one()
           for c, u in (("SZDU", "tto1"), ("SZDI", "tto2"))}
    entries = []
    for u, unit in enumerate(("SZDU", "SZDI")):
        for i in range(9):
            registered_on = f"{YEAR - (i % 4 == 3)}-{1 + i:02d}-0{1 + u}"
            entry = registry.register(session, tto[unit], unit, {
                "title": f"{unit}成果{i}", "ip_type": "patent" if i % 2 else "software_copyright",
                "ip_numbers": [f"{unit}-ZL-{i}"], "inventors": ["researcher1"], "funding_source": "fiscal",
                "registered_on": registered_on})
            state = registry.STATES[i % 5]
            if state in ("granted", "converting"):
                entry.grant_kind, entry.status = ("ownership", "use_right")[i % 2], "granted"
                entry.granted_on, entry.granted_year = f"{YEAR}-06-01", YEAR
            if state == "converting":
                registry.start_conversion(session, entry, "tto")
            if state in ("converted", "left"):
                mode = ("transfer", "licence", "equity")[i % 3]
                left_on = f"{YEAR - (i == 3)}-10-0{1 + u}"
                registry.mark_left(session, tto[unit], entry.id, state, left_on, mode, f"HT-{unit}-{i}")
            entries.append({"unit": unit, "id": entry.id, "state": entry.status, "registered_year": int(registered_on[:4]),
                            "grant_kind": entry.grant_kind, "granted_year": entry.granted_year,
                            "left_year": entry.left_year, "mode": entry.left_mode})
    session.flush()
    return entries


def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(sorted(values)[math.ceil(p * len(values)) - 1], 2)


def expected(rows: list[dict], entries: list[dict], unit: str | None) -> dict:
    """The figures, counted in Python from the plan (not from the database)."""
    mine = [r for r in rows if unit is None or r["unit"] == unit]
    in_year = lambda t: t is not None and t.year == YEAR  # noqa: E731 (all times are 04:00 UTC)
    apps = Counter(r["status"] for r in mine if in_year(r["created"]))
    granted = Counter(r["kind"] for r in mine if r["status"] == "completed" and in_year(r["closed"]))
    months = Counter(r["closed"].month for r in mine if r["status"] == "completed" and in_year(r["closed"]))
    waits: dict[str, list[float]] = {}
    for r in mine:
        for step, done, days in r["tasks"]:
            if in_year(done):
                waits.setdefault(step, []).append(days)
        if r.get("notice") and r["notice"][1] is not None and in_year(r["notice"][1]):
            waits.setdefault("publicity", []).append((r["notice"][1] - r["notice"][0]).total_seconds() / 86400)
    objections = [o for r in mine for o in r.get("objections", []) if in_year(o[0])]
    ents = [e for e in entries if unit is None or e["unit"] == unit]
    return {
        "applications": {s: apps.get(s, 0) for s in STATUSES},
        "granted": {k: granted.get(k, 0) for k in KINDS},
        "grants_per_month": [months.get(m, 0) for m in range(1, 13)],
        "steps": {s: (len(waits.get(s, [])), nearest_rank(waits.get(s, []), .5), nearest_rank(waits.get(s, []), .9))
                  for s in ("draft", "consent", "review", "decision", "publicity", "signing", "transfer")},
        "objections": {"notices": sum(1 for r in mine if r.get("notice") and in_year(r["notice"][0])),
                       "filed": len(objections), "upheld": sum(1 for o in objections if o[1] == "uphold")},
        "registry": {s: sum(1 for e in ents if e["state"] == s) for s in registry.STATES},
        "converted": {m: sum(1 for e in ents if e["state"] == "converted" and e["left_year"] == YEAR
                             and e["mode"] == m) for m in registry.MODES},
        "registry_movements": {
            "registered": sum(1 for e in ents if e["registered_year"] == YEAR),
            "granted": {k: sum(1 for e in ents if e["grant_kind"] == k and e["granted_year"] == YEAR)
                        for k in ("ownership", "use_right")},
            "converted": sum(1 for e in ents if e["state"] == "converted" and e["left_year"] == YEAR),
            "left": sum(1 for e in ents if e["state"] == "left" and e["left_year"] == YEAR)},
    }
