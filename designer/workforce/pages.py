"""The workforce pages: staff and their handovers (plan, who cannot move, execute, progress), customer groups
and mass sends (the allowance before sending, per-sender confirmation, per-group results), the conversation
archive (watermarked with the viewer's name and the time, every view audited) and compliance (word lists,
the hits dashboard).

Thin routes over :mod:`activities.workforce` (the services) drawn with the page kit; text in
:mod:`designer.workforce.text`. Every change by a person is audited (``engine.auth.audit``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from activities.workforce import chat_archive, compliance, groups, handovers, mass_sends
from activities.workforce import staff as staff_service
from activities.workforce.common import WorkforceError, wecom_client, wecom_refusal
from activities.workforce.handover import Strategy
from activities.workforce.mass_sends import Audience, MassSendIn
from activities.workforce.quota import POLICIES
from activities.workforce.runtime import create_mass_send, start_handover
from activities.workforce.workflows import handover_workflow_id
from connectors.wecom.api_errors import ApiError as PlatformError
from designer import i18n
from designer.errors import validation_text
from designer.i18n import _, translate
from designer.pages import DbUrl, PageProblem, PageRoute, page_user, render, see_other, with_query
from designer.permissions import COMPLIANCE_OFFICERS, MASS_SENDERS, WORKFORCE_ADMINS
from designer.workforce import labels as _labels  # noqa: F401  (its status labels)
from designer.workforce.api import mass_send_view
from engine import auth
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.text import MsgError

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Supervisor = Annotated[User, Depends(page_user(*WORKFORCE_ADMINS))]
Sender = Annotated[User, Depends(page_user(*MASS_SENDERS))]
Officer = Annotated[User, Depends(page_user(*COMPLIANCE_OFFICERS))]
T = TypeVar("T")


def connector_ids(db_url: str) -> list[str]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.ConnectorConfig.id).where(
            models.ConnectorConfig.kind == "wecom", models.ConnectorConfig.enabled.is_(True))
            .order_by(models.ConnectorConfig.id)))


def connector_of(user: User, db_url: str, back: str = "/workforce") -> str:
    found = connector_ids(db_url)
    if not found:
        raise PageProblem(409, user, _("Cannot do that"),
                          _("No WeCom connector is enabled yet: configure one under Connectors first."), back=back)
    return found[0]


def problem(user: User, back: str, exc: MsgError | PlatformError) -> PageProblem:
    """A service's refusal as the problem page, with the status of what kind of refusal it is (docs/workforce.md,
    "Refusals"): bad input 422 and something missing 404 (the field and the fix), a state that does not allow it
    409, WeCom refused 502 ("WeCom refused", its errcode and what to check), WeCom busy or Temporal not reachable
    503 (with Retry-After). A WeCom error answer is read by :func:`~activities.workforce.common.wecom_refusal`.
    Any other ValueError is not a refusal but a fault of Tideflow's: it is not caught, and answers 500."""
    refused = wecom_refusal(exc) if isinstance(exc, PlatformError) else exc
    status = refused.status if 400 <= refused.status < 600 else 500
    title = _("Not possible right now") if status == 503 else _("WeCom refused") if status == 502 \
        else _("Cannot do that")
    return PageProblem(status, user, title, translate(refused.message), translate(refused.fix), back=back)


def invalid(user: User, back: str, exc: ValidationError) -> PageProblem:
    """A form the services' models refused: 422, each problem with its field, and how to fix the first."""
    said, fix = validation_text(exc)
    return PageProblem(422, user, _("Cannot do that"), said, fix, back=back)


async def call(user: User, back: str, work: Callable[[], T]) -> T:
    """Run a service call in a thread; its refusal becomes the problem page (what and how to fix it)."""
    try:
        return await run_in_threadpool(work)
    except (MsgError, PlatformError) as exc:
        raise problem(user, back, exc) from None


def temporal(request: Request, user: User, back: str) -> tuple[Any, str]:
    router_ = request.app.state.router
    if router_ is None:
        raise PageProblem(503, user, _("Not possible right now"),
                          _("The workflow engine (Temporal) is not reachable, so nothing was done or saved."),
                          _("Try again in a minute. If this keeps happening, ask an admin to check that Temporal "
                            "and the tideflow worker are running."), back=back)
    return router_.client, router_.task_queue


def audit(db_url: str, user: User, action: str, target: str, **detail: Any) -> None:
    with transaction(db_url) as db:
        auth.audit(db, user, action, target, detail)


# -- staff and handovers --------------------------------------------------------------------------------


