"""PAdES signatures inside the PDFs (pyHanko): each signing act appends an incremental update
with a visible stamp (name, role, Beijing time), so the PDF alone proves who signed what.

The stamp font is Noto Sans CJK SC, cut out of Debian's .ttc and pre-subset to GB2312 without
layout tables once (cached by hash under $GRANTS_FONT_CACHE or /tmp/grants-fonts, ~15 s the
first time); text outside that set falls back to the full font (slower, ~0.4 s a signature).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeAlias, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from workflows import clock, settings
from workflows.i18n import msg

from . import pki

if TYPE_CHECKING:  # pyHanko and fontTools load only when a PDF is signed or checked
    from fontTools.ttLib import TTFont
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
    from pyhanko.pdf_utils.writer import BasePdfFileWriter
    from pyhanko.pdf_utils.xref import ObjectStream
    from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    from workflows.models import Unit

P = ParamSpec("P")
R = TypeVar("R")
TrustRoot: TypeAlias = bytes | str | x509.Certificate | asn1_x509.Certificate  # PEM, or a parsed certificate

CJK_TTC = Path(os.environ.get("GRANTS_CJK_TTC", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"))
SC_FAMILY = "Noto Sans CJK SC"
_SUBSET_VERSION = "gb2312-ascii-nolayout-v2"
STAMP_TEXT = "%(title)s\n签署人：%(signer)s\n身份：%(role)s\n时间：%(time)s（北京时间）"


# ---- the stamp font -------------------------------------------------------------------------

def _cache_dir() -> Path:
    return Path(os.environ.get("GRANTS_FONT_CACHE") or Path(tempfile.gettempdir()) / "grants-fonts")


def _source_key() -> str:
    stat = CJK_TTC.stat()
    return hashlib.sha256(f"{CJK_TTC}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]


def _base_charset() -> set[int]:
    chars = set(range(0x20, 0x7F)) | {ord(c) for c in "（）：，。、；“”‘’《》【】—…·％　"}
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.update(ord(c) for c in bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def _sc_font() -> TTFont:
    from fontTools.ttLib import TTCollection
    collection = TTCollection(str(CJK_TTC))
    for font in collection.fonts:
        if font["name"].getDebugName(1) == SC_FAMILY:
            return font
    raise RuntimeError(f"{SC_FAMILY} not in {CJK_TTC}")


def _atomic_save(font: TTFont, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # per thread
    font.save(str(tmp))
    os.replace(tmp, path)


_fonts: dict[str, tuple[Path, frozenset[int]]] = {}


def stamp_font(text: str = "") -> Path:
    """The single-font .otf the stamp uses: the GB2312 subset if it covers `text`, else the full SC font."""
    if "subset" not in _fonts:
        path = _cache_dir() / f"NotoSansCJKsc-{_source_key()}-{_SUBSET_VERSION}.otf"
        charset = _base_charset()
        if not path.exists():
            from fontTools import subset
            font = _sc_font()
            options = subset.Options()
            options.name_IDs, options.notdef_outline, options.hinting = ["*"], True, False
            # No OpenType layout: CJK needs no shaping, and pyHanko re-subsets the font for every
            # signature; decompiling GSUB/GPOS was ~3/4 of the time a signature took.
            options.layout_features = []
            options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "VORG", "vhea", "vmtx"]
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=charset)
            subsetter.subset(font)
            _atomic_save(font, path)
        _fonts["subset"] = (path, frozenset(charset))
    path, covered = _fonts["subset"]
    if all(ord(c) in covered or c == "\n" for c in text):
        return path
    full = _cache_dir() / f"NotoSansCJKsc-{_source_key()}-full.otf"
    if not full.exists():
        _atomic_save(_sc_font(), full)
    return full


_font_bytes: dict[str, bytes] = {}


def _font_factory(path: Path, size: int) -> GlyphAccumulatorFactory:
    """pyHanko's GlyphAccumulatorFactory, fed from bytes read once (it would leave its file open)."""
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    class InMemoryFontFactory(GlyphAccumulatorFactory):
        def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: ObjectStream | None = None
                               ) -> GlyphAccumulator:
            if str(path) not in _font_bytes:
                _font_bytes[str(path)] = path.read_bytes()
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()  # type: ignore[no-untyped-call]  # unannotated in pyHanko
            return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(_font_bytes[str(path)]),
                                    font_size=self.font_size, obj_stream=obj_stream)

    return InMemoryFontFactory(str(path), font_size=size)


