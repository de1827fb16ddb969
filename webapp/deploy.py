"""Deployment settings that are not the engine's: the public address, proxies, secure cookies.

Outside the demo every link in documents and mail must carry the address people really use, so
the production entry points (`grants run`, `grants worker`, webapp.wsgi for gunicorn) refuse to
start without GRANTS_BASE_URL; the demo derives it from its host and port.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from workflows import settings as engine_settings

DEMO_BASE_URL = "http://127.0.0.1:5000"


class NotConfigured(SystemExit):
    """Raised at start-up; the message says which setting is missing."""


def configure(app: Flask) -> None:
    """Trust exactly GRANTS_PROXY_COUNT reverse proxies; HTTPS addresses get Secure cookies."""
    app.config["BASE_URL"] = (app.config.get("BASE_URL") or "").rstrip("/")
    count = int(app.config.get("PROXY_COUNT") or 0)
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count,
                                x_prefix=count)
    if app.config["BASE_URL"].startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True


def require_base_url(app: Flask) -> str:
    """The configured public address; without one, only the demo may start."""
    base = app.config["BASE_URL"]
    if not base:
        if not app.config.get("DEMO"):
            raise NotConfigured("未设置 GRANTS_BASE_URL（用户访问本系统的地址，如 https://grants.example.edu.cn），"
                                "文件和邮件中的链接都由它生成；仅演示模式（GRANTS_DEMO=1 或 --demo）可以不设")
        return DEMO_BASE_URL
    if not base.startswith(("http://", "https://")):
        raise NotConfigured(f"GRANTS_BASE_URL 必须以 http:// 或 https:// 开头：{base}")
    return base


def set_base_url(app: Flask, base: str) -> None:
    """The demo's own address (its host and port), used for every link from now on."""
    app.config["BASE_URL"] = base.rstrip("/")
    engine_settings.configure(base_url=app.config["BASE_URL"])
