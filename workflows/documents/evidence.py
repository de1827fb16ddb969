"""The evidence pack as a deterministic ZIP whose manifest lists every file's SHA-256, so an
auditor can prove years later that nothing in it changed (sha256sum is all it takes)."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from typing import Any

FIXED_TIME = (2000, 1, 1, 0, 0, 0)  # fixed entry times: the same content gives the same bytes
MANIFEST = "manifest.json"
README = """尽职免责证据包（职务科技成果赋权）

本压缩包包含：
  documents/        系统生成及上传的全部文件（协议、公示、决策记录、附件等）
  form_data.json    各环节提交的表单数据及签署记录
  audit_trail.csv   本申请的审计记录（含哈希链值）
  publicity.json    公示记录：起止时间、异议及其处理结果
  manifest.json     以上每个文件的 SHA-256 值和大小

核验方法：解压后在命令行执行 sha256sum <文件名>，结果应与 manifest.json 中的值一致；
协议签署页所列的 SHA-256 应与 documents/ 中待签署协议文件的 SHA-256 一致。
"""


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _audit_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    columns = list(rows[0].keys()) if rows else ["id", "at", "actor", "action", "step"]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel opens Chinese correctly


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode("utf-8")


def build_evidence_pack(files: list[tuple[str, bytes]], form_data: dict, audit_rows: list[dict],
                        publicity: dict) -> bytes:
    contents = {f"documents/{name}": content for name, content in files}
    contents.update({"form_data.json": _json(form_data), "audit_trail.csv": _audit_csv(audit_rows),
                     "publicity.json": _json(publicity), "README.txt": README.encode("utf-8")})
    manifest = {"files": [{"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                          for name, data in sorted(contents.items())]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(contents):
            archive.writestr(_entry(name), contents[name])
        archive.writestr(_entry(MANIFEST), _json(manifest))
    return buffer.getvalue()


def verify_evidence_pack(pack: bytes) -> list[str]:
    """Every file that is missing, extra or changed against the manifest (empty = intact)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(pack))
        manifest = json.loads(archive.read(MANIFEST))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return ["证据包无法打开或缺少清单 manifest.json"]
    problems = []
    listed = {entry["name"]: entry for entry in manifest.get("files", [])}
    present = set(archive.namelist()) - {MANIFEST}
    for name in sorted(present - listed.keys()):
        problems.append(f"清单中没有的文件：{name}")
    for name, entry in sorted(listed.items()):
        if name not in present:
            problems.append(f"缺少文件：{name}")
        elif hashlib.sha256(archive.read(name)).hexdigest() != entry["sha256"]:
            problems.append(f"文件内容与清单不符：{name}")
    return problems
