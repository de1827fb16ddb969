"""Per-unit signing keys: a unit CA (ECDSA P-256, which poppler/NSS can validate; Ed25519 they
cannot) issues a short-lived certificate for each signing act, naming the person or the unit.

Files live under <instance>/keys/units/<CODE>/ with mode 0600 and never in the database:
  ca.key.pem, ca.cert.pem          the unit's own CA (created on first use)
  imported.key.pem, imported.cert.pem, imported.chain.pem
                                   a PKCS#12 from a real CA (`grants keys import-unit-cert`);
                                   when present the unit signs with it instead of its own CA.
Each signing act gets a fresh key that is never written anywhere: only the CA key is a secret.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from workflows import clock
from workflows.errors import ValidationFailed
from workflows.i18n import msg

CA_YEARS = 30
SIGNER_YEARS = 10
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


@dataclass(frozen=True)
class SigningIdentity:
    """What pyHanko needs to sign: a private key, its certificate and the chain up to the root."""
    key: CertificateIssuerPrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def unit_dir(instance_dir: str | os.PathLike[str], unit_code: str) -> Path:
    if not _CODE.match(unit_code or ""):
        raise ValidationFailed([{"field": "unit", "message": msg("单位代码“{code}”不合法", code=unit_code)}])
    return Path(instance_dir) / "keys" / "units" / unit_code


def _write_secret(path: Path, data: bytes) -> None:
    """0600 from the first byte (no window where another user could read it), then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # per thread
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _pem_key(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, unit_name: str, unit_code: str, unit_title: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, unit_name[:64] or unit_code),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit_code)]
    if unit_title:
        attrs.append(x509.NameAttribute(NameOID.TITLE, unit_title[:64]))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]))
    return x509.Name(attrs)


def _not_before() -> datetime:
    """An hour before the earlier of the engine clock and the wall clock (tests may shift either)."""
    return min(clock.now(), datetime.now(UTC)) - timedelta(hours=1)


# Two requests signing for a unit without a CA yet (waitress threads) must not both create one:
# they wrote the same temporary file, and one thread's key could end up beside the other's
# certificate.
_ca_lock = threading.Lock()


def ensure_unit_ca(instance_dir: str | os.PathLike[str], unit_code: str, unit_name: str) -> x509.Certificate:
    """The unit's CA certificate, created with its key the first time (idempotent)."""
    folder = unit_dir(instance_dir, unit_code)
    cert_path, key_path = folder / "ca.cert.pem", folder / "ca.key.pem"
    if cert_path.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(cert_path.read_bytes())
    with _ca_lock:
        if cert_path.exists() and key_path.exists():
            return x509.load_pem_x509_certificate(cert_path.read_bytes())
        return _create_unit_ca(unit_code, unit_name, cert_path, key_path)


def _create_unit_ca(unit_code: str, unit_name: str, cert_path: Path, key_path: Path) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{unit_name or unit_code} 电子签名CA", unit_name, unit_code)
    start = _not_before()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
            .not_valid_after(start + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    _write_secret(key_path, _pem_key(key))
    _write_secret(cert_path, _pem_cert(cert))
    return cert


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an EC or RSA private key")  # we only write and import those
    return key


def _load_ca(folder: Path) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    key = _load_key(folder / "ca.key.pem")
    return key, x509.load_pem_x509_certificate((folder / "ca.cert.pem").read_bytes())


def _imported(folder: Path) -> SigningIdentity | None:
    if not (folder / "imported.cert.pem").exists():
        return None
    key = _load_key(folder / "imported.key.pem")
    chain_path = folder / "imported.chain.pem"
    chain = tuple(x509.load_pem_x509_certificates(chain_path.read_bytes())) if chain_path.exists() else ()
    return SigningIdentity(key, x509.load_pem_x509_certificate((folder / "imported.cert.pem").read_bytes()), chain)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def issue(instance_dir: str | os.PathLike[str], unit_code: str, unit_name: str, common_name: str,
          role_title: str | None = None, username: str | None = None) -> SigningIdentity:
    """A fresh key and certificate for one signing act, naming `common_name` (a person or the unit).

    With an imported end-entity certificate the unit signs everything with it (a real CA will
    not let us issue); an imported CA certificate issues as our own CA would.
    """
    folder = unit_dir(instance_dir, unit_code)
    imported = _imported(folder)
    if imported is not None and not _is_ca(imported.cert):
        return imported
    if imported is not None:
        ca_key, ca_cert, parents = imported.key, imported.cert, imported.chain
    else:
        ensure_unit_ca(instance_dir, unit_code, unit_name)
        (ca_key, ca_cert), parents = _load_ca(folder), ()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name, unit_name, unit_code, role_title)
    if username:
        subject = x509.Name([*subject, x509.NameAttribute(NameOID.USER_ID, username[:64])])
    start = _not_before()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(min(start + timedelta(days=365 * SIGNER_YEARS),
                                                         ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return SigningIdentity(key, cert, (ca_cert, *parents))


def trust_roots(instance_dir: str | os.PathLike[str], unit_code: str, unit_name: str = "") -> list[x509.Certificate]:
    """The certificates a verifier should trust for this unit's signatures (what the API publishes)."""
    folder = unit_dir(instance_dir, unit_code)
    imported = _imported(folder)
    if imported is not None:
        return [*imported.chain, imported.cert] if imported.chain else [imported.cert]
    return [ensure_unit_ca(instance_dir, unit_code, unit_name)]


def certificate_pem(instance_dir: str | os.PathLike[str], unit_code: str, unit_name: str = "") -> str:
    return "".join(_pem_cert(c).decode() for c in trust_roots(instance_dir, unit_code, unit_name))


def import_pkcs12(instance_dir: str | os.PathLike[str], unit_code: str, data: bytes, password: str | None) -> x509.Certificate:
    """Store a PKCS#12 (key + certificate + chain) so the unit signs with it from now on."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
    except ValueError as exc:
        raise ValidationFailed([{"field": "file", "message": msg("无法读取PKCS#12文件（密码错误或文件损坏）")}]) from exc
    if key is None or cert is None:
        raise ValidationFailed([{"field": "file", "message": msg("PKCS#12文件中缺少私钥或证书")}])
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValidationFailed([{"field": "file", "message": msg("只支持RSA或ECDSA密钥（PDF阅读器无法核验Ed25519签名）")}])
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ValidationFailed([{"field": "file", "message": msg("证书不在有效期内")}])
    folder = unit_dir(instance_dir, unit_code)
    _write_secret(folder / "imported.key.pem", _pem_key(key))
    _write_secret(folder / "imported.cert.pem", _pem_cert(cert))
    chain = b"".join(_pem_cert(c) for c in extra or [])
    if chain:
        _write_secret(folder / "imported.chain.pem", chain)
    elif (folder / "imported.chain.pem").exists():
        (folder / "imported.chain.pem").unlink()
    return cert
