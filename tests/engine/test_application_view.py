"""How the application page labels the documents a submitted form names (issue 11, finding 10)."""
from __future__ import annotations

from workflows.grants import application_view
from workflows.process import forms


def test_attachment_rows_carry_their_own_label_or_none():
    schema = forms.load_schema("ownership_draft.schema.json")
    payload = {"attachments": [{"document_id": 7, "label": "专利证书"}, {"document_id": 8, "label": ""},
                               {"document_id": 9}]}
    assert application_view._references(schema, payload) == [(7, "专利证书"), (8, ""), (9, "")]


def test_a_single_document_field_is_labelled_by_its_title():
    schema = forms.load_schema("ip_transfer.schema.json")
    assert application_view._references(schema, {"evidence_document_id": 3, "note": "x"}) == [(3, "证明文件")]
    contract = forms.load_schema("conversion_contract.schema.json")
    assert application_view._references(contract, {"contract_document_id": 4}) == [(4, "合同文本")]
    assert application_view._references(contract, {"contract_document_id": None}) == []


def test_revision_asked_for_else_the_latest():
    class Row:
        def __init__(self, revision):
            self.revision = revision
    rows = [Row(1), Row(2)]
    assert application_view.pick_revision(rows, "1") is rows[0]
    assert application_view.pick_revision(rows, None) is rows[1]
    assert application_view.pick_revision(rows, "x") is rows[1]
    assert application_view.pick_revision([], "1") is None
