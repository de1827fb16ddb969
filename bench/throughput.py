"""Task completions per second on PostgreSQL: gunicorn (gunicorn.conf.py, 2 workers) + `grants
worker`, under a bounded load from this (second) process over loopback; then the database is
checked for lost or duplicated completions and the audit chain is verified.

Each client is a researcher walking applications through REST: start, submit the draft (one
member), submit that member's consent — two task completions per walk — and then submits the
same consent again, as a client retrying after a lost answer would: that must be refused (409),
never counted twice. Afterwards every completion a client was told about (200) must be in the
database exactly once (one completed task row, one form submission), and nothing may be completed
that no client was told about.

Run: PYTHONPATH=$PWD python bench/throughput.py --clients 16 --seconds 30
     [--admin-url postgresql+psycopg://postgres@127.0.0.1:55432] [--workers 2] [--threads 4]
"""
from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "demo-pass-2026"
RESEARCHERS = ("researcher1", "researcher2", "researcher3")
MAX_WALKS_PER_CLIENT = 5000  # a bound on top of the time limit


def grants(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from webapp.cli import main; main()", *args], env=env,
                          check=True, **kwargs)


def wait_for(port: int, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/api/v1/openapi.json")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"port {port} did not come up")


class Client(threading.Thread):
    def __init__(self, port: int, user: str, draft: dict, deadline: float, n: int):
        super().__init__(daemon=True)
        self.port, self.user, self.draft, self.deadline, self.n = port, user, draft, deadline, n
        self.completed: list[str] = []        # task ids a 200 was received for
        self.latencies: list[float] = []      # ms per completion request
        self.errors: list[str] = []           # unexpected answers
        self.refused_duplicates = 0           # the deliberate re-submits answered 409
        self.requests = 0

    def call(self, method: str, path: str, body=None, token=None):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body)
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # gunicorn closed an idle keep-alive connection (keepalive = 5 s) before reading this
            self.conn.close()
            t0 = time.perf_counter()
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
        raw = r.read()
        self.requests += 1
        return r.status, (json.loads(raw) if raw else None), (time.perf_counter() - t0) * 1000

    def sign_in(self) -> None:
        """Before the measured window: a password check is slow on purpose."""
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        _s, body, _ms = self.call("POST", "/api/v1/tokens", {"username": self.user, "password": PASSWORD})
        self.token, self.requests = body["token"], 0

    def run(self) -> None:
        try:
            token = self.token
            for walk in range(MAX_WALKS_PER_CLIENT):
                if time.time() >= self.deadline:
                    break
                self.walk(token, walk)
        except Exception as exc:  # a broken connection is an error of the run, reported
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def complete(self, token: str, task_id: str, data: dict):
        status, body, ms = self.call("POST", f"/api/v1/tasks/{task_id}/complete", data, token)
        if status == 200:
            self.completed.append(task_id)
            self.latencies.append(ms)
            return body
        self.errors.append(f"complete {status}: {str(body)[:120]}")
        return None

    def walk(self, token: str, walk: int) -> None:
        status, body, _ms = self.call("POST", "/api/v1/applications", {"kind": "ownership"}, token)
        if status != 201:
            self.errors.append(f"start {status}: {str(body)[:120]}")
            return
        draft = copy.deepcopy(self.draft)
        me = next(m for m in draft["members"] if m["username"] == self.user)
        draft["members"] = [dict(me, share=100, is_leader=False, reward_mode="none")]
        draft["achievement"]["ip_numbers"] = [f"TP-{os.getpid()}-{self.n}-{walk}"]
        app = self.complete(token, body["task"]["id"], draft)
        if app is None:
            return
        consent = app["current_steps"][0]["task_id"]
        if self.complete(token, consent, {"agree": True, "comment": ""}) is None:
            return
        status, body, _ms = self.call("POST", f"/api/v1/tasks/{consent}/complete", {"agree": True, "comment": ""},
                                      token)
        if status == 409:
            self.refused_duplicates += 1
        else:
            self.errors.append(f"duplicate consent answered {status}: {str(body)[:120]}")


def check_database(url: str, told: list[str]) -> dict[str, int]:
    """Completions as the database has them, against what the clients were told."""
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.connect() as c:
        done = {r[0] for r in c.execute(text("SELECT id FROM human_tasks WHERE state = 'completed'"))}
        per_task = dict(c.execute(text("SELECT task_id, count(*) FROM form_submissions GROUP BY task_id")).all())
        audit = c.execute(text("SELECT count(*) FROM audit_events WHERE action = 'complete_task'")).scalar_one()
    engine.dispose()
    told_set = set(told)
    return {"told": len(told), "told twice": len(told) - len(told_set),
            "lost (told, not in the database)": len(told_set - done),
            "duplicated (more than one submission per task)": sum(1 for n in per_task.values() if n > 1),
            "completed but never told": len(done - told_set), "complete_task audit events": audit}


def cpu_of(pids) -> dict[int, float]:
    """CPU seconds (user + system) each process has used so far."""
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def postgres_backends(admin: str, name: str) -> list[int]:
    import psycopg
    with psycopg.connect(admin + "/postgres", autocommit=True) as c:
        return [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]


