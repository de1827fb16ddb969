"""Run as a program by tests/test_sqlite_threads.py (a crash must not take the test run down):
`grants run` in miniature — waitress threads serving requests while the ticker thread sweeps
the same SQLite file — for a bounded number of seconds. Readers page through task and
application lists; downloaders fetch the signed annual report PDF, so several requests lay
out documents with WeasyPrint at once (the crash of issue 8, finding 13). Exit 0 if every
answer was a 200 and at least two PDFs came back."""
from __future__ import annotations

import faulthandler
import sys
import threading
import time

import requests

from tests.driver import PASSWORD, Driver
from tests.live import serve, token
from webapp import create_app
from webapp.cli import tick_once
from workflows import db, demo
from workflows.evidence import pki
from workflows.models import Unit

faulthandler.enable()  # a crash prints every thread's stack for the test's failure message


def main(url: str, seconds: float, applications: int, downloaders: int = 3) -> int:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "stress", "SMTP_PORT": 1, "TICK_INTERVAL_SECONDS": 0.0,
                      "WTF_CSRF_ENABLED": False})
    db.create_schema(app.extensions["grants_engine"])
    sessions = app.extensions["grants_sessions"]
    with sessions() as s:
        demo.seed(s)
        s.commit()
        units = [(u.code, u.name) for u in s.query(Unit)]
    for code, name in units:  # `grants keys init` makes them before `grants run` serves
        pki.ensure_unit_ca(app.instance_path, code, name)
    drive = Driver(sessions)
    for i in range(applications):
        drive.draft_for_ip(drive.start(), f"STRESS-{i}")
    stop, failures, answers, pdfs = threading.Event(), [], [0], [0]

    def ticker():
        while not stop.is_set():
            try:
                tick_once(app)
            except Exception as exc:  # the server logs and goes on; here it is a failure
                failures.append(f"sweep: {exc!r}")

    def reader(base, bearer, paths):
        with requests.Session() as http:
            while not stop.is_set():
                for path in paths:
                    r = http.get(f"{base}{path}", headers={"Authorization": f"Bearer {bearer}"}, timeout=60)
                    answers[0] += 1
                    if r.status_code != 200:
                        failures.append(f"{path}: {r.status_code}")

    def downloader(base):
        with requests.Session() as http:
            r = http.post(f"{base}/login", data={"username": "tto1", "password": PASSWORD}, allow_redirects=False,
                          timeout=60)
            if r.status_code != 302:
                failures.append(f"login: {r.status_code}")
                return
            while not stop.is_set():
                r = http.get(f"{base}/statistics/report.pdf?unit=SZDU", timeout=120)
                answers[0] += 1
                if r.status_code != 200 or not r.content.startswith(b"%PDF"):
                    failures.append(f"report.pdf: {r.status_code}")
                else:
                    pdfs[0] += 1
    with serve(app, threads=8) as base:
        bearers = {who: token(base, who) for who in ("researcher1", "researcher2", "tto1")}
        threads = [threading.Thread(target=ticker, daemon=True)]
        threads += [threading.Thread(target=downloader, daemon=True, args=(base,)) for _ in range(downloaders)]
        for bearer in bearers.values():
            threads.append(threading.Thread(target=reader, daemon=True, args=(
                base, bearer, ["/api/v1/tasks", "/api/v1/applications", "/api/v1/me"])))
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(120)
    print(f"{answers[0]} answers, {pdfs[0]} PDFs, {len(failures)} failures", failures[:5])
    return 0 if not failures and pdfs[0] >= 2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), *map(int, sys.argv[4:5])))
