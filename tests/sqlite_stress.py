"""Run as a program by tests/test_sqlite_threads.py (a crash must not take the test run down):
`grants run` in miniature — waitress threads serving requests while the ticker thread sweeps
the same SQLite file — for a bounded number of seconds. Exit 0 if every answer was a 200."""
from __future__ import annotations

import sys
import threading
import time

import requests

from tests.driver import Driver
from tests.live import serve, token
from webapp import create_app
from webapp.cli import tick_once
from workflows import db, demo


def main(url: str, seconds: float, applications: int) -> int:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "stress", "SMTP_PORT": 1, "TICK_INTERVAL_SECONDS": 0.0})
    db.create_schema(app.extensions["grants_engine"])
    sessions = app.extensions["grants_sessions"]
    with sessions() as s:
        demo.seed(s)
        s.commit()
    drive = Driver(sessions)
    for i in range(applications):
        drive.draft_for_ip(drive.start(), f"STRESS-{i}")
    stop, failures, answers = threading.Event(), [], [0]

    def ticker():
        while not stop.is_set():
            try:
                tick_once(app)
            except Exception as exc:  # the server logs and goes on; here it is a failure
                failures.append(f"sweep: {exc!r}")

    def client(base, bearer, paths):
        with requests.Session() as http:
            while not stop.is_set():
                for path in paths:
                    r = http.get(f"{base}{path}", headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
                    answers[0] += 1
                    if r.status_code != 200:
                        failures.append(f"{path}: {r.status_code}")
    with serve(app, threads=8) as base:
        bearers = {who: token(base, who) for who in ("researcher1", "researcher2", "tto1")}
        threads = [threading.Thread(target=ticker, daemon=True)]
        for bearer in bearers.values():
            for _ in range(2):
                threads.append(threading.Thread(target=client, daemon=True, args=(
                    base, bearer, ["/api/v1/tasks", "/api/v1/applications", "/api/v1/me"])))
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(30)
    print(f"{answers[0]} answers, {len(failures)} failures", failures[:5])
    return 0 if not failures and answers[0] > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