def used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:55432")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="serve this checkout (e.g. /work/main, for a before/after pair)")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 60.0)

    import psycopg
    name = f"grants_throughput_{os.getpid()}"
    admin = args.admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.admin_url}/{name}"
    instance = tempfile.mkdtemp(prefix="grants-throughput-")
    env = {**os.environ, "PYTHONPATH": str(args.root), "DATABASE_URL": url, "GRANTS_INSTANCE": instance,
           "GRANTS_BASE_URL": f"http://127.0.0.1:{args.port}", "GRANTS_WORKERS": str(args.workers),
           "GRANTS_THREADS": str(args.threads), "GRANTS_BIND": f"127.0.0.1:{args.port}",
           "GRANTS_LOG_LEVEL": "warning", "GRANTS_SMTP_HOST": "127.0.0.1", "GRANTS_SMTP_PORT": "9"}
    procs = []
    try:
        grants(env, "init-db", stdout=subprocess.DEVNULL)
        grants(env, "demo", stdout=subprocess.DEVNULL)
        log = open(Path(instance) / "servers.log", "w")  # noqa: SIM115 (the servers write it until stopped)
        procs.append(subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(args.root / "gunicorn.conf.py"),
                                       "--access-logfile", "/dev/null"], cwd=args.root, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        procs.append(subprocess.Popen([sys.executable, "-c", "from webapp.cli import main; main()", "worker"],
                                      env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_for(args.port)
        from workflows.process import forms
        draft = forms.load_schema("ownership_draft.schema.json")["examples"][0]
        warm = Client(args.port, "researcher1", draft, time.time() + 3, -1)  # first requests of each worker
        warm.sign_in()
        warm.run()
        clients = [Client(args.port, RESEARCHERS[i % 3], draft, 0, i) for i in range(args.clients)]
        for c in clients:
            c.sign_in()
        load_before = load_average()
        app_pids = [*children(procs[0].pid), procs[1].pid]
        app_cpu0, pg_cpu0 = cpu_of(app_pids), cpu_of(postgres_backends(admin, name))
        sweeper_cpu0 = cpu_of([procs[1].pid])
        t0 = time.time()
        for c in clients:
            c.deadline = t0 + args.seconds
            c.start()
        for c in clients:
            c.join(args.seconds + 120)
        elapsed = time.time() - t0
        load_after = load_average()
        app_cpu = used(app_cpu0, cpu_of(app_pids))
        sweeper_cpu = used(sweeper_cpu0, cpu_of([procs[1].pid]))
        pg_cpu = used(pg_cpu0, cpu_of(postgres_backends(admin, name)))
        told = [t for c in [*clients, warm] for t in c.completed]
        latencies = sorted(ms for c in clients for ms in c.latencies)
        completions = sum(len(c.completed) for c in clients)
        requests = sum(c.requests for c in clients)
        errors = [e for c in clients for e in c.errors]
        refused = sum(c.refused_duplicates for c in clients)
        facts = check_database(url, told)
        verify = subprocess.run([sys.executable, "-c", "from webapp.cli import main; main()", "verify-audit"],
                                env=env, capture_output=True, text=True, check=False)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        if not args.keep:
            with psycopg.connect(admin + "/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"serving {args.root}; PostgreSQL, gunicorn {args.workers} workers × {args.threads} threads + grants worker; "
          f"{args.clients} clients for {elapsed:.1f} s (bound {args.seconds:g} s)")
    print(f"load average before: {load_before}; after: {load_after}")
    print("| measure | value |")
    print("|---|---|")
    print(f"| task completions/s | {completions / elapsed:.1f} ({completions} in {elapsed:.1f} s) |")
    print(f"| requests/s (start + 2 completions + refused re-submit) | {requests / elapsed:.1f} |")
    if latencies:
        print(f"| completion latency median / p95 | {statistics.median(latencies):.1f} / "
              f"{latencies[round(0.95 * (len(latencies) - 1))]:.1f} ms |")
    if completions:
        per = (app_cpu + pg_cpu) / completions
        print(f"| CPU per completion: app (gunicorn workers + grants worker) / PostgreSQL backends | "
              f"{app_cpu / completions * 1000:.1f} / {pg_cpu / completions * 1000:.1f} ms "
              f"(a walk's start and refused re-submit included) |")
        print(f"| of the app's: the grants worker (mail, checkpoints) | {sweeper_cpu / completions * 1000:.1f} ms |")
        print(f"| CPU-bound ceiling on 2 idle cores (2 s ÷ CPU per completion; the load generator excluded) | "
              f"{2 / per:.0f} completions/s |")
    print(f"| unexpected answers (error rate) | {len(errors)} ({len(errors) / max(requests, 1):.2%}) |")
    print(f"| re-submitted consents refused with 409 | {refused} |")
    for key, value in facts.items():
        print(f"| {key} | {value} |")
    print(f"| grants verify-audit | exit {verify.returncode}: {verify.stdout.strip()[-80:]} |")
    for e in errors[:10]:
        print("error:", e)


if __name__ == "__main__":
    main()
