"""Application pages to files, to prove a change leaves the HTML byte for byte the same:
`python bench/page_dump.py --database URL --user OFFICER --out DIR [--n 60]`, run from the root
of each version of the code against the same database, then `diff -r DIR_BEFORE DIR_AFTER`.

Renders, with the clock frozen, `--n` applications of the officer's unit taken in turn from every
status (`measure.application_sample`), each as the officer, as the unit's auditor and as the
application's representative, latest and `?revision=1`; and the list pages in `LISTS` as the officer.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from freezegun import freeze_time
from sqlalchemy import select

from bench.measure import application_sample
from webapp import create_app
from workflows.models import Application, User

LISTS = ("/", "/tasks", "/tasks?page=2", "/notifications", "/applications", "/applications?per_page=200",
         "/registry", "/statistics", "/audit")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", default="bench-pass-2026")
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--at", default="2026-12-02 12:00:00")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = create_app({"DATABASE_URL": args.database, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "bench"})
    sessions = app.extensions["grants_sessions"]
    with sessions() as s:
        officer = s.execute(select(User).where(User.username == args.user)).scalar_one()
        unit = next(iter(officer.units_for("tto")))
        ids = application_sample(s, unit, args.n)
        reps = {a.id: a.representative.username for a in s.execute(select(Application).where(Application.id.in_(ids)))
                .scalars()}
    auditor = args.user.split("-")[0] + "-auditor1"
    with freeze_time(args.at):
        clients = {}
        for who in {args.user, auditor, *reps.values()}:
            client = app.test_client()
            reply = client.post("/login", data={"username": who, "password": args.password})
            if reply.status_code == 302:
                clients[who] = client
        count = 0
        for app_id in ids:
            for who in (args.user, auditor, reps[app_id]):
                if who not in clients:
                    continue
                for suffix in ("", "?revision=1"):
                    reply = clients[who].get(f"/applications/{app_id}{suffix}")
                    name = f"{app_id}-{who}{'-r1' if suffix else ''}.html"
                    (out / name).write_bytes(f"{reply.status_code}\n".encode() + reply.data)
                    count += 1
        for path in LISTS:  # the top bar and the sign-in are on every page: the lists as the officer too
            reply = clients[args.user].get(path)
            (out / f"list-{path.strip('/').replace('/', '_').replace('?', '_') or 'home'}.html").write_bytes(
                f"{reply.status_code}\n".encode() + reply.data)
            count += 1
    print(f"{count} pages in {out}; signed in: {sorted(clients)}")


if __name__ == "__main__":
    main()
