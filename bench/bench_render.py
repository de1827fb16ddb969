"""Median render time of the 3-page ownership agreement (target ≤ 0.3 s on these machines;
it needs libharfbuzz-subset0, without which font subsetting alone takes seconds).

Run: python bench/bench_render.py [--runs 15]
"""
from __future__ import annotations

import argparse
import copy
import io
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pypdf import PdfReader

from workflows import documents
from workflows.process import forms


def context(final: bool) -> dict:
    example = lambda name: copy.deepcopy(forms.load_schema(f"{name}.schema.json")["examples"][0])  # noqa: E731
    terms = example("ownership_terms")
    terms["rights_and_duties"] = "；".join([terms["rights_and_duties"]] * 6)
    ctx = {"number": "SZDU-2026-0001", "kind": "ownership", "unit": {"name": "深圳示范大学", "code": "SZDU"},
           "representative": {"username": "researcher1", "name": "李明"}, "generated_at": datetime.now(UTC),
           "draft": example("ownership_draft"), "terms": terms, "final": final, "signatures": []}
    if final:
        sha = "a" * 64
        now = datetime.now(UTC)
        ctx.update(draft_sha256=sha, signatures=[
            {"role": "representative", "name": "李明", "username": "researcher1", "signed_at": now, "sha256": sha},
            {"role": "unit", "name": "周红", "username": "signer1", "signed_at": now, "sha256": sha}])
    return ctx


def measure(final: bool, runs: int) -> tuple[float, int]:
    ctx = context(final)
    pdf = documents.render_agreement(ctx)  # warm-up: fonts, stylesheet, templates
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        documents.render_agreement(ctx)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(PdfReader(io.BytesIO(pdf)).pages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for final in (False, True):
        median, pages = measure(final, args.runs)
        label = "final PDF/A with signature page" if final else "draft agreement"
        print(f"{label}: {pages} pages, median {median * 1000:.0f} ms over {args.runs} runs (target ≤ 300 ms)")


if __name__ == "__main__":
    main()
