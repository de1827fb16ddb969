"""What a signed-in browser session is bound to, so signing out or changing the password ends it.

A session cookie carries `session_key(user)`: the user id, a random nonce kept in the user row
and a tail of the password hash. Sign-out draws a new nonce (every cookie issued before, copied
or not, stops working: this ends the person's sessions on all devices); a password change
alters the hash tail, and also draws a new nonce.
"""
from __future__ import annotations

import hmac
import secrets

from workflows.models import User


def session_key(user: User) -> str:
    return f"{user.id}:{user.session_nonce or ''}:{user.password_hash[-16:]}"


def matches(user: User, key: str) -> bool:
    return user.active and hmac.compare_digest(session_key(user), key)


def end_sessions(user: User) -> None:
    """Flushes nothing itself: the request's commit makes it durable."""
    user.session_nonce = secrets.token_hex(16)
