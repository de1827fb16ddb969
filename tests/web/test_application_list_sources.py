"""The applications list reads each source of what a person may see (each unit they are staff
of, the applications they represent, their teams') from its own index and merges the heads
(`queries.application_page`). Pages must keep one order across the sources, show an
application that two sources share once, lose and repeat nothing, leave out what the person
may not see, and count each application once — compared here with the plain OR query."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from workflows import clock
from workflows.models import Application, ApplicationMember, RoleGrant, Unit, User
from workflows.people import access
from workflows.process import queries

from .conftest import login
from .test_lists import _token, counted


def _setup(driver) -> None:
    """researcher1: representative of four SZDU applications, on the team of one of
    researcher2's, and tech-transfer staff of SZDI, which has three (one with researcher1 on its
    team too: two sources). Some applications share a timestamp (the id breaks the tie)."""
    def grant(s):
        r1, r2 = driver.user(s, "researcher1"), driver.user(s, "researcher2")
        szdi = s.execute(select(Unit).where(Unit.code == "SZDI")).scalar_one()
        s.add_all([RoleGrant(user_id=r1.id, unit_id=szdi.id, role="tto"),
                   RoleGrant(user_id=r2.id, unit_id=szdi.id, role="researcher")])
    driver.run(grant)
    base = clock.now() - timedelta(days=3)
    started = []
    for i, (who, unit) in enumerate([("researcher1", "SZDU")] * 4 + [("researcher2", "SZDU")] * 2
                                    + [("researcher2", "SZDI")] * 3):
        with freeze_time(base + timedelta(minutes=i // 2)):
            started.append(driver.start(who=who, unit=unit))
    team_of_r2, szdi_shared = started[4], started[6]

    def teams(s):
        r1 = driver.user(s, "researcher1")
        s.add_all([ApplicationMember(application_id=team_of_r2, user_id=r1.id),
                   ApplicationMember(application_id=szdi_shared, user_id=r1.id)])
        for j, app_id in enumerate(started):  # updated in another order than created
            s.get(Application, app_id).updated_at = base + timedelta(hours=1, minutes=(j * 7) % 5)
    driver.run(teams)


def _expected(driver, username: str, sort: str) -> list[str]:
    with driver.sessions() as s:
        user = s.execute(select(User).where(User.username == username)).scalar_one()
        query, _ = queries.sorted_by(access.visible_applications(user), queries.APPLICATION_SORTS, sort, "-updated")
        return [a.number for a in s.execute(query).scalars()]


@pytest.mark.parametrize("sort", ["-updated", "updated", "-created", "created"])
def test_pages_of_several_sources_keep_one_order_and_show_each_application_once(client, driver, sort):
    _setup(driver)
    expected = _expected(driver, "researcher1", sort)
    assert len(expected) == 8 and len(set(expected)) == 8   # 4 represented + 1 team + 3 SZDI (one shared)
    headers = _token(client, "researcher1")
    seen, page = [], 1
    while True:
        response = client.get(f"/api/v1/applications?per_page=3&sort={sort}&page={page}", headers=headers)
        assert response.status_code == 200 and response.headers["X-Total-Count"] == "8"
        seen += [a["number"] for a in response.get_json()]
        if 'rel="next"' not in response.headers["Link"]:
            break
        page += 1
    assert seen == expected
    login(client, "researcher1")
    web = client.get(f"/applications?per_page=3&sort={sort}&page=2").get_data(as_text=True)
    assert [n for n in expected[3:6] if n in web] == expected[3:6]


def test_others_see_only_their_own_sources(client, driver):
    _setup(driver)
    headers = _token(client, "researcher2")
    listed = client.get("/api/v1/applications?per_page=50", headers=headers)
    assert [a["number"] for a in listed.get_json()] == _expected(driver, "researcher2", "-updated")
    assert listed.headers["X-Total-Count"] == "5"       # the ones researcher2 represents
    assert client.get("/api/v1/applications?per_page=50&status=draft&kind=ownership",
                      headers=headers).headers["X-Total-Count"] == "5"
    assert client.get("/api/v1/applications?status=completed", headers=headers).get_json() == []


def test_the_list_costs_the_same_statements_however_many_rows_each_source_has(client, driver):
    _setup(driver)
    headers = _token(client, "researcher1")
    app = client.application
    with counted(app) as few:
        assert client.get("/api/v1/applications", headers=headers).status_code == 200
    for who, unit in [("researcher1", "SZDU")] * 3 + [("researcher2", "SZDI")] * 3:
        driver.start(who=who, unit=unit)
    with counted(app) as many:
        listed = client.get("/api/v1/applications", headers=headers)
    assert listed.headers["X-Total-Count"] == "14" and len(many) == len(few)
