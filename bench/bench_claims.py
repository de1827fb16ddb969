"""The draft submit's no-double-reward check (同一成果不重复激励, §三(一)3) on a seeded database:
statements, CPU and wall time of one draft submit through the engine (the whole step: policy,
claims, workflow, persist, audit at commit), and of the check's read alone — the old query (every
open application's and the unit's registry entries' ip_numbers) next to the claims look-up when
the tree has one. Runs on either tree, so before/after interleave on copies of one seed.

Run: PYTHONPATH=<tree> python bench/bench_claims.py --database sqlite:////tmp/copy.db --runs 20 [--unit U01]
(a database from `bench/seed.py --applications 10000 --units 4`: ~2,500 applications per unit,
as at 100,000 over 40 units). Each run adds one application to the unit.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select

from workflows import db, settings
from workflows.catalogue import KindCode, RegistryState, StatusCode
from workflows.models import Application, RegistryEntry, Unit, User
from workflows.process import engine, forms

try:
    from workflows.models import claimed_numbers
except ImportError:  # the tree before the claims table
    claimed_numbers = None


def old_check_read(session, unit_id: int, app_id: int) -> set[str]:
    """What steps._claimed_ip_numbers read before the claims table."""
    claimed: set[str] = set()
    for numbers in session.execute(select(RegistryEntry.ip_numbers).where(
            RegistryEntry.unit_id == unit_id, RegistryEntry.application_id != app_id,
            RegistryEntry.status != RegistryState.REGISTERED)).scalars():
        claimed.update(numbers or [])
    for numbers in session.execute(select(Application.ip_numbers).where(
            Application.unit_id == unit_id, Application.id != app_id, Application.kind != KindCode.EXTENSION,
            Application.status.notin_((StatusCode.REFUSED, StatusCode.WITHDRAWN)))).scalars():
        claimed.update(numbers)
    return claimed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--unit", default="U01")
    args = parser.parse_args()
    settings.configure(publicity_days=15)
    eng = db.make_engine(args.database)
    factory = db.session_factory(eng)
    statements: list[str] = []
    event.listen(eng, "before_cursor_execute", lambda _c, _cur, stmt, *_a: statements.append(stmt))
    who = f"{args.unit.lower()}-researcher1"
    with factory() as s:
        unit = s.execute(select(Unit).where(Unit.code == args.unit)).scalar_one()
        rep = s.execute(select(User).where(User.username == who)).scalar_one()
        unit_id, rep_name = unit.id, rep.name
        apps = s.execute(select(func.count()).select_from(Application).where(Application.unit_id == unit_id)).scalar_one()
    template = forms.load_schema("ownership_draft.schema.json")["examples"][0]
    n_stmts, cpu, wall, old_cpu, new_cpu = [], [], [], [], []
    for i in range(args.runs):
        def start(s):
            user = s.execute(select(User).where(User.username == who)).scalar_one()
            u = s.execute(select(Unit).where(Unit.id == unit_id)).scalar_one()
            app = engine.start_application(s, user, u, KindCode.OWNERSHIP)
            return app.id, next(t.id for t in engine_ready(s, app.id))
        app_id, task_id = db.in_transaction(factory, start)
        draft = copy.deepcopy(template)
        draft["members"] = [dict(draft["members"][0], username=who, name=rep_name, share=100)]
        draft["achievement"]["ip_numbers"] = [f"CLAIMS-{time.time_ns()}-{i}"]
        with factory() as s:
            db.begin_write(s)
            user = s.execute(select(User).where(User.username == who)).scalar_one()
            del statements[:]
            t0, c0 = time.perf_counter(), time.process_time()
            engine.complete_task(s, user, task_id, draft)
            s.commit()
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - t0) * 1000)
            n_stmts.append(len(statements))
        with factory() as s:
            c0 = time.process_time()
            old_check_read(s, unit_id, app_id)
            old_cpu.append((time.process_time() - c0) * 1000)
            if claimed_numbers is not None:
                c0 = time.process_time()
                claimed_numbers(s, unit_id, app_id, draft["achievement"]["ip_numbers"])
                new_cpu.append((time.process_time() - c0) * 1000)
    med = statistics.median
    tree = "claims table" if claimed_numbers is not None else "old check"
    print(f"{tree}: unit {args.unit} with {apps} applications, {args.runs} draft submits")
    print(f"| draft submit | statements {med(n_stmts):.0f} | CPU ms median {med(cpu):.1f} | wall ms median {med(wall):.1f} |")
    print(f"| check read alone, old query | CPU ms median {med(old_cpu):.2f} |")
    if new_cpu:
        print(f"| check read alone, claims look-up | CPU ms median {med(new_cpu):.2f} |")
    eng.dispose()


def engine_ready(s, app_id: int):
    from workflows.models import HumanTask
    return s.execute(select(HumanTask).where(HumanTask.application_id == app_id, HumanTask.state == "ready")).scalars()


if __name__ == "__main__":
    main()
