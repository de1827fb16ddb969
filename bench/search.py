"""Substring search at scale through the Flask test client (the whole request path):
`python bench/search.py --database URL [--root CODE] [--tto u35-tto1] [--auditor u35-auditor1] [--n 5]`.

For the busiest officer's task list, the auditor's application list and the anonymous board it
asks each search `--n` times and prints wall and CPU p50 per URL, and for the API lists a digest
of the answer (total and page) so that two runs (the base code and this branch, `--root` naming
the code to import) can be compared row for row. The search terms are read from the database
the same way each time: a 3-character and a 2-character fragment (CJK) of a title of the
officer's unit, the representative's name and a fragment of the number (`2026-0001`-like)."""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = next((sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--root"), None)
sys.path.insert(0, ROOT or str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from webapp import create_app  # noqa: E402


def terms(app, tto: str) -> dict[str, str]:
    engine = app.extensions["grants_engine"]
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT a.title, a.number, u.name FROM applications a JOIN users u ON u.id = a.representative_id "
            "WHERE a.unit_id = (SELECT unit_id FROM role_grants g JOIN users x ON x.id = g.user_id "
            "WHERE x.username = :tto AND g.role = 'tto' ORDER BY unit_id LIMIT 1) AND a.title <> '' "
            "ORDER BY a.id LIMIT 1"), {"tto": tto}).one()
    title, number, name = row
    year = number.split("-")[1]
    return {"title3": title[2:5], "cjk2": title[2:4], "name": name, "number": f"{year}-0001"}


def timed(client, url: str, n: int, headers=None) -> tuple[float, float, str]:
    walls, cpus, digest = [], [], ""
    for _ in range(n):
        started, began = time.perf_counter(), time.process_time()
        response = client.get(url, headers=headers or {})
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        if url.startswith("/api/"):
            digest = hashlib.sha256(response.headers.get("X-Total-Count", "").encode() + response.data).hexdigest()[:12]
            total = response.headers.get("X-Total-Count", "?")
            digest = f"{total} rows {digest}"
    return statistics.median(walls), statistics.median(cpus), digest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--root")
    parser.add_argument("--tto", default="u35-tto1")
    parser.add_argument("--auditor", default="u35-auditor1")
    parser.add_argument("--password", default="bench-pass-2026")
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--label", default="")
    parser.add_argument("--who", choices=("tto", "auditor", "anyone"), help="only this person's lists")
    args = parser.parse_args()
    app = create_app({"DATABASE_URL": args.database, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "bench"})
    found = terms(app, args.tto)
    print(f"# {args.label} terms: {found}", flush=True)
    for who, pages in (("tto", ("/api/v1/tasks?q={}", "/tasks?q={}")),
                       ("auditor", ("/api/v1/applications?q={}", "/audit?q={}")),
                       (None, ("/api/v1/publicity?q={}", "/publicity?q={}"))):
        if args.who and args.who != (who or "anyone"):
            continue
        username = {"tto": args.tto, "auditor": args.auditor, None: None}[who]
        client = app.test_client()
        bearer = {}
        if username:
            assert client.post("/login", data={"username": username, "password": args.password}).status_code == 302
            token = client.post("/api/v1/tokens", json={"username": username, "password": args.password}).get_json()
            bearer = {"Authorization": f"Bearer {token['token']}"}
        for page in pages:
            for term, value in found.items():
                url = page.format(quote(value))
                wall, cpu, digest = timed(client, url, args.n, bearer if url.startswith("/api/") else None)
                print(f"{args.label}\t{who or 'anyone'}\t{page.split('?')[0]}\t{term}\t{wall:.1f}\t{cpu:.1f}\t{digest}",
                      flush=True)


if __name__ == "__main__":
    main()
