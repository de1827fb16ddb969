"""The `grants` command: a Flask CLI group for set-up, demo data, timers and audit checks."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import inspect, select

from workflows import backup as backups
from workflows import db, demo, settings
from workflows import settings as engine_settings
from workflows.errors import GrantError
from workflows.evidence import audit, keys, pack_verify, pki
from workflows.models import Unit
from workflows.people import accounts
from workflows.people.access import SystemActor
from workflows.process import sweep

from . import demo_mail, deploy

CLI = SystemActor("cli")  # the `grants` commands act as this named system actor (audit: system:cli)


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
    _init_keys(current_app._get_current_object())
    created = _run_in_transaction(demo.seed)
    click.echo(f"演示数据已就绪（新建用户：{', '.join(created) or '无'}）；所有演示账户密码为 {demo.DEMO_PASSWORD}，请及时修改")


def tick_once(app: Flask) -> int:
    """One sweep (workflows/process/sweep.py): fire due timers (each instance in its own transaction, for
    at most a second), then reminders, throttles, mail and checkpoints, each in its own
    transaction; parts with nothing to do take no write lock."""
    with app.app_context():
        return sweep.sweep(current_app.extensions["grants_sessions"])


def _init_keys(app: Flask) -> list[str]:
    created = keys.init(app.instance_path)
    units = []
    if inspect(app.extensions["grants_engine"]).has_table("units"):  # keys may come before init-db
        with app.extensions["grants_sessions"]() as session:
            units = session.execute(select(Unit.code, Unit.name)).all()
    for code, name in units:  # each unit's signing CA (a unit may import a real one instead)
        if not (pki.unit_dir(app.instance_path, code) / "ca.cert.pem").exists():
            pki.ensure_unit_ca(app.instance_path, code, name)
            created.append(f"units/{code}")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = keys.secret_key(app.instance_path)
    return created


def _refuse_without_keys(app: Flask) -> None:
    """`run` and `tick` never start on missing keys or the old default secrets."""
    problems = keys.problems(app.instance_path, app.config.get("SECRET_KEY"))
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo("拒绝启动：请先运行 grants keys init", err=True)
        raise SystemExit(1)


@click.group("keys")
def keys_group() -> None:
    """The instance's keys (files under <instance>/keys, mode 0600)."""


@keys_group.command("init")
@with_appcontext
def keys_init() -> None:
    """Create the checkpoint signing key and the secret key if missing (idempotent)."""
    created = _init_keys(current_app._get_current_object())
    where = keys.keys_dir(current_app.instance_path)
    click.echo(f"密钥已就绪：{where}（新建：{', '.join(created) or '无'}）；请备份该目录并妥善保管私钥")


@click.command("tick")
@with_appcontext
def tick() -> None:
    """Fire the timers that are due (publicity terms), deliver pending mail, sign checkpoints."""
    app = current_app._get_current_object()
    _refuse_without_keys(app)
    click.echo(f"已触发定时事件：{tick_once(app)}")


@click.command("verify-audit")
@click.option("--checkpoint-key", type=click.Path(exists=True, dir_okay=False),
              help="检查点公钥（PEM），默认取 <instance>/keys 中的公钥")
@with_appcontext
def verify_audit(checkpoint_key: str | None) -> None:
    """Recompute every log and check it against the signed checkpoints; exit 1 on any tampering."""
    session = current_app.extensions["grants_sessions"]()
    pem = Path(checkpoint_key).read_bytes() if checkpoint_key else None
    notes: list[str] = []
    try:
        problems = audit.verify(session, pem, notes)
    finally:
        session.close()
    for note in notes:
        click.echo(note)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo("审计记录核验未通过", err=True)
        raise SystemExit(1)
    click.echo("审计记录完整，与签名检查点一致，未发现篡改")


@click.command("verify-pack")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False))
@click.option("--unit-cert", type=click.Path(exists=True, dir_okay=False), help="单位CA证书（PEM）")
@click.option("--checkpoint-key", type=click.Path(exists=True, dir_okay=False), help="检查点公钥（PEM）")
def verify_pack(pack: str, unit_cert: str | None, checkpoint_key: str | None) -> None:
    """Verify an evidence pack offline (no database needed); exit 1 with the reason."""
    args = [pack] + (["--unit-cert", unit_cert] if unit_cert else []) + (
        ["--checkpoint-key", checkpoint_key] if checkpoint_key else [])
    raise SystemExit(pack_verify.main(args))


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
    _run_in_transaction(lambda s: accounts.create_user(s, username, name, password, email, grants, actor=CLI))
    click.echo(f"已创建用户 {username}")


