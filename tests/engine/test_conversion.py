"""Conversion after a grant (bpmn/conversion.bpmn): the plan, price publicity for a price fixed by
agreement (§三(五)1, the grant's publicity process reused), the contract and the registry — through
the database with the state reloaded between steps, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.driver import Driver, example
from workflows import clock, conversion, publicity, settings
from workflows.conversion import watch
from workflows.errors import Forbidden, NotFound, ValidationFailed
from workflows.models import Application, HumanTask, Objection, PublicityNotice, RegistryEntry


@pytest.fixture
def drive(sessions) -> Driver:
    return Driver(sessions)


def completed_grant(drive: Driver) -> Application:
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    assert drive.status(app_id) == "completed"
    return drive.app(app_id)


def contract(**changes) -> dict:
    data = example("conversion_contract")
    data.update(signed_on=clock.local_date(clock.now()).isoformat(), **changes)
    return data


def _notice(drive: Driver, app_id: int) -> PublicityNotice:
    with drive.sessions() as s:
        return s.execute(select(PublicityNotice).where(PublicityNotice.application_id == app_id)
                         .order_by(PublicityNotice.id.desc())).scalars().first()


def test_a_licence_priced_by_agreement_runs_price_publicity_then_the_contract(drive):
    grant = completed_grant(drive)
    conv_id = drive.start("conversion", "researcher1", original_number=grant.number)
    assert drive.steps(conv_id) == ["conversion_plan"]
    assert drive.app(conv_id).member_ids() == grant.member_ids()  # the team follows its conversion
    drive.complete(conv_id, "conversion_plan", "tto1", example("conversion_plan"))
    assert drive.status(conv_id) == "publicity"
    notice = _notice(drive, conv_id)
    assert notice.kind == "price" and (notice.ends_at - notice.starts_at).days >= 15
    objection = drive.run(lambda s: publicity.file_objection(s, notice.id, example("objection"), "c1"))
    drive.complete(conv_id, "handle_objection", "tto1", {"decision": "dismiss", "reasoning": "价格经评估合理。"})
    drive.pass_publicity(conv_id)
    assert drive.steps(conv_id) == ["conversion_contract"]
    drive.complete(conv_id, "conversion_contract", "tto1", contract())
    assert drive.status(conv_id) == "completed"
    with drive.sessions() as s:
        assert s.get(Objection, objection.id).status == "dismissed"
        assert s.get(PublicityNotice, notice.id).outcome == "passed"
        entry = s.execute(select(RegistryEntry).where(RegistryEntry.application_id == grant.id)).scalar_one()
        assert entry.status == "converted" and entry.left_mode == "licence"


def test_listing_or_auction_needs_no_price_publicity(drive):
    grant = completed_grant(drive)
    with drive.sessions() as s:  # completing the grant armed its conversion period watch
        w = watch.watch_of(s, s.get(Application, grant.id))
        assert w.status == "watching" and w.summary["watch"]["round"] == 1 and w.state.timer_due_at is not None
    conv_id = drive.start("conversion", "tto1", original_number=grant.number)
    plan = dict(example("conversion_plan"), pricing_method="auction", mode="transfer")
    del plan["licence_type"]
    drive.complete(conv_id, "conversion_plan", "tto1", plan)
    assert drive.steps(conv_id) == ["conversion_contract"]
    assert _notice(drive, conv_id) is None


def test_the_price_publicity_cannot_be_shorter_than_15_days(drive):
    grant = completed_grant(drive)
    conv_id = drive.start("conversion", "researcher1", original_number=grant.number)
    settings.configure(publicity_days=14)
    with pytest.raises(ValidationFailed, match="15"):
        drive.complete(conv_id, "conversion_plan", "tto1", example("conversion_plan"))
    assert drive.steps(conv_id) == ["conversion_plan"] and _notice(drive, conv_id) is None


def test_the_contract_must_carry_the_publicized_price(drive):
    grant = completed_grant(drive)
    conv_id = drive.start("conversion", "researcher1", original_number=grant.number)
    drive.complete(conv_id, "conversion_plan", "tto1", example("conversion_plan"))
    drive.pass_publicity(conv_id)
    cheaper = contract(amount="1000000.00", payment_schedule=[{"due_on": "2027-01-31", "amount": "1000000.00"}])
    with pytest.raises(ValidationFailed, match="公示的拟交易价格"):
        drive.complete(conv_id, "conversion_contract", "tto1", cheaper)
    with pytest.raises(ValidationFailed, match="付款安排合计"):
        drive.complete(conv_id, "conversion_contract", "tto1",
                       contract(payment_schedule=[{"due_on": "2027-01-31", "amount": "600000.00"}]))
    assert drive.steps(conv_id) == ["conversion_contract"]


PLAN_REFUSALS = [
    ({"counterparty": {"name": "某公司", "credit_code": "91440300MA5G2XY73A", "state_owned": False}}, "校验位"),
    ({"related_parties": [{"username": "researcher1", "related": False}]}, "关联关系声明"),
    ({"related_parties": [{"username": "researcher1", "related": True}, {"username": "researcher2", "related": False},
                          {"username": "researcher3", "related": False}]}, "说明关联关系"),
    ({"valuation": {"made": False}}, "§三(三)2"),
    ({"licence_type": None}, "许可方式须选择"),
    ({"mode": "transfer"}, "只有许可方式"),
    ({"price": "0"}, "大于0"),
    ({"price": 1200000.5}, "类型不正确"),  # a float is refused by the form, never rounded
    ({"price": "1200000.505"}, "格式不正确"),
    ({"price": "12,000"}, "格式不正确"),
    ({"price": "-5"}, "格式不正确"),
]


def test_plan_refusals_change_nothing(drive):
    """Each refusal leaves the conversion exactly as it was, so one conversion tries them all."""
    grant = completed_grant(drive)
    conv_id = drive.start("conversion", "researcher1", original_number=grant.number)
    for change, message in PLAN_REFUSALS:
        plan = {k: v for k, v in {**example("conversion_plan"), **change}.items() if v is not None}
        with pytest.raises(ValidationFailed) as refused:
            drive.complete(conv_id, "conversion_plan", "tto1", plan)
        assert message in str(refused.value), (change, str(refused.value))
        assert drive.steps(conv_id) == ["conversion_plan"] and drive.status(conv_id) == "draft"
    assert _notice(drive, conv_id) is None


def test_who_may_start_a_conversion(drive):
    grant = completed_grant(drive)
    with pytest.raises(Forbidden, match="指定代表或成果转化部门"):
        drive.start("conversion", "researcher2", original_number=grant.number)
    with pytest.raises(NotFound):
        drive.start("conversion", "tto2", unit="SZDI", original_number=grant.number)
    open_grant = drive.start()
    drive.draft_for_ip(open_grant, "ZL202610999999.1")
    with pytest.raises(ValidationFailed, match="已完成的赋权申请"):
        drive.start("conversion", "researcher1", original_number=drive.app(open_grant).number)
    with drive.sessions() as s:
        assert s.execute(select(HumanTask).where(HumanTask.bpmn_id == "conversion_plan")).first() is None


def test_several_conversions_per_achievement(drive):
    grant = completed_grant(drive)
    first = drive.start("conversion", "researcher1", original_number=grant.number)
    second = drive.start("conversion", "tto1", original_number=grant.number)
    assert first != second and drive.steps(second) == ["conversion_plan"]


@pytest.mark.parametrize(("code", "valid"), [("91350100M000100Y43", True), ("91440300MA5G2XY73M", True),
                                             ("91350100M000100Y44", False), ("9135010OM000100Y43", False),
                                             ("91350100M000100Y4", False)])
def test_unified_social_credit_code_check_character(code, valid):
    assert conversion.uscc_is_valid(code) is valid
