"""The WSGI entry point for gunicorn (see gunicorn.conf.py): one app per worker process, which
refuses to start without GRANTS_BASE_URL outside the demo. Timers and mail run in `grants worker`."""
from __future__ import annotations

from . import create_app, deploy

app = create_app()
deploy.require_base_url(app)
