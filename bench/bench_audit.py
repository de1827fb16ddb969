"""How much memory and time `grants verify-audit` needs for a large log (issue 8 item 14).

Run: python bench/bench_audit.py [--events 1000000] [--url sqlite:///...]
Fills one unit's log directly (the leaf rules of workflows/evidence/pack_verify.py), signs a checkpoint,
then verifies it, printing the wall time and the peak of Python allocations (tracemalloc) and RSS.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from workflows import db, settings
from workflows.evidence import audit, keys
from workflows.evidence.pack_verify import frontier_append, frontier_root, leaf_hash
from workflows.models import AuditEvent, AuditLog


def fill(factory, events: int, log_id: int = 1) -> None:
    start, frontier, batch = datetime(2026, 1, 1, tzinfo=UTC), [], []
    digest = audit.digest({})
    with factory() as s:
        for seq in range(events):
            row = {"v": 2, "log_id": log_id, "seq": seq, "app_seq": None,
                   "at": (start + timedelta(seconds=seq)).isoformat(), "unit_id": log_id, "application_id": None,
                   "actor": "system", "action": "reminder", "step": "", "detail": {"n": seq}, "data_digest": digest}
            leaf = leaf_hash(row)
            frontier_append(frontier, leaf)
            batch.append(dict(row, leaf_version=2, at=start + timedelta(seconds=seq), leaf_hash=leaf))
            del batch[-1]["v"]
            if len(batch) == 20000:
                s.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            s.execute(insert(AuditEvent), batch)
        s.add(AuditLog(log_id=log_id, size=events, root=frontier_root(frontier), frontier=frontier))
        s.flush()
        audit.checkpoint(s, log_id)
        s.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--url")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    settings.configure(instance_dir=str(work))
    keys.init(work)
    engine = db.make_engine(args.url or f"sqlite:///{work}/bench.db")
    db.create_schema(engine)
    factory = db.session_factory(engine)
    began = time.perf_counter()
    fill(factory, args.events)
    print(f"filled {args.events} events in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    with factory() as s:
        problems = audit.verify(s)
    seconds = time.perf_counter() - began
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"verify-audit: {len(problems)} problems, {seconds:.1f} s, max RSS of the process {rss:.0f} MiB")
    tracemalloc.start()  # a second run, slower under tracing, for the peak of Python allocations
    with factory() as s:
        audit.verify(s)
    print(f"peak Python allocations during verify-audit: {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB")
    tracemalloc.stop()


if __name__ == "__main__":
    main()
