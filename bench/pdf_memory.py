"""Memory of one process rendering the annual report PDF: `python bench/pdf_memory.py URL USER UNIT [--renders 3]`.

Prints VmRSS after each render (and after a final malloc_trim), to tell memory the layout keeps
from memory glibc keeps. Run from the root of the code.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())

from sqlalchemy import select

from webapp import create_app
from workflows import clock
from workflows.models import User
from workflows.reporting import annual_report


def rss() -> int:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database")
    parser.add_argument("user")
    parser.add_argument("unit")
    parser.add_argument("--renders", type=int, default=3)
    args = parser.parse_args()
    app = create_app({"DATABASE_URL": args.database, "SECRET_KEY": "bench"})
    sessions = app.extensions["grants_sessions"]
    print(f"start: VmRSS {rss()} MB")
    for i in range(args.renders):
        with app.app_context(), sessions() as s:
            me = s.execute(select(User).where(User.username == args.user)).scalar_one()
            built = annual_report.build(s, me, args.unit, clock.local_date(clock.now()).year)
            cpu = time.process_time()
            pdf = annual_report.to_pdf(built)
            cpu = time.process_time() - cpu
        del pdf, built
        gc.collect()
        print(f"render {i + 1}: {cpu:.1f} s CPU, VmRSS {rss()} MB")
    ctypes.CDLL(None).malloc_trim(0)
    print(f"after malloc_trim: VmRSS {rss()} MB")


if __name__ == "__main__":
    main()
