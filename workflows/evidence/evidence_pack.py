"""The evidence pack (尽职免责证据包): every round of an application, provable years later without us.

The ZIP holds every submitted form revision, consent, publicity round, objection, signature and the
IP transfer record; the application's audit events with every field of each leaf, an inclusion proof
for each against a checkpoint signed when the pack was made, the checkpoint public key, a manifest
of SHA-256 values, and `verify_pack.py` (a copy of workflows/evidence/pack_verify.py) to check it all offline.
Making a pack is itself recorded (the pack's last event), so a pack with events cut off is detected.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflows import settings
from workflows.catalogue import StepId
from workflows.documents import document_store
from workflows.models import Application, AuditEvent, FormSubmission, Objection, User
from workflows.people import access
from workflows.process import queries

from . import audit, keys, pki

FIXED_TIME = (2000, 1, 1, 0, 0, 0)  # fixed entry times: the same content gives the same bytes
MANIFEST = "manifest.json"
VERIFIER = Path(__file__).with_name("pack_verify.py")
README = """尽职免责证据包（职务科技成果赋权）

本压缩包包含：
  documents/                    系统生成及上传的全部文件（协议、公示、决策记录、附件等）
  application.json              申请概况
  forms/submissions.json        每个表单每一次提交的内容（提交人、时间、内容及其SHA-256摘要）
  consents.json                 每位团队成员的确认（含成员账户）
  publicity.json                每一轮公示、公示文件及异议处理结果
  signatures.json               签署记录
  ip_transfer.json              知识产权权属变更记录
  audit/events.json             本申请的全部审计记录：计算每条记录哈希所需的全部字段及其包含证明
  audit/checkpoint.json         生成本证据包时由系统签名的审计日志检查点（Ed25519）
  audit/checkpoint_public_key.pem  检查点公钥
  verify_pack.py                离线核验程序
  manifest.json                 以上每个文件的 SHA-256 值和大小

核验方法（无需本系统，也无需联网）：
  1. 安装 Python 3.11 及以上版本，执行：pip install cryptography 'pyhanko==0.38.0' 'pyhanko-certvalidator==0.33.0'
     （只有PDF带电子签名时才需要 pyhanko）
  2. 执行：python3 verify_pack.py 本证据包.zip --checkpoint-key 单独取得的检查点公钥.pem --unit-cert 单位CA证书.pem
     检查点公钥和单位CA证书最好从单位公开渠道（公示文件、单位网站）单独取得；不指定时使用包内的副本，
     此时只能证明证据包自身前后一致。
  3. 结果为“证据包完整”且退出码为0即核验通过；否则程序用中文列出每一处问题，退出码为1。