@click.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--demo", is_flag=True, help="演示模式：地址取自 host/port，邮件由本机回环邮件捕获器接收")
@with_appcontext
def run(host: str, port: int, demo: bool) -> None:
    """Serve the app (waitress), with a background sweep that fires timers every second."""
    app = current_app._get_current_object()
    _refuse_without_keys(app)
    app.config["DEMO"] = app.config.get("DEMO") or demo
    if app.config["DEMO"]:
        _start_demo(app, host, port)
    else:
        deploy.require_base_url(app)
    db.create_schema(app.extensions["grants_engine"])
    threading.Thread(target=_ticker, args=(app,), daemon=True, name="grants-ticker").start()
    click.echo(f"服务已启动：http://{host}:{port}/ ，对外地址 {engine_settings.get().base_url}/ （按 Ctrl+C 停止）")
    import waitress  # a production WSGI server, pure Python, threaded
    waitress.serve(app, host=host, port=port, threads=8, ident="grants")


def _ticker(app: Flask) -> None:
    while True:
        try:
            tick_once(app)
        except Exception:  # a failed sweep is logged and retried, never kills the server
            app.logger.exception("timer sweep failed")
        time.sleep(app.config["TICK_INTERVAL_SECONDS"])


def _unit(code: str) -> Unit:
    session = current_app.extensions["grants_sessions"]()
    try:
        unit = session.execute(select(Unit).where(Unit.code == code)).scalar_one_or_none()
    finally:
        session.close()
    if unit is None:
        raise click.ClickException(f"单位 {code} 不存在")
    return unit


@keys_group.command("unit-ca")
@click.argument("unit_code")
@with_appcontext
def unit_ca(unit_code: str) -> None:
    """Create the unit's signing CA if missing and print the PEM to trust for its signatures."""
    unit = _unit(unit_code)
    click.echo(pki.certificate_pem(settings.get().instance_dir, unit.code, unit.name), nl=False)


@keys_group.command("import-unit-cert")
@click.argument("unit_code")
@click.argument("file", type=click.File("rb"))
@click.option("--password", prompt="PKCS#12 密码", hide_input=True, default="", show_default=False)
@with_appcontext
def import_unit_cert(unit_code: str, file, password: str) -> None:
    """Sign this unit's PDFs with a CA-issued PKCS#12 (key + certificate + chain) from now on."""
    unit = _unit(unit_code)
    try:
        cert = pki.import_pkcs12(settings.get().instance_dir, unit.code, file.read(), password or None)
    except GrantError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已导入单位 {unit.code} 的签名证书：{cert.subject.rfc4514_string()}，"
               f"有效期至 {cert.not_valid_after_utc:%Y-%m-%d}")




# -- operations: demo mail, the worker process, backup and restore (webapp/deploy.py) ----------
def _start_demo(app: Flask, host: str, port: int) -> None:
    """The demo's address comes from its host and port; its mail goes to a loopback catcher."""
    if not app.config["BASE_URL"]:
        deploy.set_base_url(app, f"http://{host}:{port}")
    if "GRANTS_SMTP_HOST" not in os.environ:
        catcher = demo_mail.start(app.instance_path)
        app.config.update(SMTP_HOST=catcher.hostname, SMTP_PORT=catcher.port)
        engine_settings.configure(smtp_host=catcher.hostname, smtp_port=catcher.port)
        click.echo(f"演示邮件由本机邮件捕获器 {catcher.hostname}:{catcher.port} 接收，保存在 "
                   f"{demo_mail.folder(app.instance_path)}，管理员可在 /admin/outbox 查看")


