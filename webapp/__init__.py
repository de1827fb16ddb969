"""Flask front end: thin views over `workflows/`. `create_app` is the only entry point."""
from __future__ import annotations

import faulthandler
import os
from pathlib import Path
from typing import Any

from flask import Flask

from workflows import settings as engine_settings
from workflows.evidence import keys

from . import cookies, database, deploy, extensions, heap, security


def create_app(config: dict[str, Any] | None = None) -> Flask:
    if not faulthandler.is_enabled():  # a crash in native code leaves every thread's Python stack in the log
        faulthandler.enable()
    app = Flask(__name__, instance_path=str(Path(os.environ.get("GRANTS_INSTANCE", Path.cwd() / "instance"))))
    app.session_interface = cookies.SessionCookies()
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("GRANTS_SECRET_KEY") or keys.secret_key(app.instance_path),
        DATABASE_URL=os.environ.get("DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'grants.db'}"),
        # Every link in documents and mail; `grants run`/`worker` and webapp.wsgi refuse to start
        # without it outside the demo (webapp/deploy.py).
        BASE_URL=os.environ.get("GRANTS_BASE_URL", "").rstrip("/"),
        DEMO=os.environ.get("GRANTS_DEMO", "") == "1",
        PROXY_COUNT=int(os.environ.get("GRANTS_PROXY_COUNT", "0")),
        SMTP_HOST=os.environ.get("GRANTS_SMTP_HOST", "127.0.0.1"),
        SMTP_PORT=int(os.environ.get("GRANTS_SMTP_PORT", "25")),
        MAIL_SENDER=os.environ.get("GRANTS_MAIL_SENDER", "grants@localhost"),
        REMINDER_AFTER_DAYS=int(os.environ.get("GRANTS_REMINDER_DAYS", "3")),
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        BABEL_DEFAULT_LOCALE="zh_CN",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        TICK_INTERVAL_SECONDS=1.0,
        SECURE_COOKIES=os.environ.get("GRANTS_SECURE_COOKIES", ""),
    )
    if config:
        app.config.update(config)
    deploy.configure(app)
    engine_settings.configure(
        base_url=app.config["BASE_URL"] or deploy.DEMO_BASE_URL,
        smtp_host=app.config["SMTP_HOST"], smtp_port=app.config["SMTP_PORT"],
        mail_sender=app.config["MAIL_SENDER"], reminder_after_days=app.config["REMINDER_AFTER_DAYS"],
        max_upload_bytes=app.config["MAX_CONTENT_LENGTH"], instance_dir=app.instance_path)
    security.register(app)  # before the blueprints: it bounds the <int:…> converter
    database.register(app)
    extensions.register(app)
    heap.register(app)
    from . import blueprints, cli
    blueprints.register_all(app)
    cli.register(app)
    return app
