"""The rows the REST write path leaves behind, normalized, so two code roots can be diffed.

Walks 5 applications (start, submit draft, submit consent, list) with bench/profile_writes.py's
steps on a fresh demo SQLite file, then prints the REST task list's answers (two users, four
pages/sorts) and every row of the tables a write touches with
uuids, times and digests replaced by placeholders (ids of users/applications/logs are kept:
both roots seed the same demo). Run under each root and diff:
  (cd ROOT && /work/main/.venv/bin/python /path/to/compare_writes_output.py ROOT [EMPTY_DB_URL]) > ROOT.txt
"""
import json
import re
import sys

root = sys.argv[1]
sys.path.insert(0, root)
sys.path.insert(0, root + "/bench")
import profile_writes as pw  # noqa: E402
from sqlalchemy import text  # noqa: E402

pw.draft.__globals__["time"].time_ns = lambda: 0  # the same IP numbers under both roots
app = pw.make_app(sys.argv[2] if len(sys.argv) > 2 else None)  # or an empty database's URL
client = app.test_client()
token = client.post("/api/v1/tokens", json={"username": "researcher1", "password": pw.PASSWORD}).get_json()["token"]
headers = {"Authorization": f"Bearer {token}"}
for n in range(5):
    for _name, action in pw.steps(client, headers, n):
        action()
pw.steps(client, headers, 99)[0][1]()  # one more start: a draft task assigned to its representative
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
HEX = re.compile(r"\b[0-9a-f]{32,}\b")
TABLES = [
    ("human_tasks", "application_id, unit_id, bpmn_id, name, lane, role, form, assignee_id, state, completed_by_id, context"),
    ("notifications", "user_id, application_id, message, template, params, read_at IS NULL"),
    ("outbox", '"to", subject, body, attempts, sent_at'),
    ("applications", "id, number, kind, status, title, ip_numbers, representative_id, summary"),
    ("application_members", "application_id, user_id"),
    ("form_submissions", "application_id, step, form, revision, user_id, actor, payload"),
    ("audit_events", "log_id, seq, app_seq, unit_id, application_id, actor, action, step, detail"),
    ("audit_logs", "log_id, size"),
    ("workflow_states", "application_id, process_version_id, version, timer_due_at IS NULL"),
    ("application_counts", "scope_id, basis, period, status, kind, n"),  # the statistics summaries
    ("duration_bins", "scope_id, step, year, centidays, n"),
]
out = []
for username in ("researcher1", "tto1"):  # the REST task list (own tasks; a role's queue) as JSON
    tok = client.post("/api/v1/tokens", json={"username": username, "password": pw.PASSWORD}).get_json()["token"]
    for query in ("", "?per_page=2&page=2", "?sort=-created", "?q=SZDU"):
        answer = client.get(f"/api/v1/tasks{query}", headers={"Authorization": f"Bearer {tok}"})
        body = json.dumps([answer.status_code, answer.get_json(), answer.headers.get("X-Total-Count"),
                           answer.headers.get("Link")], ensure_ascii=False)
        out.append(f"GET /api/v1/tasks{query} as {username}: {body}")
with app.extensions["grants_engine"].connect() as conn:
    for table, columns in TABLES:
        for row in conn.execute(text(f"SELECT {columns} FROM {table}")):
            line = json.dumps([str(x) for x in row], ensure_ascii=False)
            out.append(f"{table}: {line}")
print("\n".join(sorted(HEX.sub("<hex>", TIME.sub("<time>", UUID.sub("<uuid>", line))) for line in out)))
