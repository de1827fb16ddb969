"""PAdES signatures inside the PDFs: a completed grant's agreement carries both parties'
signatures, valid and trusted to the unit's CA in pyHanko and in poppler's pdfsig; a one-byte
change anywhere in the signed range breaks them; decision records and notices carry the unit's
signature; the RFC 3161 path works against a loopback TSA; keys and imported certificates."""
from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select

from workflows import settings
from workflows.errors import ValidationFailed
from workflows.evidence import pack_verify, pki, signing
from workflows.models import Application, Document, Signature

from .conftest import _seeded_sessions
from .driver import Driver

ARTIFACTS = Path(__file__).parent / "artifacts" / "signing"


# ---- one completed grant, shared by the read-only tests of this module -----------------------

@pytest.fixture(scope="module")
def grant(tmp_path_factory, sqlite_template):
    path = tmp_path_factory.mktemp("signing") / "grants.db"
    shutil.copy(sqlite_template, path)
    sessions = _seeded_sessions(f"sqlite:///{path}")
    drive = Driver(next(sessions))
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    with drive.sessions() as s:
        app = s.get(Application, app_id)
        docs = {}
        for doc in s.execute(select(Document).where(Document.application_id == app_id).order_by(Document.id)).scalars():
            docs.setdefault(doc.kind, []).append((doc.sha256, doc.content))
        sigs = [(sig.role, sig.sha256, sig.user.name, sig.document_id) for sig in
                s.execute(select(Signature).where(Signature.application_id == app_id).order_by(Signature.id)).scalars()]
        unit = (app.unit.code, app.unit.name)
    yield {"docs": docs, "signatures": sigs, "unit": unit,
           "roots": pki.trust_roots(settings.get().instance_dir, *unit)}
    next(sessions, None)


def _final(grant) -> bytes:
    (_, content), = grant["docs"]["agreement_final"]
    return content


def _nss(tmp_path: Path, pem: str) -> str:
    db = tmp_path / "nss"
    db.mkdir()
    (tmp_path / "ca.pem").write_text(pem)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "unit-ca", "-t", "C,C,C", "-i", str(tmp_path / "ca.pem")],
                   check=True, capture_output=True)
    return f"sql:{db}"


def _pdfsig(pdf: bytes, nss: str, tmp_path: Path) -> list[dict[str, str]]:
    """pdfsig's verdict per signature (its exit code is 0 even on a digest mismatch: parse the text)."""
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfsig", "-nssdir", nss, str(path)], capture_output=True, text=True, check=False).stdout
    found = []
    for block in re.split(r"^Signature #\d+:", out, flags=re.M)[1:]:
        def field(label, block=block):
            match = re.search(rf"- {label}: (.*)", block)
            return match.group(1).strip() if match else ""
        found.append({"field": field("Signature Field Name"), "signer": field("Signer Certificate Common Name"),
                      "signature": field("Signature Validation"), "certificate": field("Certificate Validation")})
    return found


def _pdfsig_ok(results: list[dict[str, str]], count: int) -> bool:
    return len(results) == count and all(r["signature"] == "Signature is Valid."
                                         and r["certificate"] == "Certificate is Trusted." for r in results)


# ---- the signed agreement ---------------------------------------------------------------------

def test_final_agreement_has_both_signatures_valid_and_trusted_in_pyhanko(grant):
    checks = signing.validate(_final(grant), grant["roots"])
    assert [(c.field, c.signer) for c in checks] == [("Sig_representative", "李明"), ("Sig_unit", "周红")]
    for check in checks:
        assert check.intact and check.valid and check.trusted and check.bottom_line and not check.problems
    assert checks[0].modification == "FORM_FILLING" and checks[1].coverage == "ENTIRE_FILE"
    assert signing.problems(_final(grant), grant["roots"], expected=2) == []


