"""The BPMN library: parse bpmn/ once, validate against the XSD, hash each process version."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflows.catalogue import PROCESS_FOR_KIND
from workflows.models import ProcessVersion

from . import runtime

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
TOP_LEVEL = tuple(PROCESS_FOR_KIND.values())


@dataclass(frozen=True)
class ProcessSpec:
    process_id: str
    spec: Any
    subprocess_specs: dict[str, Any]
    files: dict[str, str]
    sha256: str


def _validator() -> Any:  # SpiffWorkflow is untyped: its lxml schema validator
    from SpiffWorkflow.spiff.parser import VALIDATOR
    return VALIDATOR


@lru_cache(maxsize=8)
def library(bpmn_dir: str = str(BPMN_DIR)) -> dict[str, ProcessSpec]:
    """Parse each top-level process with the callable processes it may use (ids stay local to a
    file); a version is the hash of the process's file and of its callees' files."""
    paths = sorted(Path(bpmn_dir).glob("*.bpmn"))
    texts = {p.name: p.read_text(encoding="utf-8") for p in paths}
    callable_files = [str(p) for p in paths if p.stem not in TOP_LEVEL]
    result: dict[str, ProcessSpec] = {}
    for process_id in TOP_LEVEL:
        path = Path(bpmn_dir) / f"{process_id}.bpmn"
        if not path.exists():
            continue
        parser = SpiffBpmnParser(validator=_validator())
        parser.add_bpmn_files([str(path), *callable_files])
        spec = parser.get_spec(process_id)
        subs = parser.get_subprocess_specs(process_id)
        names = {path.name} | {f"{name}.bpmn" for name in subs if f"{name}.bpmn" in texts}
        files = {name: texts[name] for name in sorted(names)}
        sha = hashlib.sha256("".join(f"{n}\0{t}\0" for n, t in files.items()).encode()).hexdigest()
        result[process_id] = ProcessSpec(process_id, spec, subs, files, sha)
    return result


def current(process_id: str) -> ProcessSpec:
    return library()[process_id]


def deployed_version(session: Session, spec: ProcessSpec) -> ProcessVersion:
    """The stored row for this exact version, created the first time it runs."""
    row = session.execute(select(ProcessVersion).where(ProcessVersion.sha256 == spec.sha256)).scalar_one_or_none()
    if row is None:
        row = ProcessVersion(process_id=spec.process_id, sha256=spec.sha256, files=spec.files)
        session.add(row)
    if row.spec_sha256 is None:
        row.spec, row.spec_sha256 = serialized_spec(spec)
        session.flush()
    return row


_SERIALIZED: dict[str, tuple[str, str]] = {}


def serialized_spec(spec: ProcessSpec) -> tuple[str, str]:
    """The spec JSON of a parsed version and its hash, serialized once per process and version."""
    if spec.sha256 not in _SERIALIZED:
        _SERIALIZED[spec.sha256] = runtime.dump_spec(spec.spec, spec.subprocess_specs)
    return _SERIALIZED[spec.sha256]
