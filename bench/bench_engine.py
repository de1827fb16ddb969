"""Engine speed against spiff-arena's numbers on these machines (start ~70 ms, submit ~65–80 ms,
timers minutes late). Measures, on a fresh SQLite file (or DATABASE_URL), each including its
commit: starting an instance, submitting a task, and how late the ticker fires a due timer.

Run: python bench/bench_engine.py [--runs 30]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from freezegun import freeze_time

from tests.driver import Driver, example
from workflows import clock, db, demo
from workflows.models import PublicityNotice
from workflows.process import engine

SPIFF_ARENA_START_MS, SPIFF_ARENA_SUBMIT_MS = 70.0, 65.0


def fresh_driver(url: str | None) -> Driver:
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    e = db.make_engine(url)
    db.create_schema(e)
    factory = db.session_factory(e)
    with factory() as s:
        demo.seed(s)
        s.commit()
    return Driver(factory)


def timed(action) -> float:
    t0 = time.perf_counter()
    action()
    return (time.perf_counter() - t0) * 1000


def submit(drive: Driver, who: str, task_id: str, data: dict) -> None:
    drive.run(lambda s: engine.complete_task(s, drive.user(s, who), task_id, data))


def bench_start_and_submit(drive: Driver, runs: int) -> tuple[list[float], list[float]]:
    starts, submits = [], []
    for i in range(runs):
        app_id = None

        def start():
            nonlocal app_id
            app_id = drive.start()
        starts.append(timed(start))
        data = example("ownership_draft")
        data["achievement"]["ip_numbers"] = [f"BENCH-{i}"]
        task_id = drive.task_id(app_id, "draft")
        submits.append(timed(partial(submit, drive, "researcher1", task_id, data)))
        for who in ("researcher1", "researcher2"):
            consent_id = drive.task_id(app_id, "consent", who)
            submits.append(timed(partial(submit, drive, who, consent_id, {"agree": True})))
    return starts, submits


def ticker(app, stop: threading.Event, tick_once) -> None:
    """The loop `grants run` runs in the background."""
    while not stop.is_set():
        tick_once(app)
        time.sleep(app.config["TICK_INTERVAL_SECONDS"])


def bench_timer_lateness(drive: Driver, samples: int) -> list[float]:
    """Runs the server's ticker under a clock shifted to 2 s before the term ends (the clock
    ticks in real time from there) and measures how late the publicity closes."""
    from webapp import create_app
    from webapp.cli import tick_once
    url = drive.sessions.kw["bind"].url.render_as_string(hide_password=False)
    app = create_app({"DATABASE_URL": url})
    late = []
    for i in range(samples):
        app_id = drive.start()
        drive.draft_for_ip(app_id, f"T-{i}")
        drive.consent_all(app_id)
        drive.review(app_id)
        drive.decide(app_id)
        with drive.sessions() as s:
            ends_at = s.query(PublicityNotice).filter_by(application_id=app_id).one().ends_at
        stop = threading.Event()
        with freeze_time(ends_at - timedelta(seconds=2), tick=True):
            thread = threading.Thread(target=ticker, args=(app, stop, tick_once), daemon=True)
            thread.start()
            while drive.status(app_id) == "publicity":
                time.sleep(0.01)
            fired_at = clock.now()
            stop.set()
            thread.join()
        late.append((fired_at - ends_at).total_seconds())
    return late


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--timer-samples", type=int, default=3)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    drive = fresh_driver(args.database_url)
    drive.start()  # warm-up: parse diagrams, import WeasyPrint-free paths
    starts, submits = bench_start_and_submit(drive, args.runs)
    start_ms, submit_ms = statistics.median(starts), statistics.median(submits)
    print(f"start instance: median {start_ms:.1f} ms over {len(starts)}  "
          f"(spiff-arena ~{SPIFF_ARENA_START_MS:.0f} ms: {SPIFF_ARENA_START_MS / start_ms:.1f}x faster)")
    print(f"submit task:    median {submit_ms:.1f} ms over {len(submits)}  "
          f"(spiff-arena ~{SPIFF_ARENA_SUBMIT_MS:.0f} ms: {SPIFF_ARENA_SUBMIT_MS / submit_ms:.1f}x faster)")
    if args.timer_samples:
        late = bench_timer_lateness(drive, args.timer_samples)
        print(f"timer fired after its due time: median {statistics.median(late):.2f} s, "
              f"max {max(late):.2f} s over {len(late)}")


if __name__ == "__main__":
    main()