@router.get("/workforce", response_class=HTMLResponse)
def overview(request: Request, user: Supervisor, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        staff = [staff_service.view(s) for s in db.scalars(select(wf.WeComStaff).order_by(
            wf.WeComStaff.status, wf.WeComStaff.userid))]
        recent = list(db.scalars(select(wf.Handover).order_by(wf.Handover.id.desc()).limit(30)))
    return render(request, user, "workforce/overview.html", staff=staff, handovers=recent,
                  connectors=connector_ids(db_url))


@router.post("/workforce/staff/depart", response_class=HTMLResponse)
async def depart(request: Request, user: Supervisor, db_url: DbUrl,
                 userid: Annotated[str, Form(min_length=1, max_length=64)],
                 strategy: Annotated[str, Form(max_length=20)] = "round_robin",
                 colleague: Annotated[str, Form(max_length=64)] = "",
                 departed: Annotated[str, Form(max_length=5)] = "yes") -> Response:
    """Mark a member departed (or reassign an employed member's customers) and plan the handover."""
    connector_id = connector_of(user, db_url)
    try:
        chosen = Strategy.model_validate({"kind": strategy, "colleague": colleague.strip() or None})
    except ValidationError as exc:
        raise invalid(user, "/workforce", exc) from None

    def work() -> int:
        client, _ = wecom_client(db_url, connector_id)
        return handovers.create_plan(db_url, connector_id, client, userid.strip(), strategy=chosen, now=utcnow(),
                                     created_by=user.username, trigger="admin", departed=departed == "yes")

    handover_id = await call(user, "/workforce", work)
    audit(db_url, user, "workforce.handover_planned", f"handover:{handover_id}", userid=userid,
          strategy=chosen.kind, departed=departed == "yes")
    return see_other(f"/workforce/handovers/{handover_id}")


@router.get("/workforce/handovers/{handover_id}", response_class=HTMLResponse)
def handover_page(request: Request, handover_id: int, user: Supervisor, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        found = db.get(wf.Handover, handover_id)
        if found is None:
            raise PageProblem(404, user, _("Not found"), _("There is no handover %(id)s.") % {"id": handover_id},
                              back="/workforce")
        view = handovers.view(db, found, limit=1000)
        old_user = staff_service.user_id_of(db, found.connector_id, found.handover_userid)
        moved = list(db.scalars(select(models.TicketEvent).where(
            models.TicketEvent.actor == "handover", models.TicketEvent.kind.in_(("transferred", "assigned", "queued")))
            .order_by(models.TicketEvent.id.desc()).limit(50)))
        tickets = {t.id: t for t in db.scalars(select(models.Ticket).where(
            models.Ticket.id.in_([e.ticket_id for e in moved])))}
        names = {u.id: u.display_name or u.username for u in db.scalars(select(models.User))}
        warnings = list(found.warnings)  # as kept (wording.stored): the page says them in the reader's language
    return render(request, user, "workforce/handover.html", h=view, old_user=old_user, warnings=warnings,
                  moved=[{"ticket": tickets[e.ticket_id], "kind": e.kind, "at": e.at,
                          "to": names.get(tickets[e.ticket_id].assignee_id or 0, "—")}
                         for e in moved if e.ticket_id in tickets])


@router.post("/workforce/handovers/{handover_id}/execute", response_class=HTMLResponse)
async def execute(request: Request, handover_id: int, user: Supervisor, db_url: DbUrl) -> Response:
    back = f"/workforce/handovers/{handover_id}"
    client, queue = temporal(request, user, back)
    try:
        await start_handover(client, db_url, queue, handover_id)
    except WorkforceError as exc:
        raise problem(user, back, exc) from None
    audit(db_url, user, "workforce.handover_executed", f"handover:{handover_id}")
    # the departing member's tickets move in the workflow's first step: give it a moment before showing the page
    for _attempt in range(40):
        with session_factory(db_url)() as db:
            found = db.get(wf.Handover, handover_id)
            if found is not None and found.status != "planned":
                break
        await asyncio.sleep(0.1)
    return see_other(back)


@router.post("/workforce/handovers/{handover_id}/cancel", response_class=HTMLResponse)
async def cancel_handover(request: Request, handover_id: int, user: Supervisor, db_url: DbUrl) -> Response:
    back = f"/workforce/handovers/{handover_id}"
    client, _ = temporal(request, user, back)
    await client.get_workflow_handle(handover_workflow_id(handover_id)).signal("cancel")
    audit(db_url, user, "workforce.handover_cancelled", f"handover:{handover_id}")
    return see_other(back)


# -- groups and mass sends --------------------------------------------------------------------------------


@router.get("/workforce/groups", response_class=HTMLResponse)
def groups_page(request: Request, user: Sender, db_url: DbUrl, synced: str = "") -> HTMLResponse:
    connector_id = connector_of(user, db_url)
    with session_factory(db_url)() as db:
        rows = groups.view(db, connector_id, limit=500)
    _lang = i18n.current_language()
    notice = _("%(groups)s groups synced.") % {"groups": synced} if synced.isdigit() else None
    return render(request, user, "workforce/groups.html", groups=rows, notice=notice)


@router.post("/workforce/groups/sync", response_class=HTMLResponse)
async def sync_groups(request: Request, user: Sender, db_url: DbUrl) -> Response:
    from activities.workforce.common import store_events

    connector_id = connector_of(user, db_url)

    def work() -> int:  # the events are routed by this process's pipeline as soon as they are stored
        client, _ = wecom_client(db_url, connector_id)
        result = groups.sync_all(db_url, client, connector_id, utcnow())
        store_events(db_url, connector_id, result["events"])
        return int(result["groups"])

    count = await call(user, "/workforce/groups", work)
    audit(db_url, user, "workforce.groups_synced", connector_id, groups=count)
    return see_other(with_query("/workforce/groups", synced=str(count)))


def _send_form(chat_type: str, text: str, attachments: str, chat_ids: list[str], expression: str, tags: str,
               connector_id: str) -> MassSendIn:
    return MassSendIn.model_validate({"connector_id": connector_id, "chat_type": chat_type, "text": text,
                                      "attachments": [u.strip() for u in attachments.splitlines() if u.strip()],
                                      "chat_ids": chat_ids, "audience": Audience(
                                          expression=expression.strip() or None,
                                          tags_any=[x.strip() for x in tags.split(",") if x.strip()])})


@router.get("/workforce/mass-sends", response_class=HTMLResponse)
def mass_sends_page(request: Request, user: Sender, db_url: DbUrl) -> HTMLResponse:
    connector_id = connector_of(user, db_url)
    with session_factory(db_url)() as db:
        sends = list(db.scalars(select(wf.MassSend).where(wf.MassSend.connector_id == connector_id)
                                .order_by(wf.MassSend.id.desc()).limit(50)))
        group_rows = [g for g in groups.view(db, connector_id, limit=500) if g["status"] == "active"]
    return render(request, user, "workforce/mass_sends.html", sends=sends, groups=group_rows, preview=None, form={})


@router.post("/workforce/mass-sends", response_class=HTMLResponse)
async def create_send(request: Request, user: Sender, db_url: DbUrl,
                      chat_type: Annotated[str, Form(max_length=10)] = "group",
                      text: Annotated[str, Form(max_length=4000)] = "",
                      attachments: Annotated[str, Form(max_length=9000)] = "",
                      chat_ids: Annotated[list[str] | None, Form(max_length=2000)] = None,
                      expression: Annotated[str, Form(max_length=2000)] = "",
                      tags: Annotated[str, Form(max_length=2000)] = "",
                      action: Annotated[str, Form(max_length=10)] = "preview") -> Response:
    """Preview the allowance (action preview) or create the mass send and start it (action send)."""
    connector_id = connector_of(user, db_url)
    try:
        payload = _send_form(chat_type, text, attachments, chat_ids or [], expression, tags, connector_id)
    except ValidationError as exc:
        raise invalid(user, "/workforce/mass-sends", exc) from None
    if action != "send":
        def preview() -> dict[str, Any]:
            with session_factory(db_url)() as db:
                return mass_sends.preview(db, payload, utcnow())

        shown = await call(user, "/workforce/mass-sends", preview)
        with session_factory(db_url)() as db:
            sends = list(db.scalars(select(wf.MassSend).where(wf.MassSend.connector_id == connector_id)
                                    .order_by(wf.MassSend.id.desc()).limit(50)))
            group_rows = [g for g in groups.view(db, connector_id, limit=500) if g["status"] == "active"]
        _lang = i18n.current_language()
        shown["policy_label"] = POLICIES.get(shown["policy"], {}).get(_lang, shown["policy"])
        return render(request, user, "workforce/mass_sends.html", sends=sends, groups=group_rows, preview=shown,
                      form={"chat_type": chat_type, "text": text, "attachments": attachments,
                            "chat_ids": chat_ids or [], "expression": expression, "tags": tags})
    client, queue = temporal(request, user, "/workforce/mass-sends")
    try:  # stored and started, or neither (the page says Temporal is not reachable and nothing was saved)
        send_id = await create_mass_send(client, db_url, queue, payload, user.username, utcnow())
    except MsgError as exc:
        raise problem(user, "/workforce/mass-sends", exc) from None
    audit(db_url, user, "workforce.mass_send_created", f"mass-send:{send_id}", chat_type=chat_type)
    for _attempt in range(40):  # the first step creates the senders' tasks: show them when they are there
        with session_factory(db_url)() as db:
            if db.scalar(select(wf.MassSendTask.id).where(wf.MassSendTask.mass_send_id == send_id).limit(1)):
                break
        await asyncio.sleep(0.1)
    return see_other(f"/workforce/mass-sends/{send_id}")


@router.get("/workforce/mass-sends/{send_id}", response_class=HTMLResponse)
def mass_send_page(request: Request, send_id: int, user: Sender, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        found = db.get(wf.MassSend, send_id)
        if found is None:
            raise PageProblem(404, user, _("Not found"), _("There is no mass send %(id)s.") % {"id": send_id},
                              back="/workforce/mass-sends")
        view = mass_send_view(db, user, found)
    return render(request, user, "workforce/mass_send.html", s=view)


# -- the archive viewer -------------------------------------------------------------------------------------


@router.get("/workforce/archive", response_class=HTMLResponse)
def archive_page(request: Request, user: Officer, db_url: DbUrl, customer_id: str = "") -> HTMLResponse:
    """One customer's archived chats, watermarked with the viewer and the time; the view is audited."""
    customer_id = customer_id.strip()[:40]
    messages: list[dict[str, Any]] = []
    if customer_id:
        connector_id = connector_of(user, db_url)
        with session_factory(db_url)() as db:
            messages = chat_archive.conversation(db, connector_id, customer_id=customer_id, limit=200)
        audit(db_url, user, "workforce.archive_viewed", f"customer:{customer_id}", messages=len(messages))
    now = utcnow()
    return render(request, user, "workforce/archive.html", customer_id=customer_id, messages=messages,
                  viewer=user.display_name or user.username, viewed_at=now)


# -- compliance -------------------------------------------------------------------------------------------


@router.get("/workforce/compliance", response_class=HTMLResponse)
def compliance_page(request: Request, user: Officer, db_url: DbUrl, pulled: str = "") -> HTMLResponse:
    now = utcnow()
    with session_factory(db_url)() as db:
        lists = compliance.lists_view(db)
        board = compliance.dashboard(db, now - timedelta(days=30), now)
        recent = list(db.scalars(select(wf.SensitiveHit).order_by(wf.SensitiveHit.id.desc()).limit(50)))
    _lang = i18n.current_language()
    notice = None
    if pulled:
        parts = dict(p.split(":", 1) for p in pulled.split(",") if ":" in p)
        notice = _("%(fetched)s fetched, %(stored)s stored, %(hits)s hits.") % {
            "fetched": parts.get("f", "0"), "stored": parts.get("s", "0"), "hits": parts.get("h", "0")}
    return render(request, user, "workforce/compliance.html", lists=lists, board=board, recent=recent, notice=notice)


@router.post("/workforce/compliance/lists", response_class=HTMLResponse)
async def add_list(request: Request, user: Officer, db_url: DbUrl,
                   team: Annotated[str, Form(max_length=80)] = "",
                   name: Annotated[str, Form(max_length=200)] = "",
                   direction: Annotated[str, Form(max_length=10)] = "both",
                   departments: Annotated[str, Form(max_length=500)] = "") -> Response:
    def work() -> int:
        depts = [int(d) for d in departments.replace("，", ",").split(",") if d.strip().isdigit()]
        with transaction(db_url) as db:
            return compliance.save_list(db, team=team, name=name, direction=direction, departments=depts,
                                        actor=user.username).id

    list_id = await call(user, "/workforce/compliance", work)
    audit(db_url, user, "workforce.word_list_saved", f"word-list:{list_id}", team=team, name=name)
    return see_other("/workforce/compliance")


@router.post("/workforce/compliance/lists/{list_id}/words", response_class=HTMLResponse)
async def add_word(request: Request, list_id: int, user: Officer, db_url: DbUrl,
                   pattern: Annotated[str, Form(max_length=200)] = "",
                   kind: Annotated[str, Form(max_length=10)] = "keyword",
                   severity: Annotated[str, Form(max_length=10)] = "medium") -> Response:
    def work() -> int:
        with transaction(db_url) as db:
            return compliance.add_words(db, list_id, [(pattern, kind, severity)])

    added = await call(user, "/workforce/compliance", work)
    audit(db_url, user, "workforce.word_added", f"word-list:{list_id}", kind=kind, severity=severity, added=added)
    return see_other("/workforce/compliance")


@router.post("/workforce/compliance/pull", response_class=HTMLResponse)
async def pull_now(request: Request, user: Officer, db_url: DbUrl) -> Response:
    """Pull the archive now (besides the msgaudit_notify callback and the periodic catch-up), then alert."""
    connector_id = connector_of(user, db_url)

    def work() -> dict[str, Any]:
        sdk = chat_archive.sdk_for(db_url, connector_id)
        stats = chat_archive.pull(db_url, connector_id, sdk, utcnow())
        compliance.deliver_alerts(db_url, connector_id)
        return stats

    stats = await call(user, "/workforce/compliance", work)
    audit(db_url, user, "workforce.archive_pulled", connector_id, fetched=stats["fetched"])
    return see_other(with_query("/workforce/compliance",
                                pulled=f"f:{stats['fetched']},s:{stats['stored']},h:{stats['hits']}"))
