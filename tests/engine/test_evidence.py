"""The evidence pack of a completed grant holds every round (form revisions, consents, publicity,
objections, signatures, IP transfer) and the application's audit events with inclusion proofs
against a signed checkpoint; `grants verify-pack` and the pack's own verify_pack.py check it
offline, and each kind of tampering makes them fail."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.driver import Driver, example
from tests.engine.test_paths import _objection
from workflows.errors import Forbidden
from workflows.evidence import evidence_pack, keys, pack_verify
from workflows.models import Application
from workflows.process import queries


@pytest.fixture
def completed(sessions) -> tuple[Driver, int]:
    """A grant walked to completion with a dismissed objection and a second draft revision."""
    drive = Driver(sessions)
    app_id = drive.to_publicity()
    _objection(drive, app_id)
    drive.complete(app_id, "handle_objection", "tto1", {"decision": "dismiss", "reasoning": "异议不成立。"})
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    return drive, app_id


def _pack(drive: Driver, app_id: int, who: str = "auditor1") -> bytes:
    with drive.sessions() as s:
        _name, pack = evidence_pack.evidence_pack(s, s.get(Application, app_id), drive.user(s, who))
        s.commit()
    return pack


def test_evidence_pack_of_a_completed_grant_holds_every_round(completed):
    drive, app_id = completed
    with drive.sessions() as s:
        app = s.get(Application, app_id)
        name, pack = evidence_pack.evidence_pack(s, app, drive.user(s, "auditor1"))
        stored = {d.sha256 for d in queries.documents(s, app)}
        with pytest.raises(Forbidden):
            evidence_pack.evidence_pack(s, app, drive.user(s, "signer1"))
        s.commit()
    assert name.startswith(app.number)
    assert pack_verify.verify(pack) == []
    z = zipfile.ZipFile(io.BytesIO(pack))
    docs = [n for n in z.namelist() if n.startswith("documents/")]
    assert {hashlib.sha256(z.read(n)).hexdigest() for n in docs} == stored
    assert any("协议（已签署）" in n for n in docs)
    submissions = json.loads(z.read("forms/submissions.json"))
    steps = [s["step"] for s in submissions]
    assert steps.count("consent") == 3 and "draft" in steps and "ip_transfer" in steps
    draft = next(s for s in submissions if s["step"] == "draft")
    assert draft["payload"]["achievement"]["title"] == example("ownership_draft")["achievement"]["title"]
    assert draft["account"]["username"] == "researcher1" and draft["submitted_at"].endswith("+08:00")
    consents = json.loads(z.read("consents.json"))
    assert {c["account"]["username"] for c in consents} == {"researcher1", "researcher2", "researcher3"}
    assert {s["role"] for s in json.loads(z.read("signatures.json"))} == {"representative", "unit"}
    assert "demo-pass-2026" not in z.read("forms/submissions.json").decode()
    notice = json.loads(z.read("publicity.json"))["notices"][0]
    assert notice["outcome"] == "passed" and notice["objections"][0]["status"] == "dismissed"
    assert notice["objections"][0]["name"] == example("objection")["name"]  # auditors may see who objected
    events = json.loads(z.read("audit/events.json"))
    assert {"start", "complete_task", "objection", "timer", "document"} <= {e["leaf"]["action"] for e in events}
    assert events[-1]["leaf"]["action"] == "evidence_pack" and events[0]["beijing_time"].endswith("+08:00")
    checkpoint = json.loads(z.read("audit/checkpoint.json"))
    assert checkpoint["size"] > max(e["leaf"]["seq"] for e in events)
    assert z.read("audit/checkpoint_public_key.pem") == keys.checkpoint_public_pem()
    assert z.read("verify_pack.py") == Path(pack_verify.__file__).read_bytes()
    assert "python3 verify_pack.py" in z.read("README.txt").decode()


def test_objectors_are_named_only_for_the_units_office_and_auditors(completed):
    drive, app_id = completed
    team_pack = zipfile.ZipFile(io.BytesIO(_pack(drive, app_id, "researcher1")))
    objection = json.loads(team_pack.read("publicity.json"))["notices"][0]["objections"][0]
    assert "name" not in objection and "contact" not in objection
    assert example("objection")["name"] not in team_pack.read("publicity.json").decode()
    tto_pack = zipfile.ZipFile(io.BytesIO(_pack(drive, app_id, "tto1")))
    assert json.loads(tto_pack.read("publicity.json"))["notices"][0]["objections"][0]["contact"]


def test_the_pack_is_verified_by_its_own_script_with_nothing_of_ours(completed, tmp_path):
    drive, app_id = completed
    pack = _pack(drive, app_id)
    alone = tmp_path / "auditor"
    alone.mkdir()
    (alone / "pack.zip").write_bytes(pack)
    (alone / "verify_pack.py").write_bytes(zipfile.ZipFile(io.BytesIO(pack)).read("verify_pack.py"))
    (alone / "checkpoint.pub.pem").write_bytes(keys.checkpoint_public_pem())
    run = subprocess.run([sys.executable, "-I", "verify_pack.py", "pack.zip", "--checkpoint-key", "checkpoint.pub.pem"],
                         cwd=alone, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "证据包完整" in run.stdout
    (alone / "bad.zip").write_bytes(_tampered(pack, "audit/checkpoint.json", _alter_signature))
    run = subprocess.run([sys.executable, "-I", "verify_pack.py", "bad.zip"], cwd=alone, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 1 and "签名检查点的签名无效" in run.stderr


def _tampered(pack: bytes, name: str, change, fix_manifest: bool = True) -> bytes:
    """A copy with one entry changed; a careful forger also rewrites the manifest's hashes."""
    z = zipfile.ZipFile(io.BytesIO(pack))
    contents = {n: z.read(n) for n in z.namelist() if n != "manifest.json"}
    contents[name] = change(contents[name])
    manifest = json.loads(z.read("manifest.json"))
    about = {k: v for k, v in manifest.items() if k != "files"}
    if not fix_manifest:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as w:
            for n, data in contents.items():
                w.writestr(n, data)
            w.writestr("manifest.json", z.read("manifest.json"))
        return out.getvalue()
    return evidence_pack.build_zip(contents, about)


