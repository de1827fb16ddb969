"""Substring search by index (workflows/process/textsearch.py, migration 0005_search) picks exactly
the rows of the plain `ILIKE '%text%'` it replaces, on each backend: 1-, 2- and 3-character
queries, Chinese, Latin (any case), mixed, number fragments, and `%`, `_` and `\\` (dropped from
the query, as `_like` always did). The SQLite index is kept in step by triggers."""
from __future__ import annotations

import pytest
from sqlalchemy import or_, select, text

from workflows.catalogue import KindCode, StatusCode
from workflows.models import Application, ApplicationMember, HumanTask, Unit, User
from workflows.process import queries, textsearch
from workflows.process.textsearch import contains

TITLES = ["高性能芯片封装方法", "芯片", "一种AI芯片的散热结构", "Graphene 石墨烯 电池", "graphene电池",
          "100%纯度提纯_工艺", "Äpfel Sorting", "äpfel sorting", "Ｆｕｌｌ宽字符", "", "李明华的发明",
          "a_b\\c 路径", "芯 片 分开", "ＡＩ全角", 'say "a"b" 芯片*', "NOT 芯片 OR x", "title:芯片"]
NAMES = [("search-u1", "李明"), ("search-u2", "李明华"), ("search-u3", "王小明"), ("Search_Alice", "Alice Smith"),
         ("search-u5", "ZHANG Wei 张伟"), ("search-u6", "Åsa Ölund"), ("search-u7", "芯片王")]
QUERIES = ["芯", "芯片", "芯片封", "片的散", "AI", "ai芯", "ai芯片", "GRAPHENE", "raph", "2026-0012", "0012", "12", "2",
           "-20", "SZDU-2026", "szdu", "%", "_", "100%", "%纯度_", "纯度提", "a", "äp", "ÄPF", "äpfel", "ÅSA", "åsa",
           "李明", "明", "李明华", "小明", "ali", "SMITH", "alice_", "search_a", "  芯片  ", "\\", "b\\c", "zzz不存在",
           "Ｆｕ", "ｆｕｌ", "ＡＩ全", "ai全", "芯 片", " 片 ", "wei 张", "a%b", 'a"b', '"芯片"', "芯片*", "title:芯片", "NOT 芯片", "芯片 OR x"]
COLUMNS = [(Application.number, Application.id), (Application.title, Application.id),
           (User.name, User.id), (User.username, User.id)]


def _seed(s) -> None:
    unit = s.execute(select(Unit).order_by(Unit.id)).scalars().first()
    users = [User(username=u, name=n, password_hash="x") for u, n in NAMES]
    s.add_all(users)
    s.flush()
    for i, title in enumerate(TITLES):
        number = ["SZDU-2026-0012", "SZDU-2026-0120", "SZDI-2025-1001", "szdu-2026-9012"][i % 4] + f"-{i}"
        app = Application(unit_id=unit.id, number=number, kind=KindCode.OWNERSHIP, status=StatusCode.IN_REVIEW,
                          title=title, representative_id=users[i % len(users)].id)
        s.add(app)
        s.flush()
        s.add(ApplicationMember(application_id=app.id, user_id=users[(i + 2) % len(users)].id))
    s.commit()


def _plain_matches(q: str):
    """application_matches as it was, every part a plain ILIKE."""
    like = queries._like(q)
    people = select(User.id).where(or_(User.name.ilike(like), User.username.ilike(like)))
    members = select(ApplicationMember.application_id).where(ApplicationMember.user_id.in_(people))
    return or_(Application.number.ilike(like), Application.title.ilike(like),
               Application.representative_id.in_(people), Application.id.in_(members),
               Application.id.in_(select(HumanTask.application_id).where(
                   HumanTask.state == "ready", or_(HumanTask.name.ilike(like), HumanTask.bpmn_id.ilike(like)))))


def _ids(s, key, where) -> list[int]:
    return sorted(s.execute(select(key).where(where)).scalars())


def test_indexed_search_picks_exactly_the_plain_ilike_rows(sessions):
    with sessions() as s:
        _seed(s)
        for q in QUERIES:
            like = queries._like(q)
            for column, key in COLUMNS:
                assert _ids(s, key, contains(column, key, q)) == _ids(s, key, column.ilike(like)), (q, column)
            assert (_ids(s, Application.id, queries.application_matches(q))
                    == _ids(s, Application.id, _plain_matches(q))), q
            board = queries.search_notices(select(Application.id), q)
            plain = select(Application.id).where(or_(
                Application.number.ilike(like), Application.title.ilike(like),
                Application.id.in_(select(ApplicationMember.application_id).where(ApplicationMember.user_id.in_(
                    select(User.id).where(User.name.ilike(like)))))))
            assert sorted(s.execute(board).scalars()) == sorted(s.execute(plain).scalars()), q
        # The seed is not vacuous: CJK, Latin any case, numbers and people all find something.
        assert len(_ids(s, Application.id, queries.application_matches("芯片"))) >= 4
        assert _ids(s, Application.id, contains(Application.title, Application.id, "GRAPHENE"))
        assert len(_ids(s, Application.id, contains(Application.number, Application.id, "2026-0012"))) >= 2


