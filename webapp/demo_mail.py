"""Demo mail: a loopback SMTP catcher (aiosmtpd) that keeps every message as a .eml file in
`<instance>/demo-mail/`, so the demo's mail is delivered and can be read on /admin/outbox."""
from __future__ import annotations

import email
import socket
import time
import uuid
from email import policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

FOLDER = "demo-mail"


class _Keep:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope) -> str:
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / f".{name}"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.folder / name)  # readers never see half a message
        return "250 OK"


def folder(instance_dir: str | Path) -> Path:
    return Path(instance_dir) / FOLDER


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start(instance_dir: str | Path, host: str = "127.0.0.1", port: int | None = None) -> Controller:
    """Start the catcher on loopback in a background thread; the caller points SMTP at it."""
    target = folder(instance_dir)
    target.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keep(target), hostname=host, port=port or free_port(host))
    controller.start()
    return controller


def caught(instance_dir: str | Path, limit: int = 50) -> list[dict[str, Any]]:
    """The newest caught messages, parsed for display."""
    target = folder(instance_dir)
    if not target.is_dir():
        return []
    result = []
    for path in sorted(target.glob("*.eml"), reverse=True)[:limit]:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        result.append({"file": path.name, "to": str(message["To"] or ""), "subject": str(message["Subject"] or ""),
                       "date": path.stat().st_mtime, "body": body.get_content() if body else ""})
    return result
