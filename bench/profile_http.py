"""Our REST write path over HTTP alone (no spiff-arena): the server as bench/peer/run.py starts it
(webapp.wsgi on waitress, 8 threads, fresh SQLite demo database), one keep-alive client, and per
step the wall time and the server process's CPU (all threads, /proc/PID/task/*/schedstat).
`GET /api/v1/me` is the request's fixed cost (waitress, Flask, token auth, one user read, JSON).

Run: PYTHONPATH=$PWD python bench/profile_http.py --rounds 30 [--before-root DIR] [--py-spy OUT.svg]
With --before-root the other checkout's server runs too, interleaved round by round.
With --py-spy the (first) server is sampled by py-spy during the measured rounds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peer"))
sys.path.insert(0, str(HERE.parent))

import run as peer  # noqa: E402  (bench/peer/run.py)

STEPS = ("GET /me", "start", "submit draft", "submit consent", "list tasks")


def one_round(side: peer.Ours, wall: dict, cpu: dict) -> None:
    def step(name, action, *args):
        c0 = side.http.cpu
        result, ms = action(*args)
        wall.setdefault(name, []).append(ms)
        cpu.setdefault(name, []).append(side.http.cpu - c0)
        return result
    step("GET /me", lambda: (None, side.http.call("GET", "/api/v1/me")[2]))
    task = step("start", side.start)
    task2 = step("submit draft", side.submit, task, True)
    step("submit consent", side.submit, task2, False)
    step("list tasks", lambda: (None, side.list()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--port", type=int, default=5491)
    parser.add_argument("--before-root", type=Path)
    parser.add_argument("--py-spy", help="record the server with py-spy into this file (svg, or .txt: raw)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="http-bench-"))
    procs = [peer.start_ours(work, args.port)]
    names = ["after"]
    if args.before_root:
        procs.append(peer.start_ours(work, args.port + 1, args.before_root, "before"))
        names.append("before")
    spy = None
    try:
        sides = [peer.Ours(f"http://127.0.0.1:{args.port + i}", name, pid=p.pid)
                 for i, (name, p) in enumerate(zip(names, procs, strict=True))]
        for _ in range(3):
            for side in sides:
                one_round(side, {}, {})
        if args.py_spy:
            fmt = ["--format", "raw"] if args.py_spy.endswith(".txt") else []
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(procs[0].pid),
                                    "--rate", "400", "--nonblocking", "-o", args.py_spy, *fmt],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load0 = peer.load_average()
        wall: dict = {s.name: {} for s in sides}
        cpu: dict = {s.name: {} for s in sides}
        for _ in range(args.rounds):
            for side in sides:
                one_round(side, wall[side.name], cpu[side.name])
        print(f"rounds: {args.rounds} (after 3 warm-up rounds); load average before: {load0}; after: "
              f"{peer.load_average()}")
        print("| step | " + " | ".join(f"{n} wall median / p95 ms | {n} server CPU median ms" for n in names) + " |")
        print("|---|" + "---|---|" * len(names))
        for step in STEPS:
            cells = []
            for n in names:
                cells += [f"{statistics.median(wall[n][step]):.1f} / {peer.p95(wall[n][step]):.1f}",
                          f"{statistics.median(cpu[n][step]):.1f}"]
            print(f"| {step} | " + " | ".join(cells) + " |")
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
