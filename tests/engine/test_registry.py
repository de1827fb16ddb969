"""The registry (§三(三)4): the office registers, grants and conversions move an entry through every
state; each change leaves history and audit; readers see only what they may; refusals change nothing."""
from __future__ import annotations

import pytest

from tests.driver import Driver, example
from workflows.errors import Forbidden, NotFound, ValidationFailed, WrongState
from workflows.evidence import audit
from workflows.models import AuditEvent, RegistryEntry, RegistryHistory
from workflows.people import accounts
from workflows.people.access import SystemActor
from workflows.reporting import registry

NUMBER = example("ownership_draft")["achievement"]["ip_numbers"][0]


def disclosure(**changes):
    data = {"title": "一种低功耗图像识别芯片架构", "ip_type": "patent", "ip_numbers": [NUMBER],
            "inventors": ["researcher1", "researcher2"], "funding_source": "fiscal", "registered_on": "2026-03-02"}
    data.update(changes)
    return data


@pytest.fixture
def drive(sessions) -> Driver:
    d = Driver(sessions)
    d.run(lambda s: accounts.create_user(s, "city1", "市科技局审计", "city-pass-2026", "", [("city_auditor", None)], actor=SystemActor("tests")))
    return d


def register(drive: Driver, who: str = "tto1", unit: str = "SZDU", **changes) -> int:
    return drive.run(lambda s: registry.register(s, drive.user(s, who), unit, disclosure(**changes)).id)


def entry_of(drive: Driver, entry_id: int) -> RegistryEntry:
    with drive.sessions() as s:
        entry = s.get(RegistryEntry, entry_id)
        s.expunge(entry)
        return entry


def actions(drive: Driver, entry_id: int) -> list[str]:
    with drive.sessions() as s:
        return [h.action for h in s.query(RegistryHistory).filter_by(entry_id=entry_id).order_by(RegistryHistory.id)]


def test_registered_entry_is_granted_by_the_grant_then_converted_and_leaves(drive):
    entry_id = register(drive)
    drive.run(lambda s: registry.set_flag(s, drive.user(s, "tto1"), entry_id, "venue", "2026-03-05"))
    drive.run(lambda s: registry.set_flag(s, drive.user(s, "tto1"), entry_id, "fund", "2026-03-06"))
    drive.run(lambda s: registry.edit(s, drive.user(s, "tto1"), entry_id, {"title": "低功耗图像识别芯片架构"}))
    # The team applies for the same patent: the completed grant moves the office's entry.
    app_id = drive.to_publicity()
    drive.pass_publicity(app_id)
    drive.finish(app_id)
    entry = entry_of(drive, entry_id)
    assert (entry.status, entry.grant_kind, entry.application_id) == ("granted", "ownership", app_id)
    assert entry.venue_registered_on == "2026-03-05" and entry.fund_pushed_on == "2026-03-06"
    with drive.sessions() as s:
        assert s.query(RegistryEntry).count() == 1  # the grant found the entry, made no second one
    # A conversion (the later module) calls these.
    drive.run(lambda s: registry.start_conversion(s, s.get(RegistryEntry, entry_id), "tto1", app_id))
    assert entry_of(drive, entry_id).status == "converting"
    drive.run(lambda s: registry.record_conversion(s, s.get(RegistryEntry, entry_id), "tto1", "2026-06-01",
                                                   "licence", "HT-2026-001"))
    entry = entry_of(drive, entry_id)
    assert (entry.status, entry.left_mode, entry.left_contract, entry.left_year) == \
        ("converted", "licence", "HT-2026-001", 2026)
    drive.run(lambda s: registry.mark_left(s, drive.user(s, "tto1"), entry_id, "left", "2026-07-01", "transfer",
                                           "HT-2026-009"))
    assert entry_of(drive, entry_id).status == "left"
    assert actions(drive, entry_id) == ["register", "flag_venue", "flag_fund", "edit", "grant", "converting",
                                        "converted", "left"]
    with drive.sessions() as s:
        edit = s.query(RegistryHistory).filter_by(entry_id=entry_id, action="edit").one()
        assert edit.changes == {"title": ["一种低功耗图像识别芯片架构", "低功耗图像识别芯片架构"]}
        assert {e.action for e in s.query(AuditEvent)} >= {"registry_register", "registry_grant", "registry_left"}
        assert audit.verify(s) == []
    # Left is final.
    with pytest.raises(WrongState):
        drive.run(lambda s: registry.start_conversion(s, s.get(RegistryEntry, entry_id), "tto1"))


def test_a_grant_without_a_registered_entry_creates_one_with_its_team(drive):
    app_id = drive.to_publicity("use_right")
    drive.pass_publicity(app_id)
    drive.finish(app_id, "use_right")
    with drive.sessions() as s:
        entry = s.query(RegistryEntry).filter_by(application_id=app_id).one()
        assert (entry.status, entry.grant_kind) == ("granted", "use_right")
        assert [i.user.username for i in entry.inventors] == ["researcher1", "researcher2", "researcher3"]
        researcher = drive.user(s, "researcher3")
        assert registry.get_visible(s, researcher, entry.id).id == entry.id
        assert [a.id for a in registry.applications(s, researcher, entry)] == [app_id]