def _json_change(edit):
    def change(data: bytes) -> bytes:
        value = json.loads(data)
        edit(value)
        return json.dumps(value, ensure_ascii=False).encode()
    return change


def _flip_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]


def _alter_signature(data: bytes) -> bytes:
    value = json.loads(data)
    signature = bytearray(__import__("base64").b64decode(value["signature"]))
    signature[0] ^= 1
    value["signature"] = __import__("base64").b64encode(bytes(signature)).decode()
    return json.dumps(value).encode()


def _edit_event(events):
    next(e for e in events if e["leaf"]["action"] == "complete_task")["leaf"]["actor"] = "someone_else"


def _remove_event(events):
    events.pop(len(events) // 2)


def _remove_last_real_event(events):
    events.pop(-2)


def _remove_revision(submissions):
    submissions.pop(1)


def _edit_revision(submissions):
    submissions[0]["payload"]["achievement"]["title"] = "另一个成果"
    submissions[0]["payload_digest"] = pack_verify.digest(submissions[0]["payload"])


TAMPERINGS = {
    "document-byte-changed": ("document", _flip_byte, "不符"),
    "document-byte-changed-manifest-kept": ("document", _flip_byte, "文件内容与清单不符"),
    "event-edited": ("audit/events.json", _json_change(_edit_event), "被修改"),
    "event-removed": ("audit/events.json", _json_change(_remove_event), "缺失或顺序被改动"),
    "last-event-removed": ("audit/events.json", _json_change(_remove_last_real_event), "审计记录"),
    "form-revision-removed": ("forms/submissions.json", _json_change(_remove_revision), "缺少表单提交记录"),
    "form-revision-edited": ("forms/submissions.json", _json_change(_edit_revision), "摘要不符"),
    "checkpoint-signature-altered": ("audit/checkpoint.json", _alter_signature, "签名检查点的签名无效"),
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_grants_verify_pack_passes_a_real_pack_and_fails_each_tampered_copy(completed, tmp_path, tampering):
    drive, app_id = completed
    pack = _pack(drive, app_id)
    assert _verify_pack_cli(tmp_path / "pack.zip", pack) == (0, "证据包完整：文件哈希、表单提交、审计记录与签名检查点、PDF签名均核验通过")
    name, change, reason = TAMPERINGS[tampering]
    if name == "document":
        name = next(n for n in zipfile.ZipFile(io.BytesIO(pack)).namelist() if n.startswith("documents/"))
    bad = _tampered(pack, name, change, fix_manifest=not tampering.endswith("manifest-kept"))
    code, output = _verify_pack_cli(tmp_path / "bad.zip", bad)
    assert code == 1 and reason in output and "核验未通过" in output, output


def test_a_pack_resigned_with_another_key_fails_against_the_published_key(completed, tmp_path):
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    drive, app_id = completed
    pack = _pack(drive, app_id)
    forger = Ed25519PrivateKey.generate()
    forged_pub = forger.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)

    def resign(data: bytes) -> bytes:
        body = json.loads(data)
        body["key_id"] = keys.public_key_id(forger.public_key())
        body["signature"] = __import__("base64").b64encode(forger.sign(pack_verify.checkpoint_body(body))).decode()
        return json.dumps(body).encode()
    z = zipfile.ZipFile(io.BytesIO(pack))
    contents = {n: z.read(n) for n in z.namelist() if n != "manifest.json"}
    contents["audit/checkpoint.json"] = resign(contents["audit/checkpoint.json"])
    contents["audit/checkpoint_public_key.pem"] = forged_pub
    forged = evidence_pack.build_zip(contents, {"application_id": app_id})
    assert pack_verify.verify(forged) == []  # consistent with itself...
    (tmp_path / "published.pem").write_bytes(keys.checkpoint_public_pem())
    assert pack_verify.verify(forged, checkpoint_key_pem=keys.checkpoint_public_pem())  # ...not with the real key


def test_the_pack_is_deterministic_zip_with_the_manifest_last():
    contents = {"b.txt": b"B", "a.txt": b"A"}
    first = evidence_pack.build_zip(contents, {"application_id": 1})
    assert first == evidence_pack.build_zip(dict(reversed(contents.items())), {"application_id": 1})
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == ["a.txt", "b.txt", "manifest.json"]


def _verify_pack_cli(path, pack: bytes, extra: list[str] = ()) -> tuple[int, str]:
    from webapp.cli import verify_pack
    path.write_bytes(pack)
    result = CliRunner().invoke(verify_pack, [str(path), "--checkpoint-key",
                                              str(keys.keys_dir() / keys.CHECKPOINT_PUBLIC), *extra])
    return result.exit_code, result.output.strip()


# -- PDF signatures inside the pack are validated with pyHanko ------------------------------------
def _ca_and_signer(tmp_path, name: str = "单位CA"):
    """A unit CA and a person's certificate it issued (P-256), as files pyHanko can load."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.now(UTC)

    def cert(subject, issuer, key, signing_key, ca: bool):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=not ca,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        return builder.sign(signing_key, hashes.SHA256())
    ca_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = cert(ca_name, ca_name, ca_key, ca_key, True)
    ee_cert = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "签署人")]), ca_name, ee_key, ca_key, False)
    files = {}
    for label, data in {"ca.pem": ca_cert.public_bytes(ser.Encoding.PEM),
                        "ee.pem": ee_cert.public_bytes(ser.Encoding.PEM),
                        "ee.key": ee_key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                                       ser.NoEncryption())}.items():
        (tmp_path / f"{name}-{label}").write_bytes(data)
        files[label] = str(tmp_path / f"{name}-{label}")
    return files


def _signed_pdf(files) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from weasyprint import HTML
    pdf = HTML(string="<p>协议</p>").write_pdf()
    signer = signers.SimpleSigner.load(files["ee.key"], files["ee.pem"], ca_chain_files=(files["ca.pem"],))
    out = io.BytesIO()
    signers.PdfSigner(signers.PdfSignatureMetadata(field_name="Sig1", md_algorithm="sha256"), signer=signer
                      ).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False), output=out)
    return out.getvalue()


def test_a_signed_pdf_in_the_pack_must_validate_against_the_unit_ca(completed, tmp_path):
    """The unit's signed agreement validates alone (the pack carries the unit CA) and fails under
    another CA; an upload signed by someone else must be intact but need not chain to the unit."""
    from workflows import settings
    from workflows.documents import document_store
    from workflows.evidence import pki
    drive, app_id = completed
    files, other = _ca_and_signer(tmp_path), _ca_and_signer(tmp_path, "别的CA")
    signed = _signed_pdf(files)
    with drive.sessions() as s:
        document_store.store(s, s.get(Application, app_id), "attachment", "已签署.pdf", signed)
        s.commit()
        unit = s.get(Application, app_id).unit
    pack = _pack(drive, app_id)
    ca = pki.certificate_pem(settings.get().instance_dir, unit.code, unit.name).encode()
    (tmp_path / "unit-ca.pem").write_bytes(ca)
    assert pack_verify.verify(pack) == []  # with the unit CA inside the pack
    assert pack_verify.verify(pack, unit_cert_pem=ca) == []
    wrong = pack_verify.verify(pack, unit_cert_pem=Path(other["ca.pem"]).read_bytes())
    assert any("协议" in p and "无效" in p for p in wrong), wrong
    changed = bytearray(signed)
    at = signed.index(b"<p>") if b"<p>" in signed else len(signed) // 3
    changed[at] ^= 1
    assert pack_verify._validate_pdf("x.pdf", bytes(changed), ca, need_trust=False)  # pyHanko sees the change
    assert pack_verify._validate_pdf("x.pdf", signed, Path(files["ca.pem"]).read_bytes()) == []
    assert pack_verify._validate_pdf("x.pdf", signed, ca)  # not the unit's: untrusted
    assert pack_verify._validate_pdf("x.pdf", signed, ca, need_trust=False) == []
    code, output = _verify_pack_cli(tmp_path / "signed.zip", pack, ["--unit-cert", str(tmp_path / "unit-ca.pem")])
    assert code == 0, output


def test_every_publicity_notice_prints_a_signed_checkpoint_of_the_units_log(sessions):
    """A printed notice pins the unit's log: its checkpoint is one the log really signed, and the
    signature verifies with the published key."""
    import base64

    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from pypdf import PdfReader

    from workflows.documents import document_store
    from workflows.evidence import audit, keys
    from workflows.models import AuditCheckpoint, Document, PublicityNotice
    drive = Driver(sessions)
    app_id = drive.to_publicity()
    with sessions() as s:
        notice = s.execute(select(PublicityNotice).where(PublicityNotice.application_id == app_id)).scalar_one()
        pdf = document_store.read(s.get(Document, notice.document_id))
        text = "".join("".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
        assert "审计日志检查点" in text
        signed = [c.body for c in s.execute(select(AuditCheckpoint)).scalars()
                  if c.body["root"] in text and c.body["signature"][:40] in text]
        assert signed, "the printed checkpoint is one the log signed"
        body = dict(signed[0])
        signature = base64.b64decode(body.pop("signature"))
        load_pem_public_key(keys.checkpoint_public_pem()).verify(signature, audit.canonical(body).encode())
