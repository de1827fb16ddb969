"""What one fired timer costs: `python bench/sweep_profile.py URL [--due 100] [--profile]`.

On a COPY of a seed, from the root of the code: makes `--due` waiting instances due (the others a
year later), fires them all with `engine.sweep_timers` under a clock past their term and prints CPU
and wall per instance and statements per instance; `--profile` adds cProfile (process time) of
the workflows/ and serializer functions.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.getcwd())

from freezegun import freeze_time
from sqlalchemy import event
from sweep_setup import choose_due, sweep_app  # this folder's (the script's own directory)

from workflows.process import engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    app, sessions = sweep_app(args.database, "bench-fire-")
    _chosen, later = choose_due(sessions, args.due)
    statements = [0]
    event.listen(app.extensions["grants_engine"], "before_cursor_execute",
                 lambda *_: statements.__setitem__(0, statements[0] + 1))
    profile = cProfile.Profile(timer=time.process_time) if args.profile else None
    with freeze_time(later, tick=True):
        if profile:
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        fired = engine.sweep_timers(sessions, budget_seconds=3600)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile:
            profile.disable()
    print(f"fired {fired}: {cpu * 1000 / fired:.1f} ms CPU, {wall * 1000 / fired:.1f} ms wall, "
          f"{statements[0] / fired:.1f} statements per instance; load average {os.getloadavg()}")
    if profile:
        profile.dump_stats("/tmp/sweep-profile.pstats")
        pstats.Stats(profile).sort_stats("cumulative").print_stats("workflows/|serializ|SpiffWorkflow/bpmn/workflow", 40)


if __name__ == "__main__":
    main()