def test_pyhanko_command_line_validates_the_agreement(grant, tmp_path):
    (tmp_path / "ca.pem").write_text(pki.certificate_pem(settings.get().instance_dir, *grant["unit"]))
    (tmp_path / "final.pdf").write_bytes(_final(grant))
    run = subprocess.run([str(Path(sys.executable).parent / "pyhanko"),
                          "sign", "validate", "--trust-replace", "--trust", str(tmp_path / "ca.pem"),
                          str(tmp_path / "final.pdf")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Sig_representative" in run.stdout and "Sig_unit:" in run.stdout and "INTACT:TRUSTED" in run.stdout


def test_final_agreement_validates_in_pdfsig(grant, tmp_path):
    nss = _nss(tmp_path, pki.certificate_pem(settings.get().instance_dir, *grant["unit"]))
    results = _pdfsig(_final(grant), nss, tmp_path)
    assert {(r["field"], r["signer"]) for r in results} == {("Sig_representative", "李明"), ("Sig_unit", "周红")}
    assert _pdfsig_ok(results, 2), results


def test_signatures_accumulate_on_the_same_draft_and_rows_index_the_signed_bytes(grant):
    docs = grant["docs"]
    (_draft_sha, draft), = docs["agreement_draft"]
    (rep_sha, after_rep), (unit_sha, after_unit) = docs["agreement_signed"]
    final_sha, final = docs["agreement_final"][0]
    assert final == after_unit and final_sha == unit_sha
    assert after_rep.startswith(draft) and final.startswith(after_rep)  # incremental updates only
    assert [(role, sha) for role, sha, _, _ in grant["signatures"]] == [("representative", rep_sha), ("unit", unit_sha)]
    assert len({doc_id for *_, doc_id in grant["signatures"]}) == 1  # both signed the same draft
    assert signing.validate(draft, grant["roots"]) == []  # the draft carries empty fields only
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields
    empty = [(name, value) for name, value, _ in enumerate_sig_fields(PdfFileReader(io.BytesIO(draft), strict=False))]
    assert empty == [("Sig_unit", None), ("Sig_representative", None)]


def test_signed_agreement_stays_pdf_a_3b(grant):
    import io

    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(_final(grant)))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert re.search(rb'pdfaid:part(="|>)3', xmp) and re.search(rb'pdfaid:conformance(="|>)B', xmp)
    producer = re.search(rb'<pdf:Producer>([^<]*)</pdf:Producer>|pdf:Producer="([^"]*)"', xmp)
    assert reader.metadata.producer == (producer.group(1) or producer.group(2)).decode()  # Info = XMP (PDF/A)
    assert root["/OutputIntents"]


def test_stamps_show_name_role_and_beijing_time_in_cjk(grant, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "final_agreement.pdf"
    path.write_bytes(_final(grant))
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(path)], capture_output=True,
                                                            text=True, check=True).stdout).group(1))
    text = subprocess.run(["pdftotext", "-f", str(pages), "-l", str(pages), str(path), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "签署人：李明" in text and "身份：团队指定代表（researcher1）" in text
    assert "签署人：周红" in text and "身份：单位授权签字人（signer1）" in text
    assert re.search(r"时间：20\d\d-\d\d-\d\d \d\d:\d\d:\d\d（北京时间）", text)
    # The PNG is for a person to look at (CJK glyphs, not boxes): tests/artifacts/signing/stamps-N.png
    subprocess.run(["pdftoppm", "-r", "80", "-png", "-f", str(pages), "-l", str(pages), str(path),
                    str(ARTIFACTS / "stamps")], check=True)
    assert list(ARTIFACTS.glob("stamps*.png"))


def _offsets(pdf: bytes) -> list[int]:
    """Positions spread over the whole signed range of the last signature (its own hex excluded)."""
    ranges = [tuple(map(int, m)) for m in re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)]
    _start, length, gap_end, tail = max(ranges, key=lambda r: r[2])
    assert gap_end + tail == len(pdf)
    first_hex = min(ranges, key=lambda r: r[2])
    spread = [int(len(pdf) * i / 37) for i in range(37)] + [0, length - 1, gap_end, len(pdf) - 1,
                                                           first_hex[1] + 40]  # inside the first signature
    return sorted({o for o in spread if not length <= o < gap_end})


def _flip(pdf: bytes, offset: int) -> bytes:
    changed = bytearray(pdf)
    changed[offset] = changed[offset] ^ 0x01 if changed[offset] not in b"01" else b"10"[b"01".index(changed[offset])]
    return bytes(changed)


def test_one_changed_byte_anywhere_in_the_signed_range_fails_in_pyhanko(grant):
    final = _final(grant)
    for offset in _offsets(final):
        assert signing.problems(_flip(final, offset), grant["roots"], expected=2), offset


def test_one_changed_byte_anywhere_in_the_signed_range_fails_in_pdfsig(grant, tmp_path):
    final = _final(grant)
    nss = _nss(tmp_path, pki.certificate_pem(settings.get().instance_dir, *grant["unit"]))
    for offset in _offsets(final):
        assert not _pdfsig_ok(_pdfsig(_flip(final, offset), nss, tmp_path), 2), offset


def test_signatures_are_not_trusted_to_another_units_ca(grant):
    other = pki.trust_roots(settings.get().instance_dir, "SZDI", "深圳示范研究院")
    checks = signing.validate(_final(grant), other)
    assert checks and all(c.intact and not c.trusted for c in checks)
    assert any("不是由所给的单位证书签发的" in p for p in signing.problems(_final(grant), other, expected=2))


# ---- decision record and publicity notice: signed by the unit --------------------------------

@pytest.mark.parametrize("kind", ["decision_record", "publicity_notice"])
def test_decision_record_and_notice_are_signed_by_the_unit(grant, kind, tmp_path):
    (_, content), = grant["docs"][kind]
    checks = signing.validate(content, grant["roots"])
    assert [(c.field, c.signer, c.ok) for c in checks] == [("Sig_unit", "深圳示范大学", True)]
    nss = _nss(tmp_path, pki.certificate_pem(settings.get().instance_dir, *grant["unit"]))
    assert _pdfsig_ok(_pdfsig(content, nss, tmp_path), 1)
    assert signing.problems(_flip(content, len(content) // 3), grant["roots"])


# ---- RFC 3161 timestamps through GRANTS_TSA_URL ------------------------------------------------

def _ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, name: str, key, eku=None, ca=False):
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                                        critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return builder.sign(ca_key, hashes.SHA256())


@pytest.fixture
def tsa():
    """pyHanko's DummyTimeStamper behind a real HTTP endpoint on loopback (RSA key, EKU timeStamping)."""
    from asn1crypto import tsp
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore
    root_key, root = _ca("测试时间戳根证书")
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_cert = _leaf(root_key, root, "测试时间戳服务", tsa_key, eku=[ExtendedKeyUsageOID.TIME_STAMPING])
    der = serialization.Encoding.DER
    from asn1crypto import keys as asn1_keys
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(tsa_cert.public_bytes(der)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(tsa_key.private_bytes(der, serialization.PrivateFormat.PKCS8,
                                                                     serialization.NoEncryption())),
        certs_to_embed=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(root.public_bytes(der))]))
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            response = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            hits.append(self.headers.get("Content-Type"))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(response)))
            self.end_headers()
            self.wfile.write(response)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/tsa", "root": root, "hits": hits}
    server.shutdown()
    server.server_close()


