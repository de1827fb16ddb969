"""The instance's keys live in files under <instance>/keys, mode 0600, never in the database:
whoever can write the database still cannot sign a checkpoint or forge a session cookie."""
from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workflows import settings

from . import pack_verify

CHECKPOINT_KEY = "checkpoint-ed25519.key.pem"
CHECKPOINT_PUBLIC = "checkpoint-ed25519.pub.pem"
SECRET_KEY = "flask-secret.key"
OLD_DEFAULTS = ("dev-secret-change-me", "dev-audit-key")
# Called by init() after the instance keys exist, with the instance directory (the lead adds
# e.g. each unit's signing CA from workflows/evidence/pki.py here).
INIT_HOOKS: list[Callable[[Path], list[str]]] = []


class KeyProblem(Exception):
    """A key file is missing, unreadable or readable by others."""


def keys_dir(instance_dir: str | Path | None = None) -> Path:
    return Path(instance_dir or settings.get().instance_dir) / "keys"


def _write_secret(path: Path, content: bytes) -> None:
    """Create with 0600 from the first byte (never chmod after), refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())


def init(instance_dir: str | Path | None = None) -> list[str]:
    """Create whatever key is missing (idempotent); returns the files created."""
    directory = keys_dir(instance_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = []
    if not (directory / CHECKPOINT_KEY).exists():
        key = Ed25519PrivateKey.generate()
        _write_secret(directory / CHECKPOINT_KEY, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                                                    ser.NoEncryption()))
        (directory / CHECKPOINT_PUBLIC).write_bytes(key.public_key().public_bytes(
            ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
        created += [CHECKPOINT_KEY, CHECKPOINT_PUBLIC]
    if not (directory / SECRET_KEY).exists():
        _write_secret(directory / SECRET_KEY, secrets.token_urlsafe(48).encode())
        created.append(SECRET_KEY)
    for hook in INIT_HOOKS:
        created += hook(directory.parent)
    return created


def _read_private(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyProblem(f"缺少密钥文件 {path}：请先运行 grants keys init") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProblem(f"密钥文件 {path} 可被其他用户读取（权限 {oct(mode & 0o777)}）：请执行 chmod 600 {path}")
    return path.read_bytes()


_cache: dict[tuple[str, float], Ed25519PrivateKey] = {}


def checkpoint_key(instance_dir: str | Path | None = None) -> Ed25519PrivateKey:
    """The checkpoint signing key; refuses a file others may read."""
    path = keys_dir(instance_dir) / CHECKPOINT_KEY
    data = _read_private(path)
    cache_key = (str(path), path.stat().st_mtime)
    if cache_key not in _cache:
        key = ser.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyProblem(f"检查点密钥 {path} 不是 Ed25519 私钥")
        _cache.clear()
        _cache[cache_key] = key
    return _cache[cache_key]


def checkpoint_public_pem(instance_dir: str | Path | None = None) -> bytes:
    return checkpoint_key(instance_dir).public_key().public_bytes(ser.Encoding.PEM,
                                                                   ser.PublicFormat.SubjectPublicKeyInfo)


def checkpoint_public_key(pem: bytes | None = None, instance_dir: str | Path | None = None) -> Ed25519PublicKey:
    """The key that verifies checkpoints: given, else the public key file, else from the private key."""
    path = keys_dir(instance_dir) / CHECKPOINT_PUBLIC
    if pem is None and path.exists():
        pem = path.read_bytes()
    key = ser.load_pem_public_key(pem) if pem is not None else checkpoint_key(instance_dir).public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem("检查点公钥不是 Ed25519 公钥")
    return key


def public_key_id(public: Ed25519PublicKey) -> str:
    return pack_verify.key_id(public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw))


def secret_key(instance_dir: str | Path | None = None) -> str | None:
    """The Flask secret key from its file, or None when `keys init` has not run."""
    path = keys_dir(instance_dir) / SECRET_KEY
    if not path.exists():
        return None
    return _read_private(path).decode().strip()


def problems(instance_dir: str | Path | None, flask_secret: str | None) -> list[str]:
    """Why the server must not start (in Chinese); empty when real keys are in place."""
    found = []
    try:
        checkpoint_key(instance_dir)
    except (KeyProblem, ValueError) as exc:
        found.append(str(exc))
    if not flask_secret:
        found.append("缺少会话密钥：请运行 grants keys init（或设置 GRANTS_SECRET_KEY）")
    elif flask_secret in OLD_DEFAULTS:
        found.append("会话密钥仍是默认值 dev-secret-change-me：请删除 GRANTS_SECRET_KEY 并运行 grants keys init")
    if os.environ.get("GRANTS_AUDIT_KEY") in OLD_DEFAULTS:
        found.append("GRANTS_AUDIT_KEY 仍是默认值且已不再使用：审计日志改由检查点密钥签名，请删除该变量并运行 grants keys init")
    return found
