"""An officer's 我的待办 merges two indexed branches (tasks assigned to them, their unit's
unclaimed queue): pages must keep one order across both, lose and repeat nothing, leave out
other people's and other units' tasks, and cost the same number of queries at any size."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import or_, select

from workflows import clock
from workflows.models import Application, HumanTask, RoleGrant, Unit, User

from .conftest import login
from .test_lists import _numbers, _start, _token, counted


def _office_tasks(driver, ids: list[int]) -> list[str]:
    """A tto task per application, one minute apart, in turn: unclaimed, claimed by tto1,
    claimed by someone else, in the other unit's queue, finished. Returns the numbers tto1
    must see, oldest first."""
    expected = []
    with driver.sessions() as s:
        people = {u.username: u for u in s.execute(select(User)).scalars()}
        other_unit = s.execute(select(Unit).where(Unit.code == "SZDI")).scalar_one()
        base = clock.now() - timedelta(days=1)
        for i, app_id in enumerate(ids):
            app = s.get(Application, app_id)
            kind = i % 5
            s.add(HumanTask(id=str(uuid.uuid4()), application_id=app_id,
                            unit_id=other_unit.id if kind == 3 else app.unit_id, bpmn_id="review",
                            name="成果转化部门审查", lane="tto", role="tto", form="review.schema.json",
                            assignee_id={1: people["tto1"].id, 2: people["decider1"].id}.get(kind),
                            state="completed" if kind == 4 else "ready", created_at=base + timedelta(minutes=i)))
            if kind in (0, 1):
                expected.append(app.number)
        s.commit()
    return expected


def test_officer_pages_merge_assigned_and_queue_in_one_order(client, driver):
    expected = _office_tasks(driver, _start(driver, 10))
    assert len(expected) == 4
    login(client, "tto1")
    pages = [_numbers(client.get(f"/tasks?per_page=3&page={p}")) for p in (1, 2)]
    assert pages == [expected[:3], expected[3:]]
    assert _numbers(client.get("/tasks?sort=-created")) == expected[::-1]
    headers = _token(client, "tto1")
    response = client.get("/api/v1/tasks?per_page=2&page=2", headers=headers)
    assert [t["number"] for t in response.get_json()] == expected[2:4]
    assert response.headers["X-Total-Count"] == "4"
    assert _numbers(client.get(f"/tasks?q={expected[1]}")) == [expected[1]]


def test_officer_task_list_queries_do_not_grow_with_rows(client, driver):
    counts = []
    for n in (5, 20):
        _office_tasks(driver, _start(driver, n))
        login(client, "tto1")
        headers = _token(client, "tto1")
        with counted(client.application) as web:
            assert client.get("/tasks").status_code == 200
        with counted(client.application) as api:
            assert client.get("/api/v1/tasks", headers=headers).status_code == 200
        counts.append((len(web), len(api)))
        client.post("/logout")
    assert counts[0] == counts[1]


def test_city_wide_role_counts_each_task_once_and_pages_stay_in_order(client, driver):
    """A tto grant for every unit beside the unit's own: its queue covers the unit's, so no task
    is listed or counted twice; the other unit's unclaimed task joins the list in its place."""
    _office_tasks(driver, _start(driver, 10))
    with driver.sessions() as s:
        tto1 = s.execute(select(User).where(User.username == "tto1")).scalar_one()
        s.add(RoleGrant(user_id=tto1.id, unit_id=None, role="tto"))
        s.commit()
        ready = s.execute(select(Application.number).join(HumanTask).where(
            HumanTask.state == "ready", HumanTask.role == "tto",
            or_(HumanTask.assignee_id == tto1.id, HumanTask.assignee_id.is_(None)))
            .order_by(HumanTask.created_at, HumanTask.id)).scalars().all()
    assert len(ready) == 6  # 4 of tto1's unit + 2 of the other unit's queue
    login(client, "tto1")
    pages = [_numbers(client.get(f"/tasks?per_page=4&page={p}")) for p in (1, 2, 3)]
    assert pages == [ready[:4], ready[4:], ready[4:]]  # past the end: the last page
    assert _numbers(client.get("/tasks?sort=-created&per_page=4&page=2")) == ready[::-1][4:]
    assert _numbers(client.get("/tasks?step=review&per_page=50")) == ready
    assert _numbers(client.get("/tasks?step=draft")) == []
    response = client.get("/api/v1/tasks?per_page=4&page=2", headers=_token(client, "tto1"))
    assert [t["number"] for t in response.get_json()] == ready[4:]
    assert response.headers["X-Total-Count"] == "6"
