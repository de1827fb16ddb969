"""The documents carry the agreed terms in a CJK font, number their pages, refuse empty
clauses, and are stored and served byte for byte; the evidence pack proves itself."""
from __future__ import annotations

import copy
import io
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import text

from workflows import documents
from workflows.documents import clauses, document_store
from workflows.documents.fetcher import TEMPLATES_DIR, RefusedURL, RestrictedURLFetcher
from workflows.errors import TamperedDocument
from workflows.process import forms

ARTIFACTS = Path(__file__).parent / "artifacts" / "documents"
NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
NUMBER = "SZDU-2026-0001"
SHA = "a" * 64


def example(name: str) -> dict:
    return copy.deepcopy(forms.load_schema(f"{name}.schema.json")["examples"][0])


def base() -> dict:
    return {"number": NUMBER, "unit": {"name": "深圳示范大学", "code": "SZDU"},
            "representative": {"username": "researcher1", "name": "李明"}, "generated_at": NOW}


def agreement(kind: str, **extra) -> dict:
    return {**base(), "kind": kind, "draft": example(f"{kind}_draft"), "terms": example(f"{kind}_terms"),
            "final": False, **extra}


def signatures(sha: str = SHA) -> list[dict]:
    return [{"role": "representative", "name": "李明", "username": "researcher1", "signed_at": NOW, "sha256": sha},
            {"role": "unit", "name": "周红", "username": "signer1", "signed_at": NOW, "sha256": sha}]


CASES = {
    "ownership_agreement": lambda: documents.render_agreement(agreement("ownership")),
    "use_right_agreement": lambda: documents.render_agreement(agreement("use_right")),
    "final_agreement": lambda: documents.render_agreement(
        agreement("ownership", final=True, signatures=signatures(), draft_sha256=SHA)),
    "supplementary_agreement": lambda: documents.render_supplementary_agreement(
        {**base(), "kind": "extension", "original_number": "SZDU-2026-0007", "request": example("extension_request"),
         "terms": example("supplementary_terms"), "final": False}),
    "publicity_notice": lambda: documents.render_publicity_notice(
        {**base(), "kind": "ownership", "draft": dict(example("ownership_draft"), pricing_method="agreement",
                                                      proposed_price=1200000),
         "starts_at": NOW, "ends_at": datetime(2026, 12, 7, 16, 0, tzinfo=UTC), "contact": "科研院成果转化办公室 0755-00000001",
         "board_url": "http://127.0.0.1:5000/publicity/1"}),
    "decision_record": lambda: documents.render_decision_record(
        {**base(), "kind": "ownership", "draft": example("ownership_draft"), "review": example("review"),
         "decision": example("unit_decision"), "recorded_by": {"username": "decider1", "name": "黄建国"},
         "recorded_at": NOW}),
}
EXPECTED_TEXT = {
    "ownership_agreement": ["职务科技成果赋权协议", "一种低功耗图像识别芯片架构", "ZL202310123456.7", "按份共有", "80%",
                            "转化决策机制", "36 个月", "专利年费自赋权之日起由团队承担", "深圳国际仲裁院", "王芳", "30%"],
    "use_right_agreement": ["长期使用权许可协议", "独占许可", "10 年", "2036年12月31日", "许可费按转化收入的5%逐年支付",
                            "对外许可实施"],
    "final_agreement": ["电子签署页", SHA, "周红", "signer1"],
    "supplementary_agreement": ["延期补充协议", "SZDU-2026-0007", "5 年", "2041年12月31日", "已实现量产"],
    "publicity_notice": ["公示", "2026年11月22日", "2026年12月7日", "共15日", "王芳", "副院长，负责实验验证",
                         "1,200,000", "0755-00000001"],
    "decision_record": ["集体决策记录", "校（院）长办公会", "赞成 6 票", "同意赋权", "黄建国"],
}


