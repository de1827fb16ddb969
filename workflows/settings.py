"""Deployment settings the engine needs; the web app or CLI fills them once at start-up."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from .catalogue import MIN_PUBLICITY_DAYS


@dataclass(frozen=True)
class Settings:
    publicity_days: int = MIN_PUBLICITY_DAYS  # a unit may post longer, never shorter
    base_url: str = "http://127.0.0.1:5000"
    reminder_after_days: int = 3
    mail_sender: str = "grants@localhost"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    max_upload_bytes: int = 10 * 1024 * 1024
    # Where keys, anchors and other files that must not live in the database are kept.
    instance_dir: str = field(default_factory=lambda: os.environ.get("GRANTS_INSTANCE", "instance"))
    # An RFC 3161 time-stamping authority; when set, every PDF signature carries its timestamp.
    tsa_url: str = field(default_factory=lambda: os.environ.get("GRANTS_TSA_URL", ""))


_current = Settings()


def get() -> Settings:
    return _current


def configure(**changes: Any) -> Settings:
    """Replace settings (tests and the app factory call this)."""
    global _current  # noqa: PLW0603 (the one process-wide settings object, replaced whole)
    _current = replace(_current, **changes)
    return _current