def test_configured_tsa_url_timestamps_every_signature(grant, tsa):
    settings.configure(tsa_url=tsa["url"])
    (_, draft), = grant["docs"]["agreement_draft"]

    class UnitRow:
        code, name = grant["unit"]

    signed = signing.sign_as(draft, UnitRow, "Sig_representative", "李明", "团队指定代表（researcher1）", "签名")
    assert tsa["hits"] and set(tsa["hits"]) == {"application/timestamp-query"}
    checks = signing.validate(signed, [*grant["roots"], tsa["root"]])
    assert [(c.field, c.timestamped, c.ok) for c in checks] == [("Sig_representative", True, True)]
    # Without the TSA's root the timestamp cannot be checked, and validation says so.
    assert any("时间戳" in p for p in signing.problems(signed, grant["roots"]))


def test_without_tsa_url_there_is_no_timestamp(grant):
    settings.configure(tsa_url="")
    checks = signing.validate(_final(grant), grant["roots"])
    assert not any(c.timestamped for c in checks)


# ---- keys ----------------------------------------------------------------------------------------

def test_unit_ca_is_created_once_with_private_files(tmp_path):
    first = pki.ensure_unit_ca(tmp_path, "TEST", "测试大学")
    again = pki.ensure_unit_ca(tmp_path, "TEST", "测试大学")
    assert first == again
    folder = tmp_path / "keys" / "units" / "TEST"
    for name in ("ca.key.pem", "ca.cert.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert first.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(first.public_key(), ec.EllipticCurvePublicKey)
    person = pki.issue(tmp_path, "TEST", "测试大学", "李明", "团队指定代表", "researcher1")
    usage = person.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert person.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "李明"
    assert person.cert.issuer == first.subject and person.chain == (first,)
    with pytest.raises(ValidationFailed):
        pki.ensure_unit_ca(tmp_path, "../etc", "x")


def _pkcs12(tmp_path, as_ca: bool):
    root_key, root = _ca("某电子认证服务机构根证书")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf(root_key, root, "测试大学（单位签名）" if not as_ca else "测试大学签发CA", key, ca=as_ca)
    data = pkcs12.serialize_key_and_certificates(b"unit", key, cert, [root],
                                                 serialization.BestAvailableEncryption(b"secret"))
    return data, root


@pytest.mark.parametrize("as_ca", [False, True], ids=["end-entity", "issuing-ca"])
def test_imported_pkcs12_signs_instead_of_the_own_ca(tmp_path, as_ca):
    own = pki.ensure_unit_ca(tmp_path, "TEST", "测试大学")
    data, root = _pkcs12(tmp_path, as_ca)
    with pytest.raises(ValidationFailed):
        pki.import_pkcs12(tmp_path, "TEST", data, "wrong")
    pki.import_pkcs12(tmp_path, "TEST", data, "secret")
    assert stat.S_IMODE((tmp_path / "keys/units/TEST/imported.key.pem").stat().st_mode) == 0o600
    identity = pki.issue(tmp_path, "TEST", "测试大学", "周红", "单位授权签字人", "signer1")
    from workflows import documents

    from .test_documents import agreement
    pdf = documents.render_agreement(agreement("ownership", esign=True))
    signed = signing.sign_pdf(pdf, identity, "Sig_unit", "周红", "单位授权签字人", title="签名")
    assert signing.problems(signed, [root]) == []
    assert signing.problems(signed, [own])  # no longer the unit's own CA
    assert root in pki.trust_roots(tmp_path, "TEST")
    expected_cn = "周红" if as_ca else "测试大学（单位签名）"
    assert signing.validate(signed, [root])[0].signer == expected_cn


def test_cli_prints_the_unit_ca_and_imports_a_pkcs12(tmp_path, monkeypatch, sqlite_url):
    from webapp import create_app
    monkeypatch.setenv("GRANTS_INSTANCE", str(tmp_path / "instance"))  # keys of this test stay here
    app = create_app({"TESTING": True, "DATABASE_URL": sqlite_url})
    with app.app_context():
        from workflows import demo
        session = app.extensions["grants_sessions"]()
        demo.seed(session)
        session.commit()
        session.close()
    runner = app.test_cli_runner()
    out = runner.invoke(args=["keys", "unit-ca", "SZDU"])
    assert out.exit_code == 0 and out.output.startswith("-----BEGIN CERTIFICATE-----")
    assert x509.load_pem_x509_certificate(out.output.encode()).subject == \
        pki.ensure_unit_ca(settings.get().instance_dir, "SZDU", "深圳示范大学").subject
    assert runner.invoke(args=["keys", "unit-ca", "NOPE"]).exit_code != 0
    data, root = _pkcs12(tmp_path, False)
    (tmp_path / "unit.p12").write_bytes(data)
    bad = runner.invoke(args=["keys", "import-unit-cert", "SZDI", str(tmp_path / "unit.p12")], input="wrong\n")
    assert bad.exit_code != 0 and "密码错误" in bad.output
    good = runner.invoke(args=["keys", "import-unit-cert", "SZDI", str(tmp_path / "unit.p12")], input="secret\n")
    assert good.exit_code == 0, good.output
    assert "已导入单位 SZDI" in good.output
    assert root in pki.trust_roots(settings.get().instance_dir, "SZDI")


def test_new_terms_start_a_fresh_unsigned_draft_and_the_final_carries_only_the_new_signatures(sqlite_url):
    from .driver import PASSWORD, example
    sessions = _seeded_sessions(sqlite_url)
    drive = Driver(next(sessions))
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.complete(app_id, "agreement_terms", "tto1", example("ownership_terms"))
    drive.complete(app_id, "sign_representative", "researcher1", {"decision": "sign", "password": PASSWORD})
    drive.complete(app_id, "sign_unit", "signer1", {"decision": "request_changes", "comment": "转化期限改为48个月。"})
    drive.complete(app_id, "agreement_terms", "tto1", dict(example("ownership_terms"), conversion_period_months=48))
    drive.sign_both(app_id)
    with drive.sessions() as s:
        docs = {}
        for doc in s.execute(select(Document).where(Document.application_id == app_id).order_by(Document.id)).scalars():
            docs.setdefault(doc.kind, []).append(doc.content)
        roots = pki.trust_roots(settings.get().instance_dir, "SZDU")
    old_draft, new_draft = docs["agreement_draft"]
    final, = docs["agreement_final"]
    assert final.startswith(new_draft) and not final.startswith(old_draft)
    assert len(docs["agreement_signed"]) == 3  # the voided one and the two on the new draft
    assert [c.field for c in signing.validate(final, roots)] == ["Sig_representative", "Sig_unit"]
    assert signing.problems(final, roots, expected=2) == []
    next(sessions, None)


def test_signing_and_validating_work_inside_a_running_event_loop():
    """pyHanko's sync API calls asyncio.run; an async caller (or Playwright in a test) must not break it."""
    import asyncio
    from types import SimpleNamespace

    from weasyprint import HTML
    unit = SimpleNamespace(code="SZDU", name="深圳示范大学")
    pdf = HTML(string="<p>事件循环中的签署</p>").write_pdf()

    async def inside_a_loop():
        signed = signing.sign_as_unit(pdf, unit, title="测试签章")
        return signed, signing.validate(signed, pki.trust_roots(settings.get().instance_dir, unit.code, unit.name))
    signed, checks = asyncio.run(inside_a_loop())
    assert [c.ok for c in checks] == [True]
    assert pack_verify._validate_pdf("x.pdf", signed, pki.certificate_pem(
        settings.get().instance_dir, unit.code, unit.name).encode()) == []
