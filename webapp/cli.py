"""The `grants` command: a Flask CLI group for set-up, demo data, timers and audit checks."""
from __future__ import annotations

import threading
import time

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from workflows import accounts, audit, db, demo, engine, notify


def _run_in_transaction(action):
    return db.in_transaction(current_app.extensions["grants_sessions"], action)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the schema (Alembic migrations)."""
    db.create_schema(current_app.extensions["grants_engine"])
    click.echo("数据库已就绪")


@click.command("demo")
@with_appcontext
def demo_data() -> None:
    """Seed the demo units and users (idempotent)."""
    db.create_schema(current_app.extensions["grants_engine"])
    created = _run_in_transaction(demo.seed)
    click.echo(f"演示数据已就绪（新建用户：{', '.join(created) or '无'}）；所有演示账户密码为 {demo.DEMO_PASSWORD}，请及时修改")


def tick_once(app: Flask) -> int:
    """Fire due timers (each instance in its own savepoint), then reminders, then mail, each
    in its own transaction so a failure of one does not undo or stop the others."""
    with app.app_context():
        fired = _run_in_transaction(engine.tick)
        _run_in_transaction(notify.remind_overdue)
        _run_in_transaction(accounts.prune_throttles)
        notify.deliver_outbox(current_app.extensions["grants_sessions"])
        return fired


@click.command("tick")
@with_appcontext
def tick() -> None:
    """Fire the timers that are due (publicity terms) and deliver pending mail."""
    click.echo(f"已触发定时事件：{tick_once(current_app._get_current_object())}")


@click.command("verify-audit")
@with_appcontext
def verify_audit() -> None:
    """Check the hash chain of the audit trail; exit 1 if any row was edited or deleted."""
    session = current_app.extensions["grants_sessions"]()
    try:
        problems = audit.verify(session)
    finally:
        session.close()
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise SystemExit(1)
    click.echo("审计记录完整，未发现篡改")


@click.command("create-user")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email", default="")
@click.option("--role", "roles", multiple=True, help="ROLE or ROLE:UNIT_CODE, e.g. tto:SZDU")
@with_appcontext
def create_user(username: str, name: str, password: str, email: str, roles: tuple[str, ...]) -> None:
    """Create a user with roles."""
    grants = [(r.split(":", 1)[0], r.split(":", 1)[1] if ":" in r else None) for r in roles]
    _run_in_transaction(lambda s: accounts.create_user(s, username, name, password, email, grants))
    click.echo(f"已创建用户 {username}")


@click.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def run(host: str, port: int) -> None:
    """Serve the app (waitress), with a background sweep that fires timers every second."""
    app = current_app._get_current_object()
    db.create_schema(app.extensions["grants_engine"])
    threading.Thread(target=_ticker, args=(app,), daemon=True, name="grants-ticker").start()
    click.echo(f"服务已启动：http://{host}:{port}/ （按 Ctrl+C 停止）")
    import waitress  # a production WSGI server, pure Python, threaded
    waitress.serve(app, host=host, port=port, threads=8, ident="grants")


def _ticker(app: Flask) -> None:
    while True:
        try:
            tick_once(app)
        except Exception:  # a failed sweep is logged and retried, never kills the server
            app.logger.exception("timer sweep failed")
        time.sleep(app.config["TICK_INTERVAL_SECONDS"])


COMMANDS = (init_db, demo_data, tick, verify_audit, create_user, run)


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def _make_app():
    from . import create_app
    return create_app()


main = FlaskGroup(create_app=_make_app, add_default_commands=False,
                  help="职务科技成果赋权系统 / rights-grant workflow")
for _command in COMMANDS:
    main.add_command(_command)
