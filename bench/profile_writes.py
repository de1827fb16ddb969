"""Where a REST start or task submit spends its time: the whole request path in-process (Flask
test client, same app as `grants run`), a count of SQL statements per request, CPU time per step,
and a pyinstrument profile of each step.

Run: PYTHONPATH=$PWD python bench/profile_writes.py --runs 40 [--database URL] [--html DIR]
(a fresh SQLite file with the demo seed unless --database names an empty database).
`--cprofile none` measures without any profiler (the numbers to compare; pyinstrument adds ~2x).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from webapp import create_app
from workflows import db, demo
from workflows.process import forms

PASSWORD = "demo-pass-2026"


def make_app(url: str | None):
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp()}/profile.db"
    engine = db.make_engine(url)
    db.create_schema(engine)
    with db.session_factory(engine)() as s:
        demo.seed(s)
        s.commit()
    engine.dispose()
    return create_app({"DATABASE_URL": url, "SECRET_KEY": "profile-secret", "DEMO": True})


def draft(n: int) -> dict:
    data = forms.load_schema("ownership_draft.schema.json")["examples"][0]
    data["members"] = [dict(data["members"][0], share=100)]
    data["achievement"]["ip_numbers"] = [f"PROF-{n}-{time.time_ns()}"]
    return data


class Counter:
    def __init__(self, engine):
        self.n, self.statements = 0, []
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, params, context, executemany):
        self.n += 1
        self.statements.append(statement.split("\n")[0][:110])


def steps(client, headers, n: int):
    """Yields (name, callable) for one walk: start, draft, consent, list."""
    box = {}

    def start():
        r = client.post("/api/v1/applications", json={"kind": "ownership"}, headers=headers)
        assert r.status_code == 201, r.get_json()
        box["task"] = r.get_json()["task"]["id"]

    def submit_draft():
        r = client.post(f"/api/v1/tasks/{box['task']}/complete", json=draft(n), headers=headers)
        assert r.status_code == 200, r.get_json()
        box["task"] = r.get_json()["current_steps"][0]["task_id"]

    def submit_consent():
        r = client.post(f"/api/v1/tasks/{box['task']}/complete", json={"agree": True, "comment": ""},
                        headers=headers)
        assert r.status_code == 200, r.get_json()

    def list_tasks():
        r = client.get("/api/v1/tasks", headers=headers)
        assert r.status_code == 200

    return [("start", start), ("submit draft", submit_draft), ("submit consent", submit_consent),
            ("list tasks", list_tasks)]


def main() -> None:  # noqa: PLR0912 (one branch per command-line option and step)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--database")
    parser.add_argument("--html", help="write one pyinstrument HTML profile per step here")
    parser.add_argument("--sql", action="store_true", help="print the statements of one walk")
    parser.add_argument("--cprofile", help="print cProfile's top functions (by own time) of this step")
    parser.add_argument("--raw", action="store_true",
                        help="also time the raw engine floor of the same steps (bench/peer/run.py RawOurs), "
                             "one raw walk after each walk")
    args = parser.parse_args()
    from pyinstrument import Profiler

    app = make_app(args.database)
    client = app.test_client()
    token = client.post("/api/v1/tokens", json={"username": "researcher1", "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    counter = Counter(app.extensions["grants_engine"])
    for n in range(3):  # warm up: caches, first parse of the specs
        for _name, action in steps(client, headers, n):
            action()
    wall, cpu, sql = {}, {}, {}
    profilers = {}
    import cProfile
    import pstats
    cprof = cProfile.Profile()
    raw_side, raw_cpu = None, {}
    if args.raw:
        import importlib.util
        spec = importlib.util.spec_from_file_location("peer_run", Path(__file__).resolve().parent / "peer" / "run.py")
        peer_run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(peer_run)
        raw_side = peer_run.RawOurs()
    for n in range(args.runs):
        if raw_side is not None:  # the same three steps without HTTP, database or checks
            c0 = time.thread_time()
            task_id, _ms = raw_side.start()
            c1 = time.thread_time()
            task_id, _ms = raw_side.submit(task_id, True)
            c2 = time.thread_time()
            raw_side.submit(task_id, False)
            c3 = time.thread_time()
            for name, used in (("start", c1 - c0), ("submit draft", c2 - c1), ("submit consent", c3 - c2)):
                raw_cpu.setdefault(name, []).append(used * 1000)
        for name, action in steps(client, headers, 100 + n):
            profiler = profilers.setdefault(name, Profiler(interval=0.0005)) if not args.cprofile else None
            if name == args.cprofile:
                cprof.enable()
            before = counter.n
            counter.statements.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            if profiler:
                profiler.start()
            action()
            if profiler:
                profiler.stop()
            cprof.disable()
            wall.setdefault(name, []).append((time.perf_counter() - t0) * 1000)
            cpu.setdefault(name, []).append((time.process_time() - c0) * 1000)
            sql[name] = counter.n - before
            if args.sql and n == 0:
                print(f"-- {name}: {sql[name]} statements")
                print("\n".join(counter.statements))
    print("| step | wall median ms | wall p95 ms | CPU median ms | CPU p95 ms | SQL statements |")
    print("|---|---|---|---|---|---|")
    for name, times in wall.items():
        w, c = sorted(times), sorted(cpu[name])
        print(f"| {name} | {statistics.median(w):.1f} | {w[int(0.95 * (len(w) - 1))]:.1f} "
              f"| {statistics.median(c):.1f} | {c[int(0.95 * (len(c) - 1))]:.1f} | {sql[name]} |")
    for name, times in raw_cpu.items():
        c = sorted(times)
        print(f"| raw engine {name} | CPU median {statistics.median(c):.2f} ms | p95 {c[int(0.95 * (len(c) - 1))]:.2f} ms "
              f"| target 2×raw+3 = {2 * statistics.median(c) + 3:.1f} ms |")
    if args.cprofile and args.cprofile in wall:
        pstats.Stats(cprof).sort_stats("tottime").print_stats(45)
        pstats.Stats(cprof).sort_stats("cumulative").print_stats(60)
    if args.cprofile:
        return
    for name, profiler in profilers.items():
        if args.html:
            Path(args.html).mkdir(parents=True, exist_ok=True)
            Path(args.html, name.replace(" ", "_") + ".html").write_text(profiler.output_html())
        else:
            print(f"\n==== {name}")
            print(profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False)[:6000])


if __name__ == "__main__":
    json.dumps  # noqa: B018 (kept for ad-hoc dumps)
    main()