@click.command("worker")
@click.option("--interval", type=float, default=None, help="两次扫描之间的秒数（默认 TICK_INTERVAL_SECONDS）")
@click.option("--once", is_flag=True, help="只扫描一次后退出")
@with_appcontext
def worker(interval: float | None, once: bool) -> None:
    """Fire due timers and deliver mail in a loop, as its own process beside the web servers."""
    app = current_app._get_current_object()
    deploy.require_base_url(app)
    interval = app.config["TICK_INTERVAL_SECONDS"] if interval is None else interval
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"定时与邮件处理进程已启动（每{interval:g}秒扫描一次，对外地址 {engine_settings.get().base_url}/）")
    while not stop.is_set():
        try:
            tick_once(app)
        except Exception:  # a failed sweep is logged and retried, never ends the worker
            app.logger.exception("timer sweep failed")
        if once:
            break
        stop.wait(interval)


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--with-secrets", is_flag=True, help="同时备份 keys/ 中的私钥（请妥善保管备份）")
@with_appcontext
def backup_command(directory: str, with_secrets: bool) -> None:
    """Back up the database, its documents, public keys and anchors into an empty DIRECTORY."""
    try:
        manifest = backups.backup(current_app.config["DATABASE_URL"], current_app.instance_path, directory,
                                  with_secrets)
    except backups.BackupError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"备份完成：{directory}（{len(manifest['documents'])}份文件，{manifest['audit']['last_id']}条审计记录，"
               f"{len(manifest['files'])}个密钥与锚定文件）")


@click.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="目标数据库或实例目录不为空时仍然覆盖")
@with_appcontext
def restore_command(directory: str, force: bool) -> None:
    """Restore a backup made by `grants backup`, then check the audit chain and every document."""
    try:
        result = backups.restore(directory, current_app.config["DATABASE_URL"], current_app.instance_path, force)
    except backups.BackupError as exc:
        raise click.ClickException(exc.message) from None
    if result["problems"]:
        for problem in result["problems"]:
            click.echo(problem, err=True)
        raise SystemExit(1)
    click.echo(f"恢复完成并已核验：{result['documents']}份文件与SHA-256一致，{result['audit_events']}条审计记录完整")


@click.command("annual-report")
@click.option("--unit", "unit_code", required=True, help="Unit code, e.g. SZDU")
@click.option("--year", required=True, type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@with_appcontext
def annual_report_command(unit_code: str, year: int, out_dir: str) -> None:
    """Write DIR/UNIT-YEAR-年度单列管理报告.pdf and .xlsx (§三(三)4)."""
    from workflows.errors import GrantError
    from workflows.reporting import annual_report
    session = current_app.extensions["grants_sessions"]()
    try:
        paths = annual_report.write(annual_report.build(session, None, unit_code, year), out_dir)
    except GrantError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        session.close()
    for path in paths:
        click.echo(f"已生成 {path}")




@click.command("check-statistics")
@click.option("--rebuild", is_flag=True, help="差异存在时按记录重建用时分布、申请计数与知识产权编号占用（一次提交）")
@with_appcontext
def check_statistics(rebuild: bool) -> None:
    """Recount the statistics' duration bins and application counts, and the claims on IP numbers
    (ip_claims), from the rows; exit 1 on any difference (and with --rebuild, rewrite them from the
    rows in one transaction)."""
    from workflows.models import ip_claim_differences, rebuild_duration_bins, rebuild_ip_claims
    from workflows.reporting import statistics
    session = current_app.extensions["grants_sessions"]()
    try:
        differences = statistics.duration_bin_differences(session)
        for key, stored, counted in differences[:50]:
            click.echo(f"范围 {key[0]} {'/'.join(str(k) for k in key[1:])}：存 {stored}，按记录 {counted}", err=True)
        claims = ip_claim_differences(session.connection())
        for (unit_id, number, app_id, entry_id), stored, counted in claims[:50]:
            holder = f"成果库条目 {entry_id}" if entry_id is not None else f"申请 {app_id}"
            click.echo(f"单位 {unit_id} 编号 {number}（{holder}）：存 {stored}，按记录 {counted}", err=True)
        if (differences or claims) and rebuild:
            if differences:
                rebuild_duration_bins(session.connection())
            skipped = rebuild_ip_claims(session.connection()) if claims else []
            session.commit()
            for unit_id, number, app_id, _entry in skipped:
                click.echo(f"单位 {unit_id} 编号 {number}：申请 {app_id} 与更早的申请重复，未占用", err=True)
            click.echo(f"已按记录重建（{len(differences)} 处统计汇总、{len(claims)} 处编号占用不一致）")
            return
    finally:
        session.close()
    if differences or claims:
        click.echo(f"统计汇总与记录不一致：{len(differences)} 处；知识产权编号占用与记录不一致：{len(claims)} 处", err=True)
        raise SystemExit(1)
    click.echo("统计汇总与记录一致")


COMMANDS = (init_db, demo_data, keys_group, tick, verify_audit, verify_pack, create_user, run, worker,
            backup_command, restore_command, annual_report_command, check_statistics)


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


if __name__ == "__main__":  # `python -m webapp.cli worker` where the `grants` script is not installed
    main()
