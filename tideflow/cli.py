"""The ``tideflow`` command: run the stack, manage flows, users and events from a shell."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.settings import get_settings
from engine.text import NC_, Msg, message_of, verbatim

if TYPE_CHECKING:
    from designer.i18n import Language
    from engine.nodes.base import Problem


class CliError(Exception):
    """A problem to print as one clear line (exit code 1), never a stack trace: a :class:`Msg`, printed in the
    CLI's language (``designer.i18n.environment_language``: ``TIDEFLOW_LANG``, else the locale, else English)."""

    def __init__(self, message: Msg) -> None:
        super().__init__(message)
        self.message = message


def _said(exc: BaseException, squash: bool = False) -> Msg:
    """What ``exc`` said, as a :class:`Msg` (its own, translated; else its English verbatim); ``squash``: on one
    line, its runs of white space made one space."""
    said = message_of(exc)
    one_line = " ".join(said.split())
    return verbatim(one_line) if squash and one_line != said else said


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(Msg("cannot read %(path)s: %(strerror)s", path=path, strerror=exc.strerror)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(Msg("%(path)s is not valid JSON: %(problem)s at line %(line)s column %(column)s", path=path,
                           problem=exc.msg, line=exc.lineno, column=exc.colno)) from None


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _problems(problems: list[Problem], lang: Language) -> str:
    """A flow's problems, one line each, in ``lang`` (their messages and fixes are ``Msg``s)."""
    from designer.i18n import translate, translations

    # "flow" alone is ambiguous in the catalogue (a ticket's actor is one too): its own context says "the place"
    flow_place = translations(lang).pgettext("where a problem is", NC_("where a problem is", "flow"))
    return "\n".join(translate(Msg("  - %(where)s, %(field)s: %(message)s → %(fix)s",
                                    where=Msg("node '%(node)s'", node=p.node) if p.node else flow_place,
                                    field=p.field or "-", message=p.message, fix=p.fix), lang) for p in problems)


def _say(message: Msg, args: argparse.Namespace) -> str:
    """``message`` in the CLI's language (:func:`main` puts it in ``args.language``)."""
    from designer.i18n import translate

    return translate(message, args.language)


# -- database -------------------------------------------------------------------------------------------
def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.db.session import upgrade

    upgrade()
    print(_say(Msg("database schema is up to date"), args))
    return 0


# -- flows ------------------------------------------------------------------------------------------------
def cmd_flows_validate(args: argparse.Namespace) -> int:
    from engine.validate import validate

    checked = validate(_read_json(args.file))
    if checked.ok:
        print(_say(Msg("%(file)s: valid", file=args.file), args))
        return 0
    print(_say(Msg("%(file)s: %(count)s problem(s)", file=args.file, count=len(checked.problems)), args) + "\n"
          + _problems(checked.problems, args.language), file=sys.stderr)
    return 1


def cmd_flows_publish(args: argparse.Namespace) -> int:
    from engine import flows as flowsvc
    from engine.compiler import FlowInvalid
    from engine.db.session import transaction, upgrade

    document = _read_json(args.file)
    upgrade()
    try:
        with transaction() as db:
            flowsvc.save_draft(db, document, args.actor)
            version = flowsvc.publish(db, document["id"], args.actor)
            print(_say(Msg("published %(id)s version %(version)s (%(hash)s)", id=document["id"],
                           version=version.version, hash=version.hash[:12]), args))
    except FlowInvalid as exc:
        print(_say(Msg("%(file)s: not published, %(count)s problem(s)", file=args.file, count=len(exc.problems)),
                   args) + "\n" + _problems(exc.problems, args.language), file=sys.stderr)
        return 1
    except flowsvc.FlowError as exc:
        raise CliError(_said(exc)) from None
    print(_say(Msg("clock-triggered flows are scheduled by the worker within a minute"), args))
    return 0


def cmd_flows_export(args: argparse.Namespace) -> int:
    from engine.db import models
    from engine.db.session import session_factory

    with session_factory()() as db:
        record = db.get(models.FlowRecord, args.id)
        if record is None:
            raise CliError(Msg("flow '%(id)s' does not exist", id=args.id))
        document = record.draft
        if args.version:
            version = db.get(models.FlowVersion, (args.id, args.version))
            if version is None:
                raise CliError(Msg("flow '%(id)s' has no version %(version)s", id=args.id, version=args.version))
            document = version.document
    _print(document)
    return 0


# -- events -----------------------------------------------------------------------------------------------
async def _send_events(items: list[Any], lang: Language = "en") -> list[dict[str, Any]]:
    """Store the events (all or none) and route them the way the web app does: claimed when stored and routed
    through a routing pipeline (engine/pipeline.py, the one home for routing stored events), so a re-router
    running meanwhile skips them and each is routed once; the follow-ups their hooks stored right behind
    them. Without Temporal they are stored unclaimed and the web app's re-router routes them."""
    from pydantic import ValidationError

    from designer.i18n import translate
    from engine import events as ingest
    from engine import payload_codec
    from engine.pipeline import follow_ups_routed, store_and_route
    from engine.router import Router

    settings = get_settings()
    try:
        parsed = [ingest.EventIn.model_validate(i) for i in items]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(Msg("event invalid at %(where)s: %(problem)s", where=".".join(str(p) for p in first["loc"]),
                           problem=first["msg"])) from None
    try:
        client = await payload_codec.connect(settings)
    except Exception:
        print(translate(Msg("Temporal at %(address)s not reachable: events are stored and routed later",
                            address=settings.temporal_address), lang), file=sys.stderr)
        stored = await asyncio.to_thread(ingest.store_many, parsed)
        return [{"id": e.id, "status": s.status, "customer_id": s.payload["customer_id"],
                 "routing": "pending" if s.needs_routing else "done"} for e, s in zip(parsed, stored, strict=True)]
    url = settings.resolved_database_url()
    async with follow_ups_routed(Router(client, url, settings.task_queue)) as pipeline:
        done = await store_and_route(pipeline, parsed, url)
    out = []
    for event, (one, answer) in zip(parsed, done, strict=True):
        result: dict[str, Any] = {"id": event.id, "status": one.status, "customer_id": one.payload["customer_id"],
                                  "routing": "done"}
        if answer is not None:
            result.update(started=answer.started, signalled=answer.signalled, routing=answer.routing)
            if answer.error:
                result["error"] = answer.error
        out.append(result)
    return out


def cmd_events_send(args: argparse.Namespace) -> int:
    from engine.db.session import upgrade

    data = _read_json(args.file)
    upgrade()
    _print(asyncio.run(_send_events(data if isinstance(data, list) else [data], args.language)))
    return 0


# -- connectors -------------------------------------------------------------------------------------------
def cmd_connectors_sync(args: argparse.Namespace) -> int:
    """Poll a Taobao/JD connector once: store what changed since its cursor and move the cursor. The
    stored events are routed to journeys by the web app's re-router (they wait as ``received``)."""
    from engine.connector_ops import restart_from
    from engine.db.models import utcnow
    from engine.db.session import upgrade
    from engine.shop_sync import poll_connector

    upgrade()
    try:
        if args.from_now:
            restart_from(None, args.id, utcnow())
        result = poll_connector(None, args.id)
    except ValueError as exc:
        raise CliError(Msg("connector '%(id)s': %(problem)s", id=args.id, problem=_said(exc))) from None
    except Exception as exc:
        if hasattr(exc, "retryable"):  # the platform's answer (no secrets in it)
            hint = Msg("try again later") if exc.retryable else Msg("fix the connector's settings")
            raise CliError(Msg("connector '%(id)s': %(problem)s (%(hint)s)", id=args.id, problem=_said(exc),
                               hint=hint)) from None
        raise CliError(Msg("connector '%(id)s': the poll failed (%(error)s); nothing was skipped, the next poll "
                           "reads the same window again", id=args.id, error=type(exc).__name__)) from None
    if result.stopped and args.from_now:
        print(_say(Msg("the cursors of '%(id)s' are at now; it is not enabled, so nothing was polled", id=args.id),
                   args))
        return 0
    if result.stopped:
        raise CliError(Msg("no enabled Taobao/JD connector '%(id)s' (tideflow polls only those); check the id "
                           "on the connectors page", id=args.id))
    _print(result.summary())
    return 0


# -- simulate ---------------------------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from engine.compiler import FlowInvalid
    from engine.simulate import PreviewCustomer, ScriptedEvent, day_label, preview

    document = _read_json(args.file)
    try:
        script = [ScriptedEvent.model_validate(e) for e in (_read_json(args.events) if args.events else [])]
        customer = PreviewCustomer.model_validate(_read_json(args.customer)) if args.customer else None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(verbatim(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")) from None
    try:
        result = asyncio.run(preview(document, customer, script, args.days))
    except FlowInvalid as exc:
        top = exc.problems[0]
        heading = Msg("cannot preview: %(count)s problem(s); first: %(where)s, %(field)s: %(message)s",
                      count=len(exc.problems), where=Msg("node '%(node)s'", node=top.node) if top.node
                      else Msg("the flow"), field=str(top.field), message=top.message)
        print(_say(heading, args) + "\n" + _problems(exc.problems, args.language), file=sys.stderr)
        return 1
    if args.json:
        _print(result)
        return 0
    print(_say(Msg("%(name)s: %(status)s (simulated %(days)s days)", name=document.get("name", document.get("id")),
                   status=result["status"], days=args.days), args))
    for step in result["timeline"]:
        detail = step.get("detail") or {}
        text = detail.get("content") or detail.get("status") or step.get("port") or step.get("event") or ""
        if step["what"] == "ignored":
            text = _say(Msg("%(event)s: arrived after the journey had ended; nothing handled it",
                            event=step.get("event")), args)
        print(f"  {day_label(step['offset_seconds']):>15}  {step['what']:<8} {step.get('node') or '':<16} {text}")
    return 0


# -- users ------------------------------------------------------------------------------------------------
def cmd_users_create(args: argparse.Namespace) -> int:
    from engine import auth
    from engine.db.session import transaction, upgrade

    password = args.password or os.environ.get("TIDEFLOW_NEW_PASSWORD")
    generated = False
    if not password:
        if sys.stdin.isatty():
            password = getpass.getpass(_say(Msg("password for %(username)s: ", username=args.username), args))
        else:
            password, generated = secrets.token_urlsafe(12), True
    upgrade()
    try:
        with transaction() as db:
            user = auth.create_user(db, args.username, password, args.role, args.name)
            print(_say(Msg("created user %(username)s (%(role)s)", username=user.username, role=user.role), args))
            if generated:
                print(_say(Msg("password: %(password)s", password=password), args))
            if args.token:
                print(_say(Msg("API token: %(token)s", token=auth.create_token(db, user, "cli")), args))
    except auth.AuthError as exc:
        raise CliError(_said(exc)) from None
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from engine import auth
    from engine.db.session import transaction

    with transaction() as db:
        user = auth.find_user(db, args.username)
        if user is None:
            raise CliError(Msg("user '%(username)s' does not exist", username=args.username))
        print(auth.create_token(db, user, args.name))
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    from engine import auth
    from engine.db.session import transaction

    try:
        with transaction() as db:
            user = auth.disable_user(db, args.username, "cli")
            print(_say(Msg("disabled user %(username)s: sessions ended, API tokens revoked", username=user.username),
                       args))
    except auth.AuthError as exc:
        raise CliError(_said(exc)) from None
    return 0


# -- plugins ----------------------------------------------------------------------------------------------
def cmd_plugin_new(args: argparse.Namespace) -> int:
    from tideflow import scaffold

    try:
        root, names = scaffold.create(args.name, args.dir)
    except scaffold.ScaffoldError as exc:
        raise CliError(_said(exc)) from None
    print(scaffold.next_steps(root, names))
    return 0


# -- processes --------------------------------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from tideflow.stack import private_data_dir, run_worker

    private_data_dir(get_settings().data_dir)
    asyncio.run(run_worker())
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    from engine.db.session import upgrade
    from tideflow.stack import private_data_dir

    private_data_dir(settings.data_dir)
    upgrade()
    # forwarded headers are believed only from the proxies the operator named: otherwise anyone could
    # rotate X-Forwarded-For to dodge the login rate limit, or claim https
    # with TIDEFLOW_WORKER_IN_WEB the worker runs in this process, on the client the router starts journeys with
    app = "tideflow.stack:embedded_app" if settings.worker_in_web else "designer.app:create_app"
    uvicorn.run(app, factory=True, host=args.host or settings.web_host,
                port=args.port or settings.web_port, log_level="warning",
                proxy_headers=bool(settings.trusted_proxies.strip()),
                forwarded_allow_ips=settings.trusted_proxies.strip() or "")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from tideflow.stack import Stack

    if args.one_process:  # read by this process's settings and by the web process it starts
        os.environ["TIDEFLOW_WORKER_IN_WEB"] = "true"
        get_settings.cache_clear()
    stack = Stack(get_settings(), seed=not args.no_demo, lang=args.language)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C stops the stack even when this process was handed SIGINT ignored (started with `&` from a
    # script): its children re-enable SIGINT and stop, and a supervisor still ignoring it would read that as
    # a crash. Set before the children start, so they begin with the default too (exec resets a handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stack.start()
        while stack.healthy():
            time.sleep(1)
        print(_say(Msg("a process of the stack stopped; shutting down"), args), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


def cmd_settle(args: argparse.Namespace) -> int:
    from activities.settlement.command import settle_command
    from activities.settlement.errors import SettlementError
    from activities.settlement.orders_csv import OrdersFileError

    try:
        result = settle_command(args.plan, args.start, args.end, orders_path=args.orders, kpis_path=args.kpis,
                                skip_invalid=args.skip_invalid)
    except OrdersFileError as exc:  # every problem on its own line, with its line number
        print(f"tideflow: {_say(exc.message, args)}", file=sys.stderr)
        return 1
    except SettlementError as exc:
        raise CliError(_said(exc, squash=True)) from None
    _print(result)
    for skipped in result.get("skipped", []):  # settled without these rows: say so where a person looks
        print("tideflow: " + _say(Msg("skipped line %(line)s: %(problem)s", line=skipped["line"],
                                      problem=skipped["problem"]), args), file=sys.stderr)
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from decisions.decide import DecideError, decide

    try:
        _print(decide(args.file, args.input, args.decision, args.allow_missing))
    except DecideError as exc:
        raise CliError(_said(exc, squash=True)) from None
    return 0


def cmd_loyalty_backfill(args: argparse.Namespace) -> int:
    from activities.loyalty.backfill import backfill_orders

    def progress(stats: object) -> None:
        print(_say(Msg("… %(orders)s orders read, %(booked)s booked", orders=format(getattr(stats, "orders", 0), ","),
                       booked=format(getattr(stats, "booked", 0), ",")), args), file=sys.stderr, flush=True)

    stats = backfill_orders(args.database_url, batch=args.batch, progress=progress if args.progress else None)
    _print({"orders": stats.orders, "booked": stats.booked, "points": stats.points, "batches": stats.batches})
    return 0


def parser(lang: Language = "en") -> argparse.ArgumentParser:
    """The command line, its descriptions and help texts in ``lang`` (argparse's own words — "usage:",
    "options" — are Python's, from its gettext)."""
    from designer.i18n import translate

    def _(text: Msg) -> str:
        return translate(text, lang)

    p = argparse.ArgumentParser(prog="tideflow", description=_(Msg("Tideflow: SCRM automation engine")))
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help=_(Msg("start the embedded stack: Temporal dev server, worker, web on :8000")))
    up.add_argument("--no-demo", action="store_true", help=_(Msg("do not publish demo flows and customers")))
    up.add_argument("--one-process", action="store_true", help=_(Msg("run the worker inside the web process, where "
                    "journeys start eagerly (TIDEFLOW_WORKER_IN_WEB=true)")))
    up.set_defaults(func=cmd_up)
    sub.add_parser("worker", help=_(Msg("run a worker"))).set_defaults(func=cmd_worker)
    web = sub.add_parser("web", help=_(Msg("run the web app (API and designer)")))
    web.add_argument("--host")
    web.add_argument("--port", type=int)
    web.set_defaults(func=cmd_web)

    db = sub.add_parser("db", help=_(Msg("database"))).add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help=_(Msg("migrate the schema to the newest version"))).set_defaults(func=cmd_db_upgrade)

    flows = sub.add_parser("flows", help=_(Msg("validate, publish and export flows"))).add_subparsers(
        dest="flows_command", required=True)
    v = flows.add_parser("validate", help=_(Msg("check a flow file; exit 1 listing every problem")))
    v.add_argument("file")
    v.set_defaults(func=cmd_flows_validate)
    pub = flows.add_parser("publish", help=_(Msg("save and publish a flow file as the next version")))
    pub.add_argument("file")
    pub.add_argument("--actor", default="cli")
    pub.set_defaults(func=cmd_flows_publish)
    ex = flows.add_parser("export", help=_(Msg("print a flow's document (the draft, or --version N)")))
    ex.add_argument("id")
    ex.add_argument("--version", type=int)
    ex.set_defaults(func=cmd_flows_export)

    events = sub.add_parser("events", help=_(Msg("send events"))).add_subparsers(dest="events_command", required=True)
    send = events.add_parser("send", help=_(Msg("ingest events from a JSON file (object or array; - for stdin)")))
    send.add_argument("file")
    send.set_defaults(func=cmd_events_send)

    conn = sub.add_parser("connectors", help=_(Msg("shop connectors"))).add_subparsers(dest="connectors_command",
                                                                               required=True)
    cs = conn.add_parser("sync", help=_(Msg("poll a Taobao/JD connector once (orders and refunds since its cursor)")))
    cs.add_argument("id", help=_(Msg("the connector's id")))
    cs.add_argument("--from-now", action="store_true",
                    help=_(Msg("move the cursors to now first: skip what changed while the sync was off")))
    cs.set_defaults(func=cmd_connectors_sync)

    sim = sub.add_parser("simulate", help=_(Msg("preview a flow for one customer on the time-skipping server")))
    sim.add_argument("file")
    sim.add_argument("--events", help=_(Msg('JSON file: [{"at": "day 3", "type": "order.paid", "payload": {}}]')))
    sim.add_argument("--customer", help=_(Msg('JSON file: {"name": ..., "attributes": {...}, "tags": [...]}')))
    sim.add_argument("--days", type=int, default=30)
    sim.add_argument("--json", action="store_true", help=_(Msg("print the whole result as JSON")))
    sim.set_defaults(func=cmd_simulate)

    users = sub.add_parser("users", help=_(Msg("manage users"))).add_subparsers(dest="users_command", required=True)
    uc = users.add_parser("create", help=_(Msg("create a user")))
    uc.add_argument("username")
    uc.add_argument("--role", required=True, help=_(Msg("admin, marketer, ops, agent, finance or developer")))
    uc.add_argument("--password", help=_(Msg("(default: prompt, or generate and print when not interactive)")))
    uc.add_argument("--name", help=_(Msg("display name")))
    uc.add_argument("--token", action="store_true", help=_(Msg("also create and print an API token")))
    uc.set_defaults(func=cmd_users_create)
    ut = users.add_parser("token", help=_(Msg("create an API token for a user")))
    ut.add_argument("username")
    ut.add_argument("--name", default="cli")
    ut.set_defaults(func=cmd_users_token)
    ud = users.add_parser("disable", help=_(Msg("disable a user: end their sessions and revoke their API tokens")))
    ud.add_argument("username")
    ud.set_defaults(func=cmd_users_disable)

    st = sub.add_parser("settle", help=_(Msg("settle one period and print the statements as JSON (amounts in yuan)")))
    st.add_argument("--plan", required=True, help=_(Msg("settlement plan JSON (docs/settlement.md)")))
    st.add_argument("--orders", help=_(Msg("orders CSV: a dry run on a throwaway database (default: the order table, "
                                     "and the run is kept)")))
    st.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help=_(Msg("first day of the period")))
    st.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help=_(Msg("last day of the period")))
    st.add_argument("--kpis", help=_(Msg('JSON file: {"party": {"completion_rate": "0.95"}}')))
    st.add_argument("--skip-invalid", action="store_true",
                    help=_(Msg("settle the file's good rows and report the rest (default: any bad row refuses "
                               "the file)")))
    st.set_defaults(func=cmd_settle)

    de = sub.add_parser("decide", help=_(Msg("evaluate a DMN decision table (.dmn, or .json) and print the result "
                                             "as JSON")))
    de.add_argument("file", help=_(Msg("a DMN 1.x file from Camunda Modeler, or a table / node config as JSON")))
    de.add_argument("--input", required=True, help=_(Msg('JSON object, e.g. \'{"amount": 6000, "vip": "gold"}\' '
                                                  "(nested or dotted keys), or @file.json")))
    de.add_argument("--decision", help=_(Msg("the <decision id> to evaluate when the file holds several")))
    de.add_argument("--allow-missing", action="store_true", help=_(Msg("treat inputs not given as null")))
    de.set_defaults(func=cmd_decide)

    loyalty = sub.add_parser("loyalty", help=_(Msg("points and tiers"))).add_subparsers(dest="loyalty_command",
                                                                              required=True)
    lb = loyalty.add_parser("backfill", help=_(Msg("book historical paid orders into the points ledger (idempotent: "
                                             "orders already booked are skipped)")))
    lb.add_argument("--batch", type=int, default=5000, help=_(Msg("orders per transaction (default 5000)")))
    lb.add_argument("--progress", action="store_true", help=_(Msg("print progress to stderr")))
    lb.add_argument("--database-url", default=None, help=_(Msg("default: the configured database")))
    lb.set_defaults(func=cmd_loyalty_backfill)

    plugin = sub.add_parser("plugin", help=_(Msg("write your own node types"))).add_subparsers(
        dest="plugin_command", required=True)
    pn = plugin.add_parser("new", help=_(Msg("scaffold a plugin package with one sample node type")))
    pn.add_argument("name", help=_(Msg("kebab-case, e.g. acme-points (package tideflow_acme_points)")))
    pn.add_argument("--dir", default=".", help=_(Msg("where to create the NAME directory (default: here)")))
    pn.set_defaults(func=cmd_plugin_new)
    return p


def main(argv: list[str] | None = None) -> int:
    from designer.i18n import LANG_VARIABLE, UnknownLanguage, environment_language, translate

    try:
        lang = environment_language(os.environ)
    except UnknownLanguage as exc:  # said in the locale's language, the variable set aside
        said = environment_language({k: v for k, v in os.environ.items() if k != LANG_VARIABLE})
        print(f"tideflow: {translate(exc.message, said)}; {translate(exc.fix, said)}", file=sys.stderr)
        return 2
    args = parser(lang).parse_args(argv)
    args.language = lang
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"tideflow: {translate(exc.message, lang)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