# ---- signing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitName:
    """The two facts about a unit a signature names, when no Unit row is at hand (annual reports)."""
    code: str
    name: str


@dataclass(frozen=True)
class SigBox:
    """Where a visible signature goes: page index and (x1, y1, x2, y2) in PDF points."""
    field: str
    page: int
    box: tuple[float, float, float, float]


def prepare_fields(pdf: bytes, boxes: list[SigBox]) -> bytes:
    """Empty signature fields at the reserved places, added before anyone signs."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    for box in boxes:
        # pyHanko's hint says int, but a PDF rectangle takes reals and it writes them as given
        spec = fields.SigFieldSpec(box.field, on_page=box.page, box=box.box)  # type: ignore[arg-type]
        fields.append_signature_field(writer, spec)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]  # pyHanko leaves write() unannotated
    return out.getvalue()


def _asn1(identity: pki.SigningIdentity
          ) -> tuple[asn1_x509.Certificate, asn1_keys.PrivateKeyInfo, list[asn1_x509.Certificate]]:
    der = serialization.Encoding.DER
    cert = asn1_x509.Certificate.load(identity.cert.public_bytes(der))
    key = asn1_keys.PrivateKeyInfo.load(identity.key.private_bytes(
        der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    chain = [asn1_x509.Certificate.load(c.public_bytes(der)) for c in identity.chain]
    return cert, key, chain


def default_timestamper() -> HTTPTimeStamper | None:
    """An RFC 3161 client when GRANTS_TSA_URL is configured, else None."""
    url = settings.get().tsa_url
    if not url:
        return None
    from pyhanko.sign.timestamps import HTTPTimeStamper
    return HTTPTimeStamper(url, timeout=10)


def beijing_time(when: datetime) -> str:
    return clock.as_utc(when).astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def outside_event_loop(fn: Callable[P, R]) -> Callable[P, R]:
    """pyHanko's synchronous API calls asyncio.run, which refuses to run in a thread whose event
    loop is already running (an async server, or a test driving Playwright): such a caller gets
    the work done in a short-lived thread of its own instead of an error."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(fn, *args, **kwargs).result()
    return wrapper



@outside_event_loop
def sign_pdf(pdf: bytes, identity: pki.SigningIdentity, field_name: str, signer_name: str, role: str,
             title: str = "电子签名", reason: str | None = None, when: datetime | None = None,
             timestamper: TimeStamper | None = None) -> bytes:
    """`pdf` plus one incremental update carrying a PAdES signature in `field_name`.

    A field missing from the PDF is created on the last page. `timestamper` overrides the
    configured TSA (tests pass pyHanko's DummyTimeStamper).
    """
    from pyhanko import stamp
    from pyhanko.pdf_utils import text
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    params = {"title": title, "signer": signer_name, "role": role, "time": beijing_time(when or clock.now())}
    font = stamp_font(STAMP_TEXT % params)
    style = stamp.TextStampStyle(stamp_text=STAMP_TEXT, border_width=1,
                                 text_box_style=text.TextBoxStyle(font=_font_factory(font, 9)))
    cert, key, chain = _asn1(identity)
    signer = signers.SimpleSigner(signing_cert=cert, signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs(chain))  # type: ignore[no-untyped-call]
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    existing = {name for name, _, _ in fields.enumerate_sig_fields(writer.prev, filled_status=None)}
    if field_name not in existing:
        last = int(writer.root["/Pages"]["/Count"]) - 1
        fields.append_signature_field(writer, fields.SigFieldSpec(field_name, on_page=last, box=(60, 60, 280, 130)))
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm="sha256", reason=reason or title,
                                        name=signer_name)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer, stamp_style=style,
                      timestamper=timestamper if timestamper is not None else default_timestamper()
                      ).sign_pdf(writer, output=out, appearance_text_params=params)
    return out.getvalue()


