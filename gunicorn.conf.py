"""gunicorn settings for production on PostgreSQL: `gunicorn -c gunicorn.conf.py`.

Several worker processes serve requests; each builds its own app and connection pool after the
fork (no preload, so no connection is shared between processes). Timers and mail are not run
here but by one `grants worker` process. Behind a reverse proxy set GRANTS_PROXY_COUNT to the
number of proxies in front of gunicorn and GRANTS_BASE_URL to the public https:// address.
Every setting can be overridden on the command line or by GUNICORN_CMD_ARGS.
"""
import multiprocessing
import os

wsgi_app = "webapp.wsgi:app"
bind = os.environ.get("GRANTS_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GRANTS_WORKERS", str(min(2 * multiprocessing.cpu_count() + 1, 9))))
threads = int(os.environ.get("GRANTS_THREADS", "4"))
worker_class = "gthread"
preload_app = False
timeout = int(os.environ.get("GRANTS_REQUEST_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers now and then; jitter keeps them from restarting together
max_requests_jitter = 200
# Werkzeug's ProxyFix (GRANTS_PROXY_COUNT) reads the forwarded headers; gunicorn itself only
# trusts them from loopback, where the proxy runs.
forwarded_allow_ips = os.environ.get("GRANTS_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GRANTS_LOG_LEVEL", "info")
proc_name = "grants"
