"""The rules of single sign-on: claims name an existing active account or nobody, and a unit
that signs in centrally turns password sign-in off for its staff (web and API)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.driver import PASSWORD
from workflows.errors import Forbidden, GrantError
from workflows.models import Unit, User
from workflows.people import accounts, sso


def _user(session, username: str) -> User:
    return session.execute(select(User).where(User.username == username)).scalar_one()


def test_claims_name_an_existing_account(sessions):
    with sessions() as session:
        assert sso.account_for_claims(session, {"preferred_username": "researcher1"}, "preferred_username",
                                      "username").username == "researcher1"
        user = _user(session, "tto1")
        user.email = "TTO1@Example.edu.cn"
        session.flush()
        assert sso.account_for_claims(session, {"email": "tto1@example.edu.cn"}, "email", "email").id == user.id


@pytest.mark.parametrize("claims", [{}, {"preferred_username": ""}, {"preferred_username": 42}])
def test_claims_without_the_matching_value_are_refused(sessions, claims):
    with sessions() as session, pytest.raises(GrantError, match="未提供"):
        sso.account_for_claims(session, claims, "preferred_username", "username")


def test_unknown_and_deactivated_subjects_are_refused(sessions):
    with sessions() as session:
        with pytest.raises(Forbidden, match="stranger"):
            sso.account_for_claims(session, {"preferred_username": "stranger"}, "preferred_username", "username")
        _user(session, "researcher2").active = False
        session.flush()
        with pytest.raises(Forbidden, match="未开通"):
            sso.account_for_claims(session, {"preferred_username": "researcher2"}, "preferred_username", "username")


def test_only_an_administrator_turns_password_sign_in_off(sessions):
    with sessions() as session:
        unit = session.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one()
        with pytest.raises(Forbidden):
            sso.set_password_sign_in(session, _user(session, "tto1"), unit, False)
        assert unit.password_sign_in is True
        sso.set_password_sign_in(session, _user(session, "admin"), unit, False)
        session.commit()
    with sessions() as session:
        with pytest.raises(Forbidden, match="已启用统一身份认证"):
            accounts.authenticate(session, "researcher1", PASSWORD)
        assert accounts.authenticate(session, "tto2", PASSWORD).username == "tto2"  # the other unit
        assert accounts.authenticate(session, "admin", PASSWORD).username == "admin"  # spans no unit


def test_password_sign_in_off_refuses_the_web_form_and_api_tokens(app, client):
    with app.extensions["grants_sessions"]() as session:
        session.execute(select(Unit).where(Unit.code == "SZDU")).scalar_one().password_sign_in = False
        session.commit()
    page = client.post("/login", data={"username": "researcher1", "password": PASSWORD})
    assert page.status_code == 403 and "已启用统一身份认证" in page.get_data(as_text=True)
    token = client.post("/api/v1/tokens", json={"username": "researcher1", "password": PASSWORD})
    assert token.status_code == 403


def test_the_administrator_turns_password_sign_in_off_on_the_units_page(app, client):
    from .conftest import login
    login(client, "admin")
    with app.extensions["grants_sessions"]() as session:
        unit_id = session.execute(select(Unit.id).where(Unit.code == "SZDU")).scalar_one()
    assert "关闭密码登录" in client.get("/admin/units").get_data(as_text=True)
    response = client.post(f"/admin/units/{unit_id}/password-sign-in", data={"allowed": "0"})
    assert response.status_code == 302
    with app.extensions["grants_sessions"]() as session:
        assert session.get(Unit, unit_id).password_sign_in is False
    assert "已关闭（仅统一身份认证）" in client.get("/admin/units").get_data(as_text=True)
    client.post("/logout")
    login(client, "tto2")  # SZDU's own staff can no longer sign in with a password
    assert client.post(f"/admin/units/{unit_id}/password-sign-in", data={"allowed": "1"}).status_code == 403