def pdf_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def to_png(name: str, pdf: bytes) -> None:
    """Rendered for a person to look at (tests/artifacts/documents)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(path), str(ARTIFACTS / name)], check=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_document_carries_its_terms_numbering_and_a_cjk_font(name):
    pdf = CASES[name]()
    pages = pdf_text(pdf)
    flat = "".join("".join(pages).split())  # extraction spacing varies; compare without spaces
    for expected in EXPECTED_TEXT[name]:
        assert "".join(expected.split()) in flat, expected
    for index, page in enumerate(pages, 1):
        assert NUMBER in page, f"page {index} lacks the application number"
        assert f"第 {index} 页 共 {len(pages)} 页" in page
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "CJK" in fonts, fonts
    to_png(name, pdf)


def test_agreement_of_three_pages_and_final_is_pdf_a():
    pdf = CASES["final_agreement"]()
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert b"pdfaid:part" in xmp and "/OutputIntents" in root  # PDF/A identification and colour profile


def _sig_fields(pdf: bytes) -> dict[str, tuple[int, list[float]]]:
    """Signature field name -> (page index, rectangle) of every widget in the PDF."""
    reader = PdfReader(io.BytesIO(pdf))
    found = {}
    for index, page in enumerate(reader.pages):
        for ref in page.get("/Annots") or []:
            annot = ref.get_object()
            if annot.get("/FT") == "/Sig":
                found[annot["/T"]] = (index, [float(v) for v in annot["/Rect"]])
    return found


@pytest.mark.parametrize("kind", ["ownership", "use_right"])
def test_agreement_to_sign_is_pdf_a_with_an_empty_field_for_each_party(kind):
    pdf = documents.render_agreement(agreement(kind, esign=True))
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert re.search(rb'pdfaid:part(="|>)3', xmp) and "/OutputIntents" in root
    producer = re.search(rb'<pdf:Producer>([^<]*)</pdf:Producer>|pdf:Producer="([^"]*)"', xmp)
    assert reader.metadata.producer == (producer.group(1) or producer.group(2)).decode()  # Info = XMP (PDF/A)
    fields = _sig_fields(pdf)
    assert set(fields) == {"Sig_unit", "Sig_representative"}
    last = len(reader.pages) - 1
    width, height = (float(v) for v in reader.pages[last].mediabox[2:])
    (unit_page, unit_box), (rep_page, rep_box) = fields["Sig_unit"], fields["Sig_representative"]
    assert unit_page == rep_page == last  # on the page of the signature block, side by side
    for x1, y1, x2, y2 in (unit_box, rep_box):
        assert 0 < x1 < x2 < width and 0 < y1 < y2 < height and 150 < x2 - x1 < 250 and 50 < y2 - y1 < 90
    assert unit_box[2] <= rep_box[0] and abs(unit_box[1] - rep_box[1]) < 1
    text = "".join("".join(pdf_text(pdf)).split())
    assert "签署本" in text and "电子签名（PAdES）" in text and "待签署稿" not in text


@pytest.mark.parametrize("name", ["decision_record", "publicity_notice"])
def test_decision_record_and_notice_reserve_the_units_signature(name):
    pdf = CASES[name]()
    fields = _sig_fields(pdf)
    assert list(fields) == ["Sig_unit"]
    assert "电子签章" in "".join(pdf_text(pdf)[fields["Sig_unit"][0]].split())


OWNERSHIP_CLAUSES = ["income_distribution", "conversion_decision_mechanism", "conversion_period_months",
                     "cost_sharing", "ip_maintenance_fees", "rights_and_duties", "dispute_resolution"]
USE_RIGHT_CLAUSES = ["conversion_obligations", "licence_mode", "licence_term_years", "licence_start_date",
                     "licence_fee_payment", "income_distribution", "dispute_resolution"]


@pytest.mark.parametrize(("kind", "clause"), [("ownership", c) for c in OWNERSHIP_CLAUSES]
                         + [("use_right", c) for c in USE_RIGHT_CLAUSES])
def test_an_empty_clause_is_never_printed(kind, clause):
    ctx = agreement(kind)
    ctx["terms"][clause] = "   " if isinstance(ctx["terms"][clause], str) else None
    with pytest.raises(documents.MissingClause):
        documents.render_agreement(ctx)


def test_final_agreement_needs_both_signatures_on_the_same_draft():
    with pytest.raises(documents.MissingClause):
        documents.render_agreement(agreement("ownership", final=True, signatures=signatures()[:1], draft_sha256=SHA))
    with pytest.raises(documents.InvalidClause):
        documents.render_agreement(agreement("ownership", final=True, signatures=signatures("b" * 64),
                                             draft_sha256=SHA))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.org/x.png", "https://127.0.0.1/x.css",
                                 "ftp://example.org/x"])
def test_url_fetcher_refuses_outside_resources(url):
    with pytest.raises(RefusedURL):
        RestrictedURLFetcher().fetch(url)


def test_stored_document_bytes_are_served_unchanged_and_tampering_is_detected(sessions):
    pdf = CASES["decision_record"]()
    with sessions() as s:
        doc = document_store.store(s, None, "decision_record", "记录.pdf", pdf)
        s.commit()
        doc_id, sha = doc.id, doc.sha256
    with sessions() as s:
        from workflows.models import Document
        stored = s.get(Document, doc_id)
        assert document_store.read(stored) == pdf
        import hashlib
        assert hashlib.sha256(document_store.read(stored)).hexdigest() == sha
        s.execute(text("UPDATE documents SET content = :c WHERE id = :i"), {"c": pdf + b"x", "i": doc_id})
        s.commit()
    with sessions() as s, pytest.raises(TamperedDocument):
        document_store.read(s.get(Document, doc_id))


def test_publicity_window_counts_full_calendar_days():
    from workflows import clock
    start, end, last_day = clock.publicity_window(datetime(2026, 11, 22, 6, 30, tzinfo=UTC), 15)
    assert last_day.isoformat() == "2026-12-07"
    assert end == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # midnight after 7 Dec in Shanghai
    assert end - start > timedelta(days=15)


# --- every required clause, policy limits, codes, escaping, fetcher and pack details ---------------



def flat_text(pdf: bytes) -> str:
    return "".join("".join(pdf_text(pdf)).split())


def publicity_ctx(**draft_changes) -> dict:
    return {**base(), "kind": "ownership", "draft": dict(example("ownership_draft"), **draft_changes),
            "starts_at": NOW, "ends_at": datetime(2026, 12, 7, 16, 0, tzinfo=UTC), "contact": "0755-00000001",
            "board_url": "http://127.0.0.1:5000/publicity/1"}


def decision_ctx() -> dict:
    return {**base(), "kind": "ownership", "draft": example("ownership_draft"), "review": example("review"),
            "decision": example("unit_decision"), "recorded_by": {"username": "decider1", "name": "黄建国"},
            "recorded_at": NOW}


def supplementary_ctx() -> dict:
    return {**base(), "kind": "extension", "original_number": "SZDU-2026-0007",
            "request": example("extension_request"), "terms": example("supplementary_terms"), "final": False}


BUILDERS = {"ownership": lambda: agreement("ownership"), "use_right": lambda: agreement("use_right"),
            "supplementary": supplementary_ctx, "publicity": publicity_ctx, "decision": decision_ctx}
RENDER = {"ownership": documents.render_agreement, "use_right": documents.render_agreement,
          "supplementary": documents.render_supplementary_agreement,
          "publicity": documents.render_publicity_notice, "decision": documents.render_decision_record}


def blank(ctx: dict, path: tuple) -> None:
    holder = ctx
    for key in path[:-1]:
        holder = holder[key]
    value = holder[path[-1]]
    holder[path[-1]] = [] if isinstance(value, list) else "  " if isinstance(value, str) else None


@pytest.mark.parametrize(("doc", "clause", "path"), [(doc, clause, path) for doc, required in clauses.REQUIRED.items()
                                               for clause, path in required],
                         ids=lambda v: "/".join(v) if isinstance(v, tuple) else v)
def test_each_required_clause_missing_raises_with_its_name(doc, clause, path):
    ctx = BUILDERS[doc]()
    blank(ctx, path)
    with pytest.raises(documents.MissingClause) as caught:
        RENDER[doc](ctx)
    assert caught.value.clause == clause


@pytest.mark.parametrize(("change", "clause"), [
    (lambda c: c["draft"]["achievement"].update(ip_numbers=[]), "知识产权编号"),
    (lambda c: c["draft"].pop("team_share"), "团队持有份额"),
])
def test_conditional_clauses_are_required(change, clause):
    ctx = agreement("ownership")
    change(ctx)
    with pytest.raises(documents.MissingClause) as caught:
        documents.render_agreement(ctx)
    assert caught.value.clause == clause


@pytest.mark.parametrize(("kind", "change", "clause"), [
    ("ownership", lambda c: c["draft"].update(team_share=60), "团队持有份额"),  # §三(一)1: ≥ 70%
    ("ownership", lambda c: c["terms"].update(inventor_income_percent=60), "收益分配"),  # §三(六)1: ≥ 70%
    ("ownership", lambda c: c["terms"].update(tto_income_percent=2), "收益分配"),  # §三(六)1: ≥ 3%
    ("ownership", lambda c: c["draft"]["members"][0].update(share=40), "团队成员及内部分配"),  # sums to 90%
    ("use_right", lambda c: c["terms"].update(licence_term_years=5), "许可期限"),  # §三(二)1: ≥ 10 years
])
def test_policy_breaking_clauses_are_refused(kind, change, clause):
    ctx = agreement(kind)
    change(ctx)
    with pytest.raises(documents.InvalidClause) as caught:
        documents.render_agreement(ctx)
    assert caught.value.clause == clause


def test_publicity_needs_the_price_when_priced_by_agreement():
    with pytest.raises(documents.MissingClause) as caught:
        documents.render_publicity_notice(publicity_ctx(pricing_method="agreement"))
    assert caught.value.clause == "拟交易价格"
    text = flat_text(documents.render_publicity_notice(publicity_ctx()))
    assert "拟交易价格" not in text and "协议定价" not in text


def test_enum_codes_are_shown_as_their_chinese_names():
    own = flat_text(documents.render_agreement(agreement("ownership")))
    use = flat_text(documents.render_agreement(agreement("use_right")))
    for chinese in ["专利权", "利用财政性资金形成", "按份共有", "现金", "不适用", "转化前赋权"]:
        assert chinese in own, chinese
    for chinese in ["独占许可", "与其他单位共同实施"]:
        assert chinese in use, chinese
    for code in ["patent", "fiscal", "shares", "cash", "none", "rights_grant", "exclusive", "with_partner"]:
        assert code not in own and code not in use, code


def test_achievement_without_ip_number_and_escaped_user_text():
    ctx = agreement("ownership")
    ctx["draft"]["achievement"].update(ip_type="joint_application_right", ip_numbers=[],
                                       title='<b>芯片</b> & <img src="file:///etc/passwd">')
    pdf = documents.render_agreement(ctx)
    text = flat_text(pdf)
    assert "尚未申请知识产权" in text and '<b>芯片</b>&<imgsrc="file:///etc/passwd">' in text
    to_png("escaped_title_agreement", pdf)


def test_url_fetcher_serves_only_the_templates_and_data_urls():
    fetcher = RestrictedURLFetcher()
    assert fetcher.fetch((TEMPLATES_DIR / "documents.css").as_uri()).read().startswith(b"/*")
    assert fetcher.fetch("data:text/plain;base64,5Lit").read() == "中".encode()
    for url in [TEMPLATES_DIR.as_uri() + "/../render.py", TEMPLATES_DIR.as_uri() + "/missing.css",
                "file://example.org/etc/passwd"]:
        with pytest.raises(RefusedURL):
            fetcher.fetch(url)


def test_publicity_and_decision_render_from_their_minimal_ctx():
    """The contract's ctx for these two has no representative; the use-right notice shows term and mode."""
    ctx = publicity_ctx()
    ctx.pop("representative")
    ctx.update(kind="use_right", draft=example("use_right_draft"))
    pdf = documents.render_publicity_notice(ctx)
    text = flat_text(pdf)
    assert "10年" in text and "独占许可" in text and "2026年12月7日" in text and "王芳" in text
    to_png("publicity_notice_use_right", pdf)
    ctx = decision_ctx()
    ctx.pop("representative")
    assert "同意赋权" in flat_text(documents.render_decision_record(ctx))


