"""The query plan of every statement a list page runs, captured from the real request path:
`python bench/plans.py --database URL [--tto u35-tto1] [--auditor u35-auditor1] [--password P] [--searches]`.

`--searches`: only the substring searches of bench/search.py's terms (a 3- and a 2-character
title fragment, a representative's name, a number fragment) on the officer's task list, the
auditor's list and the board.

Each page below is asked for once through the Flask test client with a cursor listener that
records its SELECTs with their parameters; each is then explained on the same database (SQLite
`EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`). A statement that reads a whole big
table (SQLite "SCAN <table>" without an index, PostgreSQL "Seq Scan" on one) or takes over
10 ms (best of three runs) is flagged ✘ —
the plans are printed for bench/README. Read-only: nothing is written except the sign-ins'
session rows and audit-free throttle counters (run it on a copy)."""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, inspect, text

from webapp import create_app

SLOW_MS = 10.0   # a statement of a list page's first page should take far less
PAGES = {
    "tto": [("API task list", "/api/v1/tasks"), ("我的待办", "/tasks"), ("我的待办, search", "/tasks?q=芯片"),
            ("我的待办, sorted by title", "/tasks?sort=title"), ("全部申请 (the unit's applications)", "/applications"),
            ("API applications", "/api/v1/applications"), ("通知 (notifications)", "/notifications"),
            ("成果库 (registry)", "/registry"), ("API registry", "/api/v1/registry")],
    "auditor": [("审计 (audit list)", "/audit"), ("审计, search", "/audit?q=芯片")],
    None: [("公示栏 (board)", "/publicity"), ("API board", "/api/v1/publicity"), ("往期公示 (archive)", "/publicity/archive"),
           ("API archive", "/api/v1/publicity/archive"), ("公示栏 search", "/publicity?q=芯片")],
}


def capture(app, client, url: str, headers: dict[str, str] | None = None) -> tuple[int, list[tuple[str, object]]]:
    seen: list[tuple[str, object]] = []
    engine = app.extensions["grants_engine"]

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", record)
    try:
        status = client.get(url, headers=headers or {}).status_code
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return status, seen


def explain(app, statement: str, parameters: object) -> list[str]:
    engine = app.extensions["grants_engine"]
    dialect = engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(prefix + statement, parameters)
        rows = cursor.fetchall()
        raw.rollback()
    finally:
        raw.close()
    if dialect == "sqlite":
        return [str(r[-1]) for r in rows]
    return [str(r[0]) for r in rows]


def run_ms(app, statement: str, parameters: object) -> float:
    """The statement's own time: the best of three runs (the machine is shared)."""
    raw = app.extensions["grants_engine"].raw_connection()
    best = float("inf")
    try:
        for _ in range(3):
            cursor = raw.cursor()
            started = time.perf_counter()
            cursor.execute(statement, parameters)
            cursor.fetchall()
            best = min(best, (time.perf_counter() - started) * 1000)
        raw.rollback()
    finally:
        raw.close()
    return best


def big_tables(app) -> set[str]:
    """The tables with more than 10,000 rows: a full read of a small table is no finding."""
    engine = app.extensions["grants_engine"]
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return {t for t in names if conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 10001) AS x"))
                .scalar_one() > 10000}


def full_scans(plan: list[str], big: set[str]) -> list[str]:
    bad = []
    for line in plan:
        sqlite = re.search(r"\bSCAN (\w+)(?! USING (COVERING )?INDEX| VIRTUAL TABLE INDEX \d+:M)", line)
        pg = re.search(r"Seq Scan on (\w+)", line)
        table = (sqlite or pg).group(1) if (sqlite or pg) else None
        if table in big and not re.search(r"SCAN \w+ USING", line):
            bad.append(line.strip())
    return bad


def sign_in(app, username: str | None, password: str):
    client = app.test_client()
    if username:
        assert client.post("/login", data={"username": username, "password": password}).status_code == 302
    return client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--tto", default="u35-tto1")
    parser.add_argument("--auditor", default="u35-auditor1")
    parser.add_argument("--password", default="bench-pass-2026")
    parser.add_argument("--searches", action="store_true")
    args = parser.parse_args()
    app = create_app({"DATABASE_URL": args.database, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "bench"})
    pages = PAGES
    if args.searches:
        from search import terms  # bench/search.py, beside this script
        found = terms(app, args.tto)
        print(f"search terms: {found}")
        pages = {"tto": [(f"我的待办, q = {k}", f"/tasks?q={quote(v)}") for k, v in found.items()],
                 "auditor": [(f"审计, q = {k}", f"/audit?q={quote(v)}") for k, v in found.items()],
                 None: [(f"公示栏, q = {k}", f"/publicity?q={quote(v)}") for k, v in found.items()]}
    flagged = 0
    big = big_tables(app)
    print(f"tables over 10,000 rows: {', '.join(sorted(big))}")
    for who, listed in pages.items():
        username = {"tto": args.tto, "auditor": args.auditor, None: None}[who]
        client = sign_in(app, username, args.password)
        bearer = {}
        if username:
            token = client.post("/api/v1/tokens", json={"username": username, "password": args.password}).get_json()
            bearer = {"Authorization": f"Bearer {token['token']}"}
        for name, url in listed:
            status, statements = capture(app, client, url, bearer if url.startswith("/api/") else None)
            print(f"\n### {name} — `GET {url}` as {username or 'anyone'}: HTTP {status}, {len(statements)} SELECTs")
            for i, (statement, parameters) in enumerate(statements, 1):
                if "FROM" not in statement.upper():
                    continue
                plan = explain(app, statement, parameters)
                bad = full_scans(plan, big)
                ms = run_ms(app, statement, parameters)
                flagged += bool(bad) or ms > SLOW_MS
                head = " ".join(statement.split())[:160]
                mark = "✘ full scan" if bad else f"✘ {ms:.1f} ms" if ms > SLOW_MS else "✔"
                print(f"{i}. {mark} ({ms:.1f} ms) `{head}…`\n```\n" + "\n".join(plan) + "\n```")
    print(f"\nstatements reading a whole big table or slower than {SLOW_MS} ms: {flagged}")


if __name__ == "__main__":
    main()
