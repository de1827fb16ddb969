"""Offline verifier of an evidence pack, and the audit log's hashing rules (RFC 6962 Merkle tree).

This file imports nothing of the project (only the standard library, `cryptography` for the
Ed25519 checkpoint signature and, for signed PDFs, pyHanko), so the same file goes into every
pack as `verify_pack.py` and an auditor runs it alone:  python3 verify_pack.py PACK.zip
"""
from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the checker only: at run time cryptography loads when a signature is checked
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT_FORMAT = "grants-checkpoint/1"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
LOGGED_DOCUMENTS_V = 2  # leaf version from which task completions and documents are logged
LEAF_FIELDS = ("v", "log_id", "seq", "app_seq", "at", "unit_id", "application_id", "actor", "action", "step",
               "detail", "data_digest")
MANIFEST = "manifest.json"


# -- hashing rules shared with workflows/evidence/audit.py ------------------------------------------------
def canonical(data: Any) -> str:
    """One byte string per value: sorted keys, no spaces, UTF-8 (what every hash covers)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def digest(data: Any) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def leaf_hash(fields: dict[str, Any]) -> str:
    """RFC 6962 leaf: SHA-256(0x00 || canonical JSON of the event's fields). No secret."""
    body = canonical({name: fields.get(name) for name in LEAF_FIELDS})
    return hashlib.sha256(b"\x00" + body.encode()).hexdigest()


def node_hash(left: str, right: str) -> str:
    return hashlib.sha256(b"\x01" + bytes.fromhex(left) + bytes.fromhex(right)).hexdigest()


def frontier_append(frontier: list[list[Any]], leaf: str) -> list[list[Any]]:
    """Add a leaf to the compact frontier [[height, hash], ...] (O(log n) perfect subtree roots)."""
    frontier.append([0, leaf])
    while len(frontier) > 1 and frontier[-1][0] == frontier[-2][0]:
        right = frontier.pop()
        left = frontier.pop()
        frontier.append([left[0] + 1, node_hash(left[1], right[1])])
    return frontier


def frontier_root(frontier: list[list[Any]]) -> str:
    """The RFC 6962 tree head of the leaves the frontier summarizes."""
    if not frontier:
        return EMPTY_ROOT
    root: str = frontier[-1][1]
    for _height, subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_proofs(leaves: Iterator[str], size: int, targets: list[int]) -> tuple[str, dict[int, list[str]]]:
    """Root of the first `size` leaves and the audit path of each target index, in one pass.

    The tree is walked left to right, so `leaves` may be a stream (memory O(log n) + proofs)."""
    targets = sorted(set(targets))
    proofs: dict[int, list[str]] = {t: [] for t in targets}

    def walk(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return next(leaves)
        k = _split(hi - lo)
        left, right = walk(lo, lo + k), walk(lo + k, hi)
        for t in targets[bisect.bisect_left(targets, lo):bisect.bisect_left(targets, hi)]:
            proofs[t].append(right if t < lo + k else left)
        return node_hash(left, right)

    return (walk(0, size) if size else EMPTY_ROOT), proofs


def verify_inclusion(index: int, size: int, leaf: str, proof: list[str], root: str) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` link leaf number `index` to the tree head `root`?"""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def checkpoint_body(checkpoint: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers (everything but the signature)."""
    return canonical({k: v for k, v in checkpoint.items() if k != "signature"}).encode()


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")  # checkpoints are signed with Ed25519 only
    return key


def checkpoint_signature_ok(checkpoint: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization as ser
    raw = public_key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("key_id") != key_id(raw):
        return False
    try:
        public_key.verify(base64.b64decode(checkpoint.get("signature", "")), checkpoint_body(checkpoint))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# -- the pack ------------------------------------------------------------------------------------
class Pack:
    def __init__(self, data: bytes):
        self.zip = zipfile.ZipFile(io.BytesIO(data))

    def read(self, name: str) -> bytes:
        return self.zip.read(name)

    def json(self, name: str) -> Any:
        return json.loads(self.zip.read(name))


def verify(data: bytes, unit_cert_pem: bytes | None = None, checkpoint_key_pem: bytes | None = None) -> list[str]:
    """Every problem found in the pack, in Chinese; an empty list means it is intact."""
    try:
        pack = Pack(data)
        manifest = pack.json(MANIFEST)
    except (zipfile.BadZipFile, KeyError, ValueError):
        return ["证据包无法打开或缺少清单 manifest.json"]
    problems = _check_manifest(pack, manifest)
    if problems:
        return problems
    try:
        events = pack.json("audit/events.json")
        checkpoint = pack.json("audit/checkpoint.json")
        submissions = pack.json("forms/submissions.json")
    except (KeyError, ValueError):
        return ["证据包缺少审计记录、检查点或表单提交记录"]
    problems += _check_checkpoint(pack, checkpoint, checkpoint_key_pem)
    if not problems:
        problems += _check_events(events, checkpoint, manifest.get("application_id"))
        problems += _check_submissions(submissions, events)
        problems += _check_documents(pack, manifest, events)
    problems += _check_pdfs(pack, manifest, unit_cert_pem, events)
    return problems


def _check_manifest(pack: Pack, manifest: dict[str, Any]) -> list[str]:
    listed = {entry["name"]: entry for entry in manifest.get("files", [])}
    present = set(pack.zip.namelist()) - {MANIFEST}
    problems = [f"清单中没有的文件：{name}" for name in sorted(present - listed.keys())]
    for name, entry in sorted(listed.items()):
        if name not in present:
            problems.append(f"缺少文件：{name}")
        elif hashlib.sha256(pack.read(name)).hexdigest() != entry["sha256"]:
            problems.append(f"文件内容与清单不符：{name}")
    return problems


def _check_checkpoint(pack: Pack, checkpoint: dict[str, Any], checkpoint_key_pem: bytes | None) -> list[str]:
    try:
        key = load_public_key(checkpoint_key_pem or pack.read("audit/checkpoint_public_key.pem"))
    except (KeyError, ValueError, TypeError):
        return ["无法读取检查点公钥"]
    if not checkpoint_signature_ok(checkpoint, key):
        return ["签名检查点的签名无效（检查点被改动，或不是由该公钥签署）"]
    return []


def _check_events(events: list[dict[str, Any]], checkpoint: dict[str, Any], application_id: Any) -> list[str]:
    """Each event recomputed and linked to the signed tree head; the application's events complete."""
    problems, size, root = [], checkpoint["size"], checkpoint["root"]
    for expected, event in enumerate(events, start=1):
        leaf = event.get("leaf", {})
        label = f"审计记录（日志{leaf.get('log_id')}第{leaf.get('seq')}条）"
        if leaf.get("application_id") != application_id or leaf.get("log_id") != checkpoint["log_id"]:
            problems.append(f"{label}不属于本申请或本日志")
        if leaf.get("app_seq") != expected:
            problems.append(f"本申请的第{expected}条审计记录缺失或顺序被改动")
        if not verify_inclusion(leaf.get("seq", -1), size, leaf_hash(leaf), event.get("proof", []), root):
            problems.append(f"{label}内容被修改，或不在签名检查点所覆盖的日志中")
    if not events or events[-1]["leaf"].get("action") != "evidence_pack":
        problems.append("审计记录不完整：缺少生成本证据包时写入的最后一条记录（末尾记录被删除）")
    elif events[-1]["leaf"].get("detail", {}).get("events") != len(events):
        problems.append("审计记录条数与生成证据包时记录的条数不符")
    return problems


def _check_submissions(submissions: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[str]:
    """Every form submission equals the digest its audit event recorded, and none is missing."""
    problems = []
    by_app_seq = {e["leaf"].get("app_seq"): e["leaf"] for e in events}
    expected = {e["leaf"]["app_seq"] for e in events
                if e["leaf"].get("action") == "complete_task" and e["leaf"].get("v", 1) >= LOGGED_DOCUMENTS_V}
    seen = set()
    for sub in submissions:
        event = by_app_seq.get(sub.get("audit_app_seq"))
        if event is None or event.get("action") != "complete_task":
            problems.append(f"表单提交记录（{sub.get('step')} 第{sub.get('revision')}次）没有对应的审计记录")
            continue
        seen.add(sub["audit_app_seq"])
        if digest(sub.get("payload")) != event.get("data_digest") or sub.get("payload_digest") != event["data_digest"]:
            problems.append(f"表单提交记录（{sub.get('step')} 第{sub.get('revision')}次）内容与审计记录的摘要不符")
        if sub.get("actor") != event.get("actor") or sub.get("step") != event.get("step"):
            problems.append(f"表单提交记录（{sub.get('step')} 第{sub.get('revision')}次）的提交人或环节与审计记录不符")
    for app_seq in sorted(expected - seen):
        problems.append(f"缺少表单提交记录：审计记录第{app_seq}条（{by_app_seq[app_seq].get('step')}）的提交内容不在证据包中")
    return problems


def _check_documents(pack: Pack, manifest: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """Each document equals the SHA-256 its audit event recorded when it was stored."""
    problems, recorded = [], {}
    for event in events:
        leaf = event["leaf"]
        if leaf.get("action") == "document":
            d = leaf.get("detail", {})
            recorded[f"documents/{d.get('document_id', 0):04d}-{d.get('filename')}"] = d.get("sha256")
    legacy = any(e["leaf"].get("v", 1) < LOGGED_DOCUMENTS_V for e in events)  # stored before documents were logged
    for name in sorted(e["name"] for e in manifest.get("files", []) if e["name"].startswith("documents/")):
        if name in recorded:
            if hashlib.sha256(pack.read(name)).hexdigest() != recorded.pop(name):
                problems.append(f"文件内容与审计记录中存档时的SHA-256不符：{name}")
        elif not legacy:
            problems.append(f"文件没有对应的存档审计记录：{name}")
    for name in sorted(recorded):
        problems.append(f"审计记录中存档的文件不在证据包中：{name}")
    return problems


UPLOADED_KINDS = ("attachment", "income_evidence")  # files people brought, signed by others if at all


def _check_pdfs(pack: Pack, manifest: dict[str, Any], unit_cert_pem: bytes | None, events: list[dict[str, Any]]) -> list[str]:
    """PDFs without signatures are only hash-checked; a signed PDF the unit made must validate and
    be trusted by the unit's CA. Whether a file was uploaded is read from its signed audit event."""
    problems = []
    uploaded = {f"documents/{d.get('document_id', 0):04d}-{d.get('filename')}"
                for d in (e["leaf"].get("detail", {}) for e in events if e["leaf"].get("action") == "document")
                if d.get("kind") in UPLOADED_KINDS}
    names = [e["name"] for e in manifest.get("files", []) if e["name"].lower().endswith(".pdf")]
    signed = [n for n in names if b"/ByteRange" in pack.read(n)]
    if not signed:
        return []
    cert_pem = unit_cert_pem
    if cert_pem is None and "keys/unit_ca.pem" in pack.zip.namelist():
        cert_pem = pack.read("keys/unit_ca.pem")
    if cert_pem is None:
        return ["证据包中的PDF带有电子签名，但没有单位CA证书：请用 --unit-cert 指定单位证书"]
    try:
        from pyhanko.keys import load_cert_from_pemder  # noqa: F401
    except ImportError:
        return ["校验PDF电子签名需要 pyHanko：pip install 'pyhanko==0.38.0' 'pyhanko-certvalidator==0.33.0'"]
    for name in signed:
        problems += _validate_pdf(name, pack.read(name), cert_pem, need_trust=name not in uploaded)
    return problems


def _validate_pdf(name: str, content: bytes, cert_pem: bytes, need_trust: bool = True) -> list[str]:
    """pyHanko's validation calls asyncio.run: inside a running event loop, run it in a thread."""
    import asyncio
    import concurrent.futures
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _validate_pdf_now(name, content, cert_pem, need_trust)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_validate_pdf_now, name, content, cert_pem, need_trust).result()


def _validate_pdf_now(name: str, content: bytes, cert_pem: bytes, need_trust: bool = True) -> list[str]:
    """The unit's own documents must be signed under its CA; a signed upload (someone else's
    signature) must still be intact and cryptographically valid."""
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    der = pem.unarmor(cert_pem)[2] if pem.detect(cert_pem) else cert_pem
    roots = [x509.Certificate.load(der)]
    try:
        signatures = PdfFileReader(io.BytesIO(content), strict=False).embedded_signatures
    except Exception:
        return [f"{name}：PDF 无法解析"]
    if not signatures:
        return [f"{name}：PDF 含签名结构但无法读出签名"]
    problems = []
    for sig in signatures:
        try:
            status = validate_pdf_signature(sig, ValidationContext(trust_roots=roots, allow_fetching=False))
            ok = status.intact and status.valid and (not need_trust or (status.trusted and status.bottom_line))
        except Exception:
            ok = False
        if not ok:
            problems.append(f"{name}：签名 {sig.field_name} 无效（文件被改动，或证书不受该单位CA信任）")
    return problems


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="离线核验尽职免责证据包 / verify an evidence pack offline")
    parser.add_argument("pack")
    parser.add_argument("--unit-cert", help="单独取得的单位CA证书（PEM）")
    parser.add_argument("--checkpoint-key", help="单独取得的检查点公钥（PEM）")
    args = parser.parse_args(list(argv) if argv is not None else None)
    def read(path: str | None) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()
    try:
        problems = verify(read(args.pack) or b"", read(args.unit_cert), read(args.checkpoint_key))
    except OSError as exc:
        problems = [f"无法读取文件：{exc}"]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("核验未通过", file=sys.stderr)
        return 1
    print("证据包完整：文件哈希、表单提交、审计记录与签名检查点、PDF签名均核验通过")
    return 0


if __name__ == "__main__":
    sys.exit(main())
