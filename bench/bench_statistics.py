"""Statistics at a city's scale: N applications (default 100,000) over 20 units and three years,
seven finished user tasks each, publicity notices, objections and a registry entry per grant,
written as rows with SQLAlchemy Core; then `statistics.compute` is timed for one unit and for the
whole city (the dashboard's queries), median and p95. Goal: p95 ≤ 200 ms.

Run: python bench/bench_statistics.py [--applications 100000] [--runs 20] [--url DATABASE_URL]
"""
from __future__ import annotations

import argparse
import random
import statistics as stats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from workflows import db, demo, settings
from workflows.catalogue import ObjectionDecision, ObjectionStatus
from workflows.models import (
    KINDS,
    STATUSES,
    Application,
    HumanTask,
    Objection,
    PublicityNotice,
    RegistryEntry,
    Unit,
    User,
)
from workflows.reporting import statistics as figures

TASKS = ("draft", "consent", "review", "unit_decision", "sign_representative", "sign_unit", "ip_transfer")


def seed(factory, n: int, units: int = 20) -> None:
    rng = random.Random(7)
    with factory() as s:
        demo.seed(s)
        for i in range(units - 2):
            s.add(Unit(code=f"U{i:02d}", name=f"单位{i}"))
        s.commit()
        unit_ids = list(s.execute(select(Unit.id)).scalars())
        rep = s.execute(select(User.id).where(User.username == "researcher1")).scalar_one()
    engine = factory.kw["bind"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch = 5000
    with engine.begin() as conn:
        for first in range(0, n, batch):
            apps, tasks, notices, entries = [], [], [], []
            for i in range(first, min(n, first + batch)):
                created = start + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
                status = rng.choice(STATUSES)
                closed = created + timedelta(days=rng.randrange(30, 120)) if status in ("completed", "refused",
                                                                                       "withdrawn") else None
                unit = unit_ids[i % len(unit_ids)]
                apps.append({"id": i + 1, "unit_id": unit, "number": f"B{i:07d}", "kind": rng.choice(KINDS),
                             "status": status, "title": f"成果{i}", "ip_numbers": [], "representative_id": rep,
                             "created_at": created, "updated_at": created, "closed_at": closed})
                t = created
                for bpmn_id in TASKS:
                    done = t + timedelta(hours=rng.randrange(1, 24 * 20))
                    tasks.append({"id": str(uuid.uuid4()), "application_id": i + 1, "unit_id": unit,
                                  "bpmn_id": bpmn_id, "name": bpmn_id, "lane": "x", "role": "tto", "form": "x",
                                  "state": "completed", "created_at": t, "completed_at": done,
                                  "duration_seconds": (done - t).total_seconds(), "context": {}})
                    t = done
                if status == "completed":
                    notices.append({"application_id": i + 1, "unit_id": unit, "round": 1, "starts_at": created,
                                    "ends_at": created + timedelta(days=16), "last_day": "2025-01-01",
                                    "closed_at": created + timedelta(days=16),
                                    "duration_seconds": timedelta(days=16).total_seconds()})
                    day = (closed or created).date().isoformat()
                    entries.append({"unit_id": unit, "title": f"成果{i}", "ip_type": "patent", "ip_numbers": [],
                                    "status": "granted", "application_id": i + 1, "numbers_text": "",
                                    "funding_source": "fiscal", "registered_on": day, "registered_year": int(day[:4]),
                                    "grant_kind": "ownership", "granted_on": day, "granted_year": int(day[:4]),
                                    "updated_at": created, "created_at": created})
            conn.execute(insert(Application), apps)
            conn.execute(insert(HumanTask), tasks)
            if notices:
                conn.execute(insert(PublicityNotice), notices)
            if entries:
                conn.execute(insert(RegistryEntry), entries)
        ids = conn.execute(select(PublicityNotice.id, PublicityNotice.application_id, PublicityNotice.starts_at)
                           .limit(n // 20)).all()
        conn.execute(insert(Objection), [{"receipt": f"R{k}", "notice_id": nid, "application_id": aid, "name": "某",
                                          "contact": "x", "reason": "r", "client": "",
                                          "status": ObjectionStatus.UPHELD if k % 3 else ObjectionStatus.DISMISSED,
                                          "filed_at": at + timedelta(days=1),
                                          "decision": ObjectionDecision.UPHOLD if k % 3 else ObjectionDecision.DISMISS}
                                         for k, (nid, aid, at) in enumerate(ids)])
        from workflows.models import rebuild_duration_bins
        rebuild_duration_bins(conn)  # Core inserts bypass the ORM listener that keeps the bins


def timings(factory, unit_id, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process: SQLAlchemy, the driver and SQLite itself) per call, in ms."""
    wall, cpu = [], []
    for _ in range(runs):
        with factory() as s:
            t0, c0 = time.perf_counter(), time.process_time()
            figures.compute(s, unit_id, 2025)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url")
    parser.add_argument("--reuse", action="store_true", help="the database at --url is already seeded")
    args = parser.parse_args()
    settings.configure(instance_dir=tempfile.mkdtemp())  # demo.seed signs with keys kept there
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = db.make_engine(url)
    db.create_schema(engine)
    factory = db.session_factory(engine)
    t0 = time.perf_counter()
    if not args.reuse:
        seed(factory, args.applications)
    print(f"seeded {args.applications} applications in {time.perf_counter() - t0:.0f} s ({engine.dialect.name})")
    with factory() as s:
        unit_id = s.execute(select(Unit.id).where(Unit.code == "SZDU")).scalar_one()
    for label, target in (("one unit", unit_id), ("every unit (city)", None)):
        wall, cpu = (sorted(x) for x in timings(factory, target, args.runs))
        p95 = wall[max(0, round(0.95 * len(wall)) - 1)]
        cpu95 = cpu[max(0, round(0.95 * len(cpu)) - 1)]
        print(f"statistics.compute, {label}: median {stats.median(wall):.0f} ms, p95 {p95:.0f} ms "
              f"(CPU median {stats.median(cpu):.0f} ms, p95 {cpu95:.0f} ms)")


if __name__ == "__main__":
    main()