# Signatures that once printed broken: base64's "/" is a line-break opportunity, so the line
# wrapped there and a reader copying the value (pypdf too) got a space inside the signature.
SLASHED_SIGNATURES = [
    "mJ1b3/GPFHEKEMLfcsG4ms/LV3wjP5g+0eXvt2oE+p3vLZ2F604ipHYvnF+2JKjoDIS+u3kxAm94FJBPX63ahA==",
    "7DjLr/NC2gw85ae72+zYVDVfBa/G319bnI29Ytbazkff73NXHygBVqKTVnHiExn6KxIEKqFaSWA1IlWKoHjOPQ==",
    "ObyrUE3i1kJZYnxzZHkyBwzWs6iGTetFkyaLC/hkLC2FezDEq1lYvkVupkVzM+018qhN3UmJ2b4a7ddj/L9BTQ==",
]


@pytest.mark.parametrize("signature", SLASHED_SIGNATURES)
def test_a_printed_checkpoint_reads_back_exactly_in_groups_of_eight(signature):
    """The checkpoint on a notice is copied by hand years later: every value prints in groups of
    eight characters, lines break only between groups, and removing the spaces gives the value."""
    checkpoint = {"log_id": "unit-1", "size": 42, "time": "2026-12-01T08:00:00Z",
                  "root": "d31ad36c4616f8bcb8f88044736991a6f7656c91c396bc9f39d625933ac26627",
                  "key_id": "5f1c0a7e9b2d4c63", "signature": signature}
    pdf = documents.render_publicity_notice({**publicity_ctx(), "checkpoint": checkpoint})
    lines = [line for page in pdf_text(pdf) for line in page.splitlines()]
    printed = " ".join(lines)
    groups = [signature[i:i + 8] for i in range(0, len(signature), 8)]
    assert " ".join(groups) in re.sub(r"\s+", " ", printed), printed
    for value in (checkpoint["root"], signature):
        assert value in flat_text(pdf)
