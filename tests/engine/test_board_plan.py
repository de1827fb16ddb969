"""The board's first page reads the open notices' index in the board's order: no sort of every
open notice for the top fifty (5,035 of them at 100k on PostgreSQL before `0007_board`)."""
from __future__ import annotations

from sqlalchemy import func, select, text

from workflows import publicity
from workflows.models import PublicityNotice
from workflows.process import queries


def _plan(session, query) -> str:
    bind = session.get_bind()
    compiled = query.compile(bind, compile_kwargs={"literal_binds": True})
    if bind.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    session.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table: ask what the index allows
    session.execute(text("SET LOCAL enable_sort = off"))  # a sort is then chosen only if it is the only way
    return "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())


def test_the_boards_first_page_and_its_count_read_the_open_notices_index_alone(sessions):
    board, _sort = queries.sorted_by(publicity.open_notices(), queries.NOTICE_SORTS, None, "ends")
    cut = board.with_only_columns(PublicityNotice.id).limit(50)
    count = select(func.count()).select_from(board.order_by(None).subquery())
    with sessions() as s:
        page, counted = _plan(s, cut), _plan(s, count)
        s.rollback()
    assert "ix_notices_open" in page and "ix_notices_open" in counted, (page, counted)
    assert "Sort" not in page and "TEMP B-TREE" not in page, page
    assert "COVERING INDEX" in counted or "Index Only Scan" in counted, counted