def test_manual_conversion_straight_from_registered(drive):
    entry_id = register(drive)
    drive.run(lambda s: registry.mark_left(s, drive.user(s, "tto1"), entry_id, "converted", "2026-04-01",
                                           "equity", "HT-7"))
    assert entry_of(drive, entry_id).status == "converted"


@pytest.mark.parametrize(("who", "unit"), [("tto2", "SZDU"), ("auditor1", "SZDU"), ("city1", "SZDU"),
                                      ("researcher1", "SZDU"), ("decider1", "SZDU")])
def test_only_the_units_office_registers(drive, who, unit):
    with pytest.raises(Forbidden):
        register(drive, who, unit)
    with drive.sessions() as s:
        assert s.query(RegistryEntry).count() == 0 and s.query(AuditEvent).filter(
            AuditEvent.action.like("registry_%")).count() == 0


def test_city_auditor_and_other_units_office_change_nothing(drive):
    entry_id = register(drive)
    before = registry.as_dict(entry_of(drive, entry_id))
    for who in ("city1", "tto2", "auditor1"):
        with pytest.raises(Forbidden):
            drive.run(lambda s, who=who: registry.edit(s, drive.user(s, who), entry_id, {"title": "改"}))
        with pytest.raises(Forbidden):
            drive.run(lambda s, who=who: registry.set_flag(s, drive.user(s, who), entry_id, "venue", "2026-03-05"))
        with pytest.raises(Forbidden):
            drive.run(lambda s, who=who: registry.mark_left(s, drive.user(s, who), entry_id, "left", "2026-03-05", "other", ""))
    with drive.sessions() as s:
        assert registry.as_dict(s.get(RegistryEntry, entry_id)) == before
    assert actions(drive, entry_id) == ["register"]


def test_bad_input_is_refused_with_every_reason_and_nothing_changes(drive):
    with pytest.raises(ValidationFailed) as refused:
        register(drive, title="", ip_type="x", ip_numbers=[], inventors=["nobody"], funding_source="",
                 registered_on="2999-01-01")
    assert {e["field"] for e in refused.value.errors} == {"title", "ip_type", "ip_numbers", "inventors",
                                                          "funding_source", "registered_on"}
    assert "nobody" in str(refused.value)
    entry_id = register(drive)
    with pytest.raises(ValidationFailed, match="已在成果库中"):
        register(drive, title="另一项")
    with pytest.raises(ValidationFailed) as refused:
        drive.run(lambda s: registry.mark_left(s, drive.user(s, "tto1"), entry_id, "converted", "昨天", "gift", ""))
    assert {e["field"] for e in refused.value.errors} == {"on", "mode", "contract"}
    with pytest.raises(ValidationFailed, match="不得早于登记日期2026-03-02"):
        drive.run(lambda s: registry.mark_left(s, drive.user(s, "tto1"), entry_id, "left", "2026-03-01", "other", ""))
    assert entry_of(drive, entry_id).status == "registered" and actions(drive, entry_id) == ["register"]


def test_who_sees_which_entries(drive):
    mine = register(drive, inventors=["researcher1"])
    others = register(drive, title="他人成果", ip_numbers=["ZL2026-9"], inventors=["researcher2"])
    foreign = register(drive, who="tto2", unit="SZDI", title="研究院成果", ip_numbers=["ZL2026-8"],
                       inventors=["researcher9"])
    with drive.sessions() as s:
        def seen(who):
            return {e.id for e in s.execute(registry.search(drive.user(s, who))).scalars()}
        assert seen("researcher1") == {mine}
        assert seen("researcher9") == {foreign}
        assert seen("auditor1") == seen("tto1") == {mine, others}
        assert seen("auditor2") == {foreign}
        assert seen("city1") == {mine, others, foreign}
        with pytest.raises(NotFound):
            registry.get_visible(s, drive.user(s, "auditor1"), foreign)
        with pytest.raises(NotFound):
            registry.get_visible(s, drive.user(s, "researcher1"), others)


def test_search_filters_sort_and_pages(drive):
    ids = [register(drive, title=f"成果{i}", ip_numbers=[f"ZL2026-{i}"], registered_on=f"2026-0{i}-01",
                    inventors=["researcher3" if i == 2 else "researcher1"]) for i in range(1, 6)]
    register(drive, title="软件", ip_type="software_copyright", ip_numbers=["2025SR1"], registered_on="2025-05-05")
    with drive.sessions() as s:
        tto = drive.user(s, "tto1")

        def found(**filters):
            return [e.id for e in s.execute(registry.search(tto, **filters)).scalars()]
        assert found(q="ZL2026-3") == [ids[2]]
        assert found(q="张伟") == [ids[1]]  # the inventor researcher3
        assert found(ip_type="software_copyright", year=2025) == [ids[-1] + 1]
        assert found(year=2026, sort="registered_on") == ids
        rows, total = registry.page(s, registry.search(tto, year=2026, sort="-registered_on"), 2, 2)
        assert total == 5 and [e.id for e in rows] == [ids[2], ids[1]]
