"""Bearer tokens: issued for a password, refused when forged, expired or outlived by a password
change; failed sign-ins are counted (and committed) even though the answer is 401."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from workflows import clock
from workflows.models import LoginThrottle, User
from workflows.people import accounts

from .conftest import PASSWORD


def _user(app, username: str) -> User:
    with app.extensions["grants_sessions"]() as session:
        return session.execute(select(User).where(User.username == username)).scalar_one()


def test_token_then_me(api):
    response = api.client.post("/api/v1/tokens", json={"username": "tto1", "password": PASSWORD})
    assert response.status_code == 201
    token = response.get_json()["token"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["username"] == "tto1" and me["name"] == "刘洋" and me["roles"] == [{"role": "tto", "unit": "SZDU"}]


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.token",
                                    "Token abc"])
def test_missing_or_malformed_tokens(api, header):
    response = api.client.get("/api/v1/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.get_json()["error"]


def test_a_token_signed_with_another_key_is_refused(app, api):
    token = api.token("researcher1")
    app.config["SECRET_KEY"] = "another-secret"
    assert api.get("/me", "researcher1").status_code == 401
    app.config["SECRET_KEY"] = "api-test-secret"
    assert api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_failed_logins_are_counted_and_lock_the_account(app, api):
    for attempt in range(1, 5):
        response = api.client.post("/api/v1/tokens", json={"username": "researcher2", "password": "wrong"})
        assert response.status_code == 401
        with app.extensions["grants_sessions"]() as session:  # committed despite the 401
            assert max(session.execute(select(LoginThrottle.failures)).scalars()) == attempt
    assert api.client.post("/api/v1/tokens", json={"username": "researcher2", "password": "x"}).status_code == 401
    locked = api.client.post("/api/v1/tokens", json={"username": "researcher2", "password": PASSWORD})
    assert locked.status_code == 403 and locked.get_json()["error"]
    other = api.client.post("/api/v1/tokens", json={"username": "researcher2", "password": PASSWORD},
                            environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 201  # only the stranger's address is locked, not the owner


def test_unknown_user_looks_like_a_wrong_password(api):
    unknown = api.client.post("/api/v1/tokens", json={"username": "nobody", "password": "x"})
    wrong = api.client.post("/api/v1/tokens", json={"username": "researcher1", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_json() == wrong.get_json()


def test_a_password_change_revokes_tokens(app, api):
    api.token("researcher1")
    assert api.get("/me", "researcher1").status_code == 200
    with app.extensions["grants_sessions"]() as session:
        user = session.execute(select(User).where(User.username == "researcher1")).scalar_one()
        accounts.change_password(user, PASSWORD, "a-brand-new-password")
        session.commit()
    assert api.get("/me", "researcher1").status_code == 401


def test_tokens_expire_after_twelve_hours(api):
    api.forget()  # a token cached by an earlier test may be older than a minute
    api.token("researcher1")
    with freeze_time(clock.now() + timedelta(hours=11, minutes=59)):
        assert api.get("/me", "researcher1").status_code == 200
    with freeze_time(clock.now() + timedelta(hours=12, minutes=1)):
        assert api.get("/me", "researcher1").status_code == 401


def test_a_deactivated_user_loses_access(app, api):
    api.token("researcher1")
    with app.extensions["grants_sessions"]() as session:
        session.execute(select(User).where(User.username == "researcher1")).scalar_one().active = False
        session.commit()
    assert api.get("/me", "researcher1").status_code == 401
