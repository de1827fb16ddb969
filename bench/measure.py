"""First pages at scale, through the Flask test client (the whole request path, no network):
`python bench/measure.py --database URL --user USERNAME [--password P] [--n 40] [--explain]`.

Prints p50/p95 per page and, with --explain, the plan of each list query (SQLite EXPLAIN QUERY
PLAN, PostgreSQL EXPLAIN ANALYZE). Run bench/seed.py first; it prints the busiest officer.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from webapp import create_app
from webapp.blueprints.public import board_query
from workflows.models import Application, HumanTask, User
from workflows.process import queries


def timed(client, url: str, n: int, **kwargs) -> tuple[float, float, int, float, float]:
    """Wall p50/p95, bytes, and CPU p50/p95 (process time: what the request itself costs,
    whatever else the shared machine runs)."""
    times, cpu = [], []
    size = 0
    for _ in range(n):
        started, began = time.perf_counter(), time.process_time()
        response = client.get(url, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        size = len(response.data)
    return _p(times, .5), _p(times, .95), size, _p(cpu, .5), _p(cpu, .95)


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return statistics.median(values) if q == .5 else values[max(0, int(len(values) * q) - 1)]


def explain(session, query, dialect: str) -> str:
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) "
    rows = session.execute(text(prefix + sql)).all()
    return "\n".join(" | ".join(str(c) for c in r) for r in rows)


def application_sample(session, unit: int, n: int) -> list[int]:
    """n applications of the unit, taken in turn from each status it has (every state of the
    process: drafts, reviews, publicity, signing, completed, refused …), a spread of ids in each."""
    by_status: dict[str, list[int]] = {}
    for status in session.execute(select(Application.status).where(Application.unit_id == unit)
                                  .group_by(Application.status).order_by(Application.status)).scalars():
        ids = list(session.execute(select(Application.id).where(Application.unit_id == unit,
                                                                 Application.status == status)
                                   .order_by(Application.id).limit(500)).scalars())
        step = max(1, len(ids) // max(1, n))
        by_status[status] = ids[::step]
    picked: list[int] = []
    while len(picked) < n and any(by_status.values()):
        for ids in by_status.values():
            if ids and len(picked) < n:
                picked.append(ids.pop(0))
    return picked


def application_pages(app, client, app_ids: list[int], header: bool = True) -> None:
    """The application page for each id (after one warm-up request), wall and CPU, and how many
    SQL statements each request issued (an engine event listener)."""
    from sqlalchemy import event
    engine = app.extensions["grants_sessions"].kw["bind"]
    counted: list[int] = [0]

    def count(*_args) -> None:
        counted[0] += 1
    client.get(f"/applications/{app_ids[0]}")
    event.listen(engine, "before_cursor_execute", count)
    times, cpu, statements = [], [], []
    try:
        for app_id in app_ids:
            counted[0] = 0
            started, began = time.perf_counter(), time.process_time()
            assert client.get(f"/applications/{app_id}").status_code == 200
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - began) * 1000)
            statements.append(counted[0])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    if header:
        print("| page | wall p50 ms | wall p95 ms | CPU p50 ms | CPU p95 ms | statements min–max |\n"
              "|---|---|---|---|---|---|")
    print(f"| GET /applications/<id> ({len(times)} different) | {_p(times, .5):.1f} | {_p(times, .95):.1f} | "
          f"{_p(cpu, .5):.1f} | {_p(cpu, .95):.1f} | {min(statements)}–{max(statements)} |")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def explain_page(app, client, app_ids: list[int]) -> None:
    """The plan of every statement one application page issues (a page with the most statements
    of the sample), run with the very parameters it was sent with."""
    from sqlalchemy import event
    engine = app.extensions["grants_sessions"].kw["bind"]
    best: list[tuple[str, object]] = []
    for app_id in app_ids:
        seen: list[tuple[str, object]] = []

        def keep(_conn, _cursor, statement, parameters, _context, _many, seen=seen) -> None:
            seen.append((statement, parameters))
        event.listen(engine, "before_cursor_execute", keep)
        try:
            client.get(f"/applications/{app_id}")
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        if len(seen) > len(best):
            best, chosen = seen, app_id
    dialect = engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) "
    print(f"\n-- application page /applications/{chosen}: {len(best)} statements ({dialect})")
    with engine.connect() as conn:
        for statement, parameters in best:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            print("\n" + " ".join(statement.split())[:160] + " …")
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            print("\n".join("  " + " | ".join(str(c) for c in r[-1:]) for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", default="bench-pass-2026")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--page-only", action="store_true", help="only the application page (--n pages, "
                        "spread over every status of the officer's unit), with its statement count")
    args = parser.parse_args()
    app = create_app({"DATABASE_URL": args.database, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "bench"})
    client = app.test_client()
    assert client.post("/login", data={"username": args.user, "password": args.password}).status_code == 302
    token = client.post("/api/v1/tokens", json={"username": args.user, "password": args.password}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    sessions = app.extensions["grants_sessions"]
    with sessions() as s:
        user = s.execute(select(User).where(User.username == args.user)).scalar_one()
        unit = next(iter(user.units_for("tto")))
        app_ids = application_sample(s, unit, args.n)
        total = s.execute(select(queries.func.count()).select_from(queries.tasks_for(user).subquery())).scalar_one()
    print(f"user {args.user}: {total} ready tasks; database {args.database.split('@')[-1]}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.page_only:
        application_pages(app, client, app_ids)
        if args.explain:
            explain_page(app, client, app_ids)
        return
    rows = [("GET /api/v1/tasks (first page)", "/api/v1/tasks", {"headers": bearer}),
            ("GET /tasks (我的待办, first page)", "/tasks", {}),
            ("GET /api/v1/publicity (first page)", "/api/v1/publicity", {}),
            ("GET /publicity (board, first page)", "/publicity", {}),
            ("GET /api/v1/publicity/archive (first page)", "/api/v1/publicity/archive", {}),
            ("GET /publicity/archive (往期公示, first page)", "/publicity/archive", {}),
            ("GET /tasks?q=… (search by title)", "/tasks?q=芯片", {})]
    print("| page | wall p50 ms | wall p95 ms | CPU p50 ms | CPU p95 ms | bytes |\n|---|---|---|---|---|---|")
    for name, url, kwargs in rows:
        timed(client, url, 3, **kwargs)  # warm
        p50, p95, size, c50, c95 = timed(client, url, args.n, **kwargs)
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {c50:.1f} | {c95:.1f} | {size} |")
    application_pages(app, client, app_ids, header=False)
    import resource
    print(f"max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.explain:
        with sessions() as s:
            user = s.get(User, user.id)
            dialect = s.get_bind().dialect.name
            task_q, _ = queries.sorted_by(queries.tasks_for(user), queries.TASK_SORTS, None, "created")
            board_q, _ = queries.sorted_by(board_query(), queries.NOTICE_SORTS, None, "ends")
            staff_apps, _ = queries.sorted_by(select(Application).where(Application.unit_id == unit),
                                              queries.APPLICATION_SORTS, None, "-updated")
            for name, q in (("task list page", task_q.limit(50)),
                            ("task list count", select(queries.func.count()).select_from(
                                task_q.order_by(None).subquery())),
                            ("board page", board_q.limit(50)),
                            ("unit's applications page", staff_apps.limit(50)),
                            ("application page: ready steps", select(HumanTask).where(
                                HumanTask.application_id == app_ids[0], HumanTask.state == "ready"))):
                print(f"\n-- {name} ({dialect})\n{explain(s, q, dialect)}")


if __name__ == "__main__":
    main()
