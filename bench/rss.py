"""Server memory after a run of every list page and the heaviest pages (issue 10: RSS ≤ 250 MB).

`python bench/rss.py --database sqlite:////tmp/copy.db --user u35-tto1 --password … [--rounds 30]`

Run it on a COPY of a seeded database, from the root of the code to measure. Starts the real
server (`grants run`: waitress, 8 threads, and the sweep thread) in its own instance directory
(keys from `grants keys init`, `GRANTS_BASE_URL`, mail to a closed port), signs in from this
process as the given officer and as their unit's auditor, asks each page `--rounds` times, and
prints the server's VmRSS / VmHWM (/proc/PID/status) after each page and at the end.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

# `grants` as the venv installs it, but importing the code of the current directory
GRANTS = [sys.executable, "-c", f"import sys; sys.path.insert(0, {os.getcwd()!r}); from webapp.cli import main; "
          "sys.argv[0] = 'grants'; sys.exit(main())"]


def memory(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(base: str, username: str, password: str) -> requests.Session:
    client = requests.Session()
    page = client.get(f"{base}/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    reply = client.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": token},
                        timeout=60, allow_redirects=False)
    assert reply.status_code in (302, 303), (username, reply.status_code)
    return client


def pages(database: str, user: str) -> tuple[list[tuple[str, str]], str]:
    """(who, path) for every list page, deep pages, and the heavy ones; and the unit's auditor."""
    engine = create_engine(database)
    with engine.connect() as c:
        unit_id, code = c.execute(text("SELECT u.id, u.code FROM users s JOIN role_grants g ON g.user_id = s.id "
                                       "JOIN units u ON u.id = g.unit_id WHERE s.username = :n"), {"n": user}).first()
        apps = [r[0] for r in c.execute(text("SELECT id FROM applications WHERE unit_id = :u ORDER BY id "
                                             "LIMIT 400"), {"u": unit_id})][::40]
        count = c.execute(text("SELECT count(*) FROM applications WHERE unit_id = :u"), {"u": unit_id}).scalar()
    engine.dispose()
    last = max(1, count // 50)
    listed = [
        ("anonymous", "/publicity"), ("anonymous", "/publicity?page=50"), ("anonymous", "/publicity/archive"),
        ("anonymous", "/publicity/archive?page=300"), ("anonymous", "/publicity/lookup"),
        ("anonymous", "/api/v1/publicity"), ("anonymous", "/api/v1/publicity/archive"),
        ("officer", "/"), ("officer", "/tasks"), ("officer", "/tasks?page=20"), ("officer", "/tasks?sort=-created"),
        ("officer", "/notifications"), ("officer", "/applications"), ("officer", f"/applications?page={last}"),
        ("officer", "/applications?per_page=200"),
        ("officer", "/registry"), ("officer", "/registry?page=40"), ("officer", "/statistics"),
        ("officer", "/statistics/report"), ("officer", f"/statistics/report.pdf?unit={code}"),
        ("officer", f"/statistics/report.xlsx?unit={code}"),
        ("auditor", "/audit"), ("auditor", "/audit?page=500"), ("auditor", "/applications"),
    ]
    listed += [("officer", f"/applications/{app_id}") for app_id in apps]
    return listed, f"{code.lower()}-auditor1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--heavy-rounds", type=int, default=3, help="rounds of the annual report PDF / XLSX")
    parser.add_argument("--keep-instance", help="instance directory to reuse (keys are made once)")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    instance = args.keep_instance or tempfile.mkdtemp(prefix="bench-rss-")
    env = dict(os.environ, DATABASE_URL=args.database, GRANTS_INSTANCE=instance, GRANTS_BASE_URL=base,
               GRANTS_SMTP_PORT="1")
    subprocess.run([*GRANTS, "keys", "init"], env=env, check=True, capture_output=True)
    with (Path(instance) / "server.log").open("w") as log:
        server = subprocess.Popen([*GRANTS, "run", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                requests.get(f"{base}/publicity/lookup", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        rss, hwm = memory(server.pid)
        print(f"server pid {server.pid} up: VmRSS {rss:.0f} MB, VmHWM {hwm:.0f} MB; load average {os.getloadavg()}")
        listed, auditor = pages(args.database, args.user)
        clients = {"anonymous": requests.Session(), "officer": sign_in(base, args.user, args.password),
                   "auditor": sign_in(base, auditor, args.password)}
        print("| page (as) | status | bytes | wall p50 / max ms | VmRSS after | VmHWM after |\n|---|---|---|---|---|---|")
        for who, path in listed:
            walls, size, status = [], 0, None
            for _ in range(args.heavy_rounds if "/statistics/report." in path else args.rounds):
                began = time.perf_counter()
                reply = clients[who].get(base + path, timeout=600)
                walls.append((time.perf_counter() - began) * 1000)
                size, status = len(reply.content), reply.status_code
            rss, hwm = memory(server.pid)
            print(f"| `{path}` ({who}) | {status} | {size} | {statistics.median(walls):.0f} / {max(walls):.0f} | "
                  f"{rss:.0f} MB | {hwm:.0f} MB |", flush=True)
        time.sleep(2)
        rss, hwm = memory(server.pid)
        print(f"after the run: VmRSS {rss:.0f} MB, VmHWM {hwm:.0f} MB; load average {os.getloadavg()}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