def test_sqlite_reads_the_trigram_table_from_three_characters(sessions):
    with sessions() as s:
        if s.get_bind().dialect.name != "sqlite":
            pytest.skip("the FTS5 tables are SQLite's")
        for q, indexed in (("芯片", False), ("芯片封", True), ("ab", False), ("a%bc", True), (" 芯片 ", False)):
            compiled = str(select(Application.id).where(queries.application_matches(q))
                           .compile(s.get_bind()))
            assert ("applications_search" in compiled and "users_search" in compiled) is indexed, q
        compiled = select(Application.id).where(contains(Application.title, Application.id, "芯片封")).compile(s.get_bind())
        assert compiled.positiontup is not None
        plan = s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                              tuple(compiled.params[n] for n in compiled.positiontup)).all()
        assert any("VIRTUAL TABLE INDEX" in row[-1] for row in plan), plan


def test_sqlite_index_follows_inserts_updates_and_deletes(sessions):
    """Triggers on applications and users (a later batch migration recreating either table would
    drop them: this fails then)."""
    with sessions() as s:
        _seed(s)
        find = lambda q: _ids(s, Application.id, contains(Application.title, Application.id, q))  # noqa: E731
        people = lambda q: _ids(s, User.id, contains(User.name, User.id, q))  # noqa: E731
        app = s.execute(select(Application).where(Application.title == "芯片")).scalar_one()
        assert app.id not in find("量子点")
        app.title = "量子点显示"
        s.commit()
        assert app.id in find("量子点") and app.id not in find("芯片封")
        user = s.execute(select(User).where(User.username == "search-u1")).scalar_one()
        user.name = "欧阳修远"
        s.commit()
        assert people("欧阳修") == [user.id] and user.id not in people("李明")
        s.delete(app)  # its members go with it (cascade)
        s.commit()
        assert find("量子点") == []
        if s.get_bind().dialect.name == "sqlite":  # the index agrees with the rows (raises if not)
            for fts in ("applications_search", "users_search"):
                s.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))


def test_postgres_has_trigram_indexes_the_planner_can_use(sessions):
    with sessions() as s:
        if s.get_bind().dialect.name != "postgresql":
            pytest.skip("pg_trgm is PostgreSQL's")
        names = set(s.execute(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_trgm'")).scalars())
        assert names == {"ix_applications_number_trgm", "ix_applications_title_trgm", "ix_users_name_trgm",
                         "ix_users_username_trgm"}
        assert all(textsearch.is_search_object(n, "index") for n in names)
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(s.execute(text("EXPLAIN SELECT id FROM applications WHERE title ILIKE '%芯片封%'")).scalars())
        assert "ix_applications_title_trgm" in plan, plan


def test_task_search_picks_the_tasks_whose_own_application_or_name_matches(sessions):
    """`search_tasks` tests each listed task's own application (a correlated probe, so PostgreSQL
    does not read every application): exactly the rows of the plain join filter it replaced."""
    from uuid import uuid4

    from workflows.catalogue import RoleCode
    with sessions() as s:
        _seed(s)
        apps = s.execute(select(Application).order_by(Application.id)).scalars().all()
        steps = [("review", "初审芯片"), ("draft", "起草申请"), ("consent", "成员确认"), ("decide", "AI决策")]
        for i, app in enumerate(apps):
            for j in range(1 + i % 2):
                bpmn_id, name = steps[(i + j) % len(steps)]
                s.add(HumanTask(id=str(uuid4()), application_id=app.id, unit_id=app.unit_id, bpmn_id=bpmn_id,
                                name=name, lane="", role=RoleCode.TTO, form="", state="ready" if j == 0 else "completed"))
        s.commit()
        listed = select(HumanTask.id).join(Application, Application.id == HumanTask.application_id)
        for q in [*QUERIES, "初审", "起草", "确认", "decide"]:
            found = sorted(s.execute(queries.search_tasks(listed, q)).scalars())
            plain = sorted(s.execute(listed.where(or_(_plain_matches(q), HumanTask.name.ilike(queries._like(q)))))
                           .scalars())
            assert found == plain, q
        assert len(s.execute(queries.search_tasks(listed, "芯片")).scalars().all()) >= 6  # not vacuous


def test_postgres_connections_compile_no_statement(postgres_sessions):
    """JIT off: PostgreSQL compiled the officer's task search at 100k (~100 ms for a 40 ms statement)."""
    with postgres_sessions() as s:
        assert s.execute(text("SHOW jit")).scalar_one() == "off"
