"""Side by side with spiff-arena in ONE run, interleaved (A, B, A, B …) so the machine's noise hits
both alike, plus the raw SpiffWorkflow floor of the same steps in this process.

  A  this project, webapp.wsgi under waitress (8 threads, as `grants run` serves it, without
     its sweep thread), SQLite, REST with a bearer token
  B  spiff-arena's backend (bench/peer/setup.sh), uvicorn, SQLite, token from its local OpenID
  C  raw SpiffWorkflow 3.2 in-process: the same steps without HTTP, database or checks
     - "raw two_tasks": bench/peer/two_tasks.bpmn, serialized as SpiffWorkflow does by default
     - "raw ours": our ownership_grant process through workflows/runtime (our state format)

Per round, for each side: start to first task, list my tasks, submit the first form, submit the
second form; "two-task instance end to end" is start + both submits of that instance.
Our process is the ownership grant: its first two user tasks are the draft (团队代表起草) and the
one member's consent; spiff-arena's is two_tasks.bpmn (two user tasks, a small JSON-Schema form).

Run (both servers are started here on fresh SQLite files and stopped at the end):
  bash bench/peer/setup.sh
  PYTHONPATH=$PWD /work/main/.venv/bin/python bench/peer/run.py --rounds 40
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

HERE = Path(__file__).resolve().parent
PEER_DIR = Path(os.environ.get("PEER_DIR", "/work/peer"))
PEER_VENV = Path(os.environ.get("PEER_VENV", "/work/peer-venv"))
OUR_PASSWORD = "demo-pass-2026"
SPIFF_CLIENT = ("spiffworkflow-backend", "JXeQExm0JhQPLumgHtIIqf52bDalHz0q")  # its local OpenID's dev client
STEPS = ("start to first task", "list my tasks", "submit form 1", "submit form 2", "two-task instance end to end")


class Http:
    """One keep-alive connection; returns (status, parsed JSON, ms)."""

    def __init__(self, base: str, token: str | None = None, pid: int | None = None):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.token, self.pid, self.cpu = token, pid, 0.0  # server CPU ms used by the calls, summed

    def call(self, method: str, path: str, body=None, headers=None):
        h = {"Accept": "application/json", **(headers or {})}
        data = None
        if isinstance(body, dict) and h.get("Content-Type") == "application/x-www-form-urlencoded":
            data = urllib.parse.urlencode(body)
        elif body is not None:
            data, h["Content-Type"] = json.dumps(body), "application/json"
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        c0 = process_cpu_ms(self.pid) if self.pid else 0.0
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # the server closed an idle keep-alive connection before reading this request: resend
            self.conn.close()
            t0 = time.perf_counter()
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
        raw = r.read()
        ms = (time.perf_counter() - t0) * 1000
        if self.pid:
            self.cpu += process_cpu_ms(self.pid) - c0
        if r.status >= 400:
            raise RuntimeError(f"{method} {path}: {r.status} {raw[:300]!r}")
        return r.status, (json.loads(raw) if raw else None), ms


def process_cpu_ms(pid: int) -> float:
    """Time on CPU of every thread of the process so far (ms, from the scheduler's own counters)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e6


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    u = urllib.parse.urlsplit(url)
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", u.path)
            if c.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not come up")


# --- A: this project ------------------------------------------------------------------------------

def start_ours(work: Path, port: int, root: Path = ROOT, name: str = "ours") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(root), "GRANTS_INSTANCE": str(work / name),
           "DATABASE_URL": f"sqlite:///{work / name / 'grants.db'}", "GRANTS_DEMO": "1",
           "GRANTS_BASE_URL": f"http://127.0.0.1:{port}"}
    grants = [sys.executable, "-c", "from webapp.cli import main; main()"]
    # cwd=root: `python -c` puts the current directory first on sys.path, ahead of PYTHONPATH, so
    # without it a --before-root server imported the checkout this script was started from.
    for cmd in (["init-db"], ["demo"]):
        subprocess.run(grants + cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=root)
    log = open(work / f"{name}.log", "w")  # noqa: SIM115 (the server writes it until it is stopped)
    # The web process alone, as `grants run` serves it (waitress, 8 threads) but without its 1 s
    # timer/mail sweep thread: spiff-arena runs here without its background scheduler too. (The
    # sweep belongs to `grants worker` in a deployment; nothing in these steps is timed.)
    serve = ("import waitress; from webapp.wsgi import app; "
             f"waitress.serve(app, host='127.0.0.1', port={port}, threads=8, ident='grants')")
    proc = subprocess.Popen([sys.executable, "-c", serve], env={**env, "GRANTS_DEMO": ""}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    wait_for(f"http://127.0.0.1:{port}/api/v1/openapi.json")
    return proc


class Ours:
    def __init__(self, base: str, name: str = "ours", pid: int | None = None):
        self.name = name
        _s, body, _ms = Http(base).call("POST", "/api/v1/tokens",
                                        {"username": "researcher1", "password": OUR_PASSWORD})
        self.http = Http(base, body["token"], pid)
        from workflows.process import forms
        self.draft = forms.load_schema("ownership_draft.schema.json")["examples"][0]
        self.draft["members"] = [dict(self.draft["members"][0], share=100)]  # one member: one consent
        self.n = 0

    def start(self):
        _s, body, ms = self.http.call("POST", "/api/v1/applications", {"kind": "ownership"})
        return body["task"]["id"], ms

    def list(self):
        return self.http.call("GET", "/api/v1/tasks")[2]

    def submit(self, task_id: str, first: bool):
        if first:
            self.n += 1
            data = copy.deepcopy(self.draft)
            data["achievement"]["ip_numbers"] = [f"PEER-{os.getpid()}-{self.n}"]  # no double reward
        else:
            data = {"agree": True, "comment": ""}
        _s, body, ms = self.http.call("POST", f"/api/v1/tasks/{task_id}/complete", data)
        steps = body["current_steps"]
        return (steps[0]["task_id"] if first else None), ms


# --- B: spiff-arena ---------------------------------------------------------------------------------

def spiff_env(work: Path, port: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    return {**os.environ, "SPIFFWORKFLOW_BACKEND_ENV": "local_development",
            "SPIFFWORKFLOW_BACKEND_DATABASE_TYPE": "sqlite",
            "SPIFFWORKFLOW_BACKEND_DATABASE_URI": f"sqlite:///{work / 'spiff.sqlite3'}",
            "SPIFFWORKFLOW_BACKEND_BPMN_SPEC_ABSOLUTE_DIR": str(work / "process_models"),
            "SPIFFWORKFLOW_BACKEND_PORT": str(port), "SPIFFWORKFLOW_BACKEND_URL": base,
            "SPIFFWORKFLOW_BACKEND_URL_FOR_FRONTEND": base,
            "SPIFFWORKFLOW_BACKEND_AUTH_CONFIGS__0__identifier": "default",
            "SPIFFWORKFLOW_BACKEND_AUTH_CONFIGS__0__label": "internal openid",
            "SPIFFWORKFLOW_BACKEND_AUTH_CONFIGS__0__uri": f"{base}/openid",
            "SPIFFWORKFLOW_BACKEND_AUTH_CONFIGS__0__client_id": SPIFF_CLIENT[0],
            "SPIFFWORKFLOW_BACKEND_AUTH_CONFIGS__0__client_secret": SPIFF_CLIENT[1],
            "FLASK_SESSION_SECRET_KEY": "peer-bench-secret", "FLASK_DEBUG": "0",
            "SPIFFWORKFLOW_BACKEND_RUN_BACKGROUND_SCHEDULER_IN_CREATE_APP": "false",
            "SPIFFWORKFLOW_BACKEND_LOG_LEVEL": "warning",
            "SPIFFWORKFLOW_BACKEND_FAIL_ON_INVALID_PROCESS_MODELS": "false",
            "PYTHONPATH": ""}


def start_spiff(work: Path, port: int) -> subprocess.Popen:
    backend = PEER_DIR / "spiffworkflow-backend"
    if not (PEER_VENV / "bin" / "uvicorn").exists():
        raise SystemExit("spiff-arena is not set up: run bash bench/peer/setup.sh first")
    shutil.copytree(PEER_DIR / "process_models", work / "process_models")
    subprocess.run(["git", "init", "-q", str(work / "process_models")], check=True)
    env = spiff_env(work, port)
    subprocess.run([str(PEER_VENV / "bin" / "flask"), "--app", "app.py", "db", "upgrade"], cwd=backend,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(work / "spiff.log", "w")  # noqa: SIM115 (the server writes it until it is stopped)
    proc = subprocess.Popen([str(PEER_VENV / "bin" / "uvicorn"), "spiff_web_server:asgi_app", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1", "--log-level", "warning",
                             "--timeout-keep-alive", "120"],
                            cwd=backend, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/v1.0/status")
    return proc


class Spiff:
    name = "spiff-arena"
    model = "bench:two-tasks"

    def __init__(self, base: str, pid: int | None = None):
        basic = base64.b64encode(":".join(SPIFF_CLIENT).encode()).decode()
        _s, tok, _ms = Http(base).call(
            "POST", "/openid/token", {"grant_type": "password", "username": "admin", "password": "admin",
                                      "code": "admin:this_is_not_secure_do_not_use_in_production",
                                      "client_id": SPIFF_CLIENT[0]},
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"})
        self.http = Http(base, tok["access_token"], pid)
        self.http.call("POST", "/v1.0/login_with_access_token?authentication_identifier=default")

    def start(self):
        """Create, run to the first user task, fetch it: what its front end does after 'start'."""
        _s, pi, ms1 = self.http.call("POST", f"/v1.0/process-instances/{self.model}")
        _s, _r, ms2 = self.http.call("POST", f"/v1.0/process-instances/{self.model}/{pi['id']}/run"
                                     "?execution_mode=synchronous")
        _s, progress, ms3 = self.http.call("GET", f"/v1.0/tasks/progress/{pi['id']}")
        self.instance = pi["id"]
        return progress["task"]["id"], ms1 + ms2 + ms3

    def list(self):
        return self.http.call("GET", "/v1.0/tasks")[2]

    def submit(self, task_id: str, first: bool):
        _s, body, ms = self.http.call("PUT", f"/v1.0/tasks/{self.instance}/{task_id}",
                                      {"title": "一种低功耗图像识别芯片架构", "note": "同意"})
        return (body["id"] if first else None), ms


# --- C: raw SpiffWorkflow ----------------------------------------------------------------------------

class RawTwoTasks:
    """bench/peer/two_tasks.bpmn in SpiffWorkflow alone; state kept as SpiffWorkflow's own JSON."""

    name = "raw two_tasks"

    def __init__(self):
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
        from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
        parser = SpiffBpmnParser()
        parser.add_bpmn_file(str(HERE / "two_tasks.bpmn"))
        self.spec = parser.get_spec("two_tasks")
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))

    def start(self):
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        t0 = time.perf_counter()
        wf = BpmnWorkflow(self.spec)
        wf.do_engine_steps()
        task = wf.get_tasks(state=_ready(), manual=True)[0]
        self.state = self.serializer.serialize_json(wf)
        return str(task.id), (time.perf_counter() - t0) * 1000

    def list(self):
        return None

    def submit(self, task_id: str, first: bool):
        from uuid import UUID
        t0 = time.perf_counter()
        wf = self.serializer.deserialize_json(self.state)
        task = wf.get_task_from_id(UUID(task_id))
        task.data.update({"title": "一种低功耗图像识别芯片架构", "note": "同意"})
        task.run()
        wf.do_engine_steps()
        nxt = wf.get_tasks(state=_ready(), manual=True)
        self.state = self.serializer.serialize_json(wf)
        return (str(nxt[0].id) if first else None), (time.perf_counter() - t0) * 1000


class RawOurs:
    """Our ownership_grant through workflows/runtime (spec once, compressed state), no database."""

    name = "raw ours"

    def __init__(self):
        from types import SimpleNamespace

        from workflows.process import forms, runtime, specs
        self.runtime, self.current = runtime, specs.current("ownership_grant")
        text, sha = runtime.dump_spec(self.current.spec, self.current.subprocess_specs)
        self.version = SimpleNamespace(spec=text, spec_sha256=sha)
        self.draft = forms.load_schema("ownership_draft.schema.json")["examples"][0]
        self.draft["members"] = [dict(self.draft["members"][0], share=100)]
        self.engine = runtime.ServiceScriptEngine({}, None)

    def start(self):
        t0 = time.perf_counter()
        wf = self.runtime.new_workflow(self.current.spec, self.current.subprocess_specs,
                                       {"kind": "ownership", "unit_code": "SZDU", "application_number": "SZDU-2026-0001",
                                        "representative": "researcher1"})
        self.runtime.advance(wf, self.engine)
        task = self.runtime.ready_human_tasks(wf)[0]
        self.state = self.runtime.dump(wf)
        return task.id, (time.perf_counter() - t0) * 1000

    def list(self):
        return None

    def submit(self, task_id: str, first: bool):
        t0 = time.perf_counter()
        wf = self.runtime.load(self.state, self.version)
        task = self.runtime.find_ready(wf, task_id)
        payload = copy.deepcopy(self.draft) if first else {"agree": True, "comment": ""}
        self.runtime.complete(wf, task, payload, self.engine)
        ready = self.runtime.ready_human_tasks(wf)
        self.state = self.runtime.dump(wf)
        return (ready[0].id if first else None), (time.perf_counter() - t0) * 1000


def _ready():
    from SpiffWorkflow.util.task import TaskState
    return TaskState.READY


# --- the run ------------------------------------------------------------------------------------------

def one_round(side, times: dict, cpu: dict) -> None:
    http = getattr(side, "http", None)
    used = []

    def step(action, *args):
        before = http.cpu if http else time.thread_time() * 1000
        result = action(*args)
        used.append((http.cpu if http else time.thread_time() * 1000) - before)
        return result
    task, ms_start = step(side.start)
    ms_list = step(side.list)
    task2, ms1 = step(side.submit, task, True)
    _none, ms2 = step(side.submit, task2, False)
    used.append(used[0] + used[2] + used[3])
    for name, ms, c in zip(STEPS, (ms_start, ms_list, ms1, ms2, ms_start + ms1 + ms2), used, strict=True):
        if ms is not None:
            times.setdefault(side.name, {}).setdefault(name, []).append(ms)
            cpu.setdefault(side.name, {}).setdefault(name, []).append(c)


def p95(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(0.95 * (len(v) - 1)))]


def report(times: dict, rounds: int, load: tuple[str, str]) -> None:
    print(f"rounds: {rounds} (after 3 warm-up rounds), interleaved: each round walks one instance on every side")
    print(f"load average before: {load[0]}; after: {load[1]}")
    print()
    if "ours before" in times:
        print("| step | ours before median / p95 ms | ours after median / p95 ms | before ÷ after |")
        print("|---|---|---|---|")
        for step in STEPS:
            b, a = times["ours before"][step], times["ours"][step]
            print(f"| {step} | {statistics.median(b):.1f} / {p95(b):.1f} | {statistics.median(a):.1f} / {p95(a):.1f} "
                  f"| {statistics.median(b) / statistics.median(a):.1f}× |")
        print()
    peer = "spiff-arena" in times
    print("| step | ours median / p95 ms | spiff-arena median / p95 ms | spiff-arena ÷ ours (median) "
          "| raw ours median ms | raw two_tasks median ms |")
    print("|---|---|---|---|---|---|")
    for step in STEPS:
        row = [step]
        for side in ("ours", "spiff-arena"):
            v = times[side][step] if side in times else None
            row.append(f"{statistics.median(v):.1f} / {p95(v):.1f}" if v else "—")
        row.append(f"{statistics.median(times['spiff-arena'][step]) / statistics.median(times['ours'][step]):.1f}×"
                   if peer else "—")
        for side in ("raw ours", "raw two_tasks"):
            v = times[side].get(step)
            row.append(f"{statistics.median(v):.2f}" if v else "—")
        print("| " + " | ".join(row) + " |")
    print()
    print("| our REST step vs the raw engine | median ms | target ≤ 2×raw+3 | p95 ms | target ≤ 3×raw+6 |")
    print("|---|---|---|---|---|")
    for step in ("start to first task", "submit form 1", "submit form 2"):
        ours, raw = times["ours"][step], statistics.median(times["raw ours"][step])
        med, top = statistics.median(ours), p95(ours)
        print(f"| {step} (raw {raw:.2f} ms) | {med:.1f} | {2 * raw + 3:.1f} {'✔' if med <= 2 * raw + 3 else '✘'} "
              f"| {top:.1f} | {3 * raw + 6:.1f} {'✔' if top <= 3 * raw + 6 else '✘'} |")


def report_cpu(cpu: dict) -> None:
    """Server CPU per step: what the machine's load does not inflate much (no waiting counted)."""
    print()
    print("Server CPU per step (all threads of the server process, from /proc/PID/task/*/schedstat; "
          "raw: this thread's CPU), mean ms:")
    sides = [s for s in ("ours before", "ours", "spiff-arena", "raw ours", "raw two_tasks") if s in cpu]
    print("| step | " + " | ".join(sides) + " | spiff-arena ÷ ours |")
    print("|---|" + "---|" * (len(sides) + 1))
    for step in STEPS:
        means = {s: statistics.mean(cpu[s][step]) for s in sides if step in cpu[s]}
        cells = [f"{means[s]:.1f}" if s in means else "—" for s in sides]
        ratio = means["spiff-arena"] / means["ours"] if means.get("ours") and "spiff-arena" in means else float("nan")
        print(f"| {step} | " + " | ".join(cells) + f" | {ratio:.1f}× |")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--our-port", type=int, default=5391)
    parser.add_argument("--spiff-port", type=int, default=7391)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-spiff", action="store_true",
                        help="our server(s) and the raw engine only (no spiff-arena needed)")
    parser.add_argument("--before-root", type=Path,
                        help="also run this checkout's server (e.g. /work/main) as 'ours before', interleaved")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    procs = []
    try:
        procs.append(start_ours(work, args.our_port))
        if not args.no_spiff:
            procs.append(start_spiff(work, args.spiff_port))
        if args.before_root:
            procs.append(start_ours(work, args.our_port + 1, args.before_root, "before"))
        sides = [Ours(f"http://127.0.0.1:{args.our_port}", pid=procs[0].pid), RawOurs(), RawTwoTasks()]
        if not args.no_spiff:
            sides.insert(1, Spiff(f"http://127.0.0.1:{args.spiff_port}", pid=procs[1].pid))
        if args.before_root:
            sides.insert(1, Ours(f"http://127.0.0.1:{args.our_port + 1}", "ours before", pid=procs[-1].pid))
        commit = "(not run)" if args.no_spiff else (PEER_DIR / "COMMIT").read_text().strip()[:9]
        print(f"spiff-arena {commit} (backend, uvicorn 1 worker, SQLite, no background scheduler); "
              "ours: webapp.wsgi on waitress 8 threads, SQLite, no sweep thread")
        for _ in range(3):
            for side in sides:
                one_round(side, {}, {})
        load_before = load_average()
        times: dict = {}
        cpu: dict = {}
        for _ in range(args.rounds):
            for side in sides:
                one_round(side, times, cpu)
        report(times, args.rounds, (load_before, load_average()))
        report_cpu(cpu)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