def sign_as(pdf: bytes, unit: Unit | UnitName, field_name: str, signer_name: str, role: str, title: str,
            username: str | None = None) -> bytes:
    """Sign with a certificate naming `signer_name`, issued by the unit's CA (created on first use)."""
    identity = pki.issue(settings.get().instance_dir, unit.code, unit.name, signer_name, role, username)
    return sign_pdf(pdf, identity, field_name, signer_name, role, title=title)


def sign_as_unit(pdf: bytes, unit: Unit | UnitName, title: str) -> bytes:
    """Decision records and notices: signed by the unit itself, in the field the template reserved."""
    return sign_as(pdf, unit, "Sig_unit", unit.name, "单位", title)


# ---- validation ----------------------------------------------------------------------------

@dataclass
class SignatureCheck:
    """One embedded signature as pyHanko judged it; `problems` says in Chinese what is wrong."""
    field: str
    signer: str = ""
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    bottom_line: bool = False
    coverage: str = ""
    modification: str = ""
    timestamped: bool = False
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bottom_line and not self.problems


def _roots(trust_roots: Iterable[TrustRoot]) -> list[asn1_x509.Certificate]:
    out: list[asn1_x509.Certificate] = []
    for root in trust_roots:
        if isinstance(root, bytes | str):
            pems = root.encode() if isinstance(root, str) else root
            out.extend(asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
                       for c in x509.load_pem_x509_certificates(pems))
        elif isinstance(root, x509.Certificate):
            out.append(asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER)))
        else:
            out.append(root)
    return out


def _check(embedded: EmbeddedPdfSignature, roots: list[asn1_x509.Certificate]) -> SignatureCheck:
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    check = SignatureCheck(field=embedded.field_name)
    try:
        status = validate_pdf_signature(embedded, ValidationContext(trust_roots=roots, allow_fetching=False),
                                        ts_validation_context=ValidationContext(trust_roots=roots,
                                                                                allow_fetching=False))
    except Exception as exc:  # pyHanko raises on structurally broken signatures
        check.problems.append(msg("签名“{field}”无法核验：{error}", field=embedded.field_name, error=str(exc)))
        return check
    check.signer = status.signing_cert.subject.native.get("common_name", "")
    check.intact, check.valid, check.trusted = status.intact, status.valid, status.trusted
    check.bottom_line = status.bottom_line
    check.coverage = status.coverage.name if status.coverage else ""
    check.modification = status.modification_level.name if status.modification_level else ""
    check.timestamped = status.timestamp_validity is not None
    if not status.intact:
        check.problems.append(msg("签名“{field}”所签的内容已被改动（摘要不符）", field=check.field))
    elif not status.valid:
        check.problems.append(msg("签名“{field}”的密码学校验失败", field=check.field))
    if status.intact and not status.trusted:
        check.problems.append(msg("签名“{field}”的证书不是由所给的单位证书签发的", field=check.field))
    if status.intact and status.valid and status.trusted and not status.bottom_line:
        check.problems.append(msg("签名“{field}”之后文件被做了不允许的修改", field=check.field))
    if status.timestamp_validity is not None and not status.timestamp_validity.trusted:
        check.problems.append(msg("签名“{field}”的时间戳无法核验", field=check.field))
    return check


@outside_event_loop
def validate(pdf: bytes, trust_roots: Iterable[TrustRoot]) -> list[SignatureCheck]:
    """Every embedded signature, checked against `trust_roots` (certificates or PEM) only, offline."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    roots = _roots(trust_roots)
    try:
        signatures = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    except (PdfReadError, ValueError, KeyError) as exc:
        return [SignatureCheck(field="", problems=[msg("PDF文件结构已损坏，无法读取签名：{error}", error=str(exc))])]
    return [_check(sig, roots) for sig in signatures]


def problems(pdf: bytes, trust_roots: Iterable[TrustRoot], expected: int = 1) -> list[str]:
    """Chinese reasons why the PDF's signatures do not hold up; [] when all `expected` are good."""
    checks = validate(pdf, trust_roots)
    found = [p for c in checks for p in c.problems]
    found += [msg("签名“{field}”未通过核验", field=c.field) for c in checks if not c.ok and not c.problems]
    if len(checks) < expected and not found:
        found.append(msg("文件中应有{expected}个签名，实际只有{count}个", expected=expected, count=len(checks)))
    return found