核验内容：每个文件的SHA-256；每条表单提交与审计记录中的摘要一致且无缺失；每条审计记录可由其字段重新计算，
并通过包含证明连到签名检查点（RFC 6962 Merkle 树）；检查点签名有效；带签名的PDF签名完整、有效并受单位CA信任。
也可以用 sha256sum <文件名> 逐个核对 manifest.json 中的值。审计时间均为北京时间（+08:00）。
"""


def evidence_pack(session: Session, app: Application, user: User) -> tuple[str, bytes]:
    """Record the export, sign the unit's log, and build the ZIP (the caller commits)."""
    access.check_may_download_evidence(user, app)
    audit.append_pending(session)  # events this transaction queued are counted too
    count = session.execute(select(func.count(AuditEvent.id)).where(AuditEvent.application_id == app.id)).scalar_one()
    audit.record(session, actor=user.username, action="evidence_pack", unit_id=app.unit_id, application_id=app.id,
                 detail={"events": count + 1, "number": app.number})
    checkpoint = audit.checkpoint(session, app.unit_id)
    if checkpoint is None:  # cannot happen: audit.record above created the unit's log
        raise RuntimeError(f"no audit log for unit {app.unit_id}")
    contents = {f"documents/{doc.id:04d}-{doc.filename}": document_store.read(doc) for doc in queries.documents(session, app)}
    submissions = _submissions(session, app)
    contents.update({
        "application.json": _json(_application(app)),
        "forms/submissions.json": _json(submissions),
        "consents.json": _json([s for s in submissions if s["step"] == StepId.CONSENT]),
        "ip_transfer.json": _json({"ip_numbers": app.ip_numbers,
                                   "submissions": [s for s in submissions if s["step"] == StepId.IP_TRANSFER]}),
        "publicity.json": _json(_publicity(session, app, user)),
        "signatures.json": _json(_signatures(session, app)),
        "audit/events.json": _json(_events(session, app, checkpoint)),
        "audit/checkpoint.json": _json(checkpoint),
        "audit/checkpoint_public_key.pem": keys.checkpoint_public_pem(),
        "verify_pack.py": VERIFIER.read_bytes(),
        "README.txt": README.encode("utf-8"),
    })
    # The unit's CA, so the pack validates its PDF signatures alone; a careful auditor passes a copy
    # obtained separately (GET /api/v1/units/{code}/certificate) with --unit-cert instead.
    contents["keys/unit_ca.pem"] = pki.certificate_pem(settings.get().instance_dir, app.unit.code,
                                                       app.unit.name).encode()
    return f"{app.number}-尽职免责证据包.zip", build_zip(contents, {"application_id": app.id, "number": app.number})


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode("utf-8")


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def build_zip(contents: dict[str, bytes], about: dict[str, Any]) -> bytes:
    """A deterministic ZIP, entries sorted, whose manifest (last) lists every file's SHA-256."""
    manifest = dict(about, files=[{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                                  for name, data in sorted(contents.items())])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(contents):
            archive.writestr(_entry(name), contents[name])
        archive.writestr(_entry(MANIFEST), _json(manifest))
    return buffer.getvalue()


def _application(app: Application) -> dict[str, Any]:
    return {"id": app.id, "number": app.number, "kind": app.kind, "status": app.status, "title": app.title,
            "unit": {"id": app.unit.id, "code": app.unit.code, "name": app.unit.name},
            "representative": {"username": app.representative.username, "name": app.representative.name},
            "created_at": audit.beijing(app.created_at), "bpmn_version_sha256": app.state.process_version.sha256}


def _submissions(session: Session, app: Application) -> list[dict[str, Any]]:
    rows = session.execute(select(FormSubmission, AuditEvent.app_seq).join(
        AuditEvent, AuditEvent.id == FormSubmission.audit_event_id).where(FormSubmission.application_id == app.id)
        .order_by(FormSubmission.id)).all()
    return [{"step": s.step, "form": s.form, "revision": s.revision, "task_id": s.task_id, "actor": s.actor,
             "account": {"username": s.user.username, "name": s.user.name},
             "submitted_at": audit.beijing(s.submitted_at), "payload": s.payload,
             "payload_digest": s.payload_digest, "audit_app_seq": app_seq} for s, app_seq in rows]


def _signatures(session: Session, app: Application) -> list[dict[str, Any]]:
    return [{"role": s.role, "signer": s.user.username, "name": s.user.name, "signed_at": audit.beijing(s.signed_at),
             "document_id": s.document_id, "document_sha256": s.sha256, "valid": s.valid,
             "invalidated_at": audit.beijing(s.invalidated_at) if s.invalidated_at else None}
            for s in queries.signatures(session, app)]


def _publicity(session: Session, app: Application, user: User) -> dict[str, Any]:
    """Every round with its notice; who objected only for those who may know (access decides)."""
    identities = access.may_see_objectors(user, app)
    objections = queries.objections(session, app)

    def objection(o: Objection) -> dict[str, Any]:
        row = {"receipt": o.receipt, "filed_at": audit.beijing(o.filed_at), "reason": o.reason, "status": o.status,
               "decision": o.decision, "reasoning": o.reasoning,
               "handled_at": audit.beijing(o.handled_at) if o.handled_at else None}
        if identities:
            row.update(name=o.name, contact=o.contact)
        return row
    return {"objector_identities_included": identities,
            "notices": [{"round": n.round, "starts_at": audit.beijing(n.starts_at), "ends_at": audit.beijing(n.ends_at),
                         "last_day": n.last_day, "closed_at": audit.beijing(n.closed_at) if n.closed_at else None,
                         "outcome": n.outcome, "document_id": n.document_id,
                         "objections": [objection(o) for o in objections if o.notice_id == n.id]}
                        for n in queries.notices(session, app)]}


def _events(session: Session, app: Application, checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    events, proofs, _root = audit.application_proofs(session, app, checkpoint)
    return [{"leaf": audit.leaf_fields(e), "leaf_hash": e.leaf_hash, "beijing_time": audit.beijing(e.at),
             "proof": proofs[e.seq]} for e in events]
