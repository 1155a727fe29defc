"""The workforce JSON API (``/api/workforce/…``): handovers, groups, mass sends, the conversation archive and
compliance. Thin routes over :mod:`activities.workforce`; a refusal is a 4xx naming the field and the fix.
Every change by a person and every archive read is audited."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from activities.workforce import chat_archive, compliance, groups, handovers, mass_sends
from activities.workforce.common import WorkforceError, wecom_client, wecom_refusal
from activities.workforce.handover import Strategy
from activities.workforce.mass_sends import MassSendIn
from activities.workforce.runtime import create_mass_send as create_mass_send_started
from activities.workforce.runtime import start_handover
from activities.workforce.workflows import handover_workflow_id, mass_send_workflow_id
from connectors.wecom.api_errors import ApiError as PlatformError
from designer import reading
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import COMPLIANCE_OFFICERS, MASS_SENDERS, WORKFORCE_ADMINS
from engine import auth
from engine.db import workforce_models as wf
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.text import Msg

router = APIRouter(prefix="/api/workforce", tags=["workforce"])
DbUrl = Annotated[str, Depends(get_db_url)]
Supervisor = Annotated[User, Depends(require(*WORKFORCE_ADMINS))]
Sender = Annotated[User, Depends(require(*MASS_SENDERS))]
Officer = Annotated[User, Depends(require(*COMPLIANCE_OFFICERS))]


def _refused(exc: WorkforceError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.fix, exc.field)


async def _run(work: Any) -> Any:
    """Run a service call in a thread; a refusal answers with its status, a WeCom error answer as
    :func:`~activities.workforce.common.wecom_refusal` reads it (502 refused, 503 busy)."""
    try:
        return await run_in_threadpool(work)
    except WorkforceError as exc:
        raise _refused(exc) from None
    except PlatformError as exc:
        raise _refused(wecom_refusal(exc)) from None


def _temporal(request: Request) -> tuple[Any, str]:
    router_ = request.app.state.router
    if router_ is None:
        raise ApiError(503, Msg("the workflow engine (Temporal) is not reachable: nothing was stored or started"),
                       Msg("send the request again after Retry-After seconds; if this keeps happening, check that "
                           "Temporal is running and reachable at TEMPORAL_ADDRESS (GET /readyz says)"), "temporal")
    return router_.client, router_.task_queue


def _audit(db_url: str, user: User, action: str, target: str, **detail: Any) -> None:
    with transaction(db_url) as db:
        auth.audit(db, user, action, target, detail)


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connector_id: str = Field(min_length=1, max_length=80)
    userid: str = Field(min_length=1, max_length=64, description="the member whose customers and groups move")
    strategy: Strategy | None = Field(default=None, description="default: the corp's default strategy")
    departed: bool = Field(default=True, description="the member leaves (their open tickets move at once)")
    transfer_success_msg: str | None = Field(default=None, max_length=200,
                                             description="in-service transfers: what the customer is told")


@router.post("/handovers", status_code=201)
async def plan_handover(body: HandoverIn, user: Supervisor, db_url: DbUrl) -> dict[str, Any]:
    """Plan a handover: who goes to whom, who cannot move and why. Nothing is sent until it is executed."""
    def work() -> dict[str, Any]:
        client, _ = wecom_client(db_url, body.connector_id)
        handover_id = handovers.create_plan(db_url, body.connector_id, client, body.userid, strategy=body.strategy,
                                            now=utcnow(), created_by=user.username, trigger="api",
                                            departed=body.departed, transfer_success_msg=body.transfer_success_msg)
        with session_factory(db_url)() as db:
            return handovers.view(db, handovers.get(db, handover_id))

    view: dict[str, Any] = await _run(work)
    _audit(db_url, user, "workforce.handover_planned", f"handover:{view['id']}", userid=body.userid)
    return view


@router.get("/handovers/{handover_id}")
def get_handover(handover_id: int, user: Supervisor, db_url: DbUrl,
                 status: Annotated[str | None, Query(max_length=16)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                 offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """The plan and its progress; ``status`` filters the items (blocked, sent, done, refused …)."""
    with session_factory(db_url)() as db:
        try:
            return handovers.view(db, handovers.get(db, handover_id), items_status=status, limit=limit, offset=offset)
        except WorkforceError as exc:
            raise _refused(exc) from None


@router.post("/handovers/{handover_id}/execute", status_code=202)
async def execute_handover(request: Request, handover_id: int, user: Supervisor, db_url: DbUrl) -> dict[str, str]:
    client, queue = _temporal(request)
    try:
        workflow_id = await start_handover(client, db_url, queue, handover_id)
    except WorkforceError as exc:
        raise _refused(exc) from None
    _audit(db_url, user, "workforce.handover_executed", f"handover:{handover_id}")
    return {"workflow_id": workflow_id}


@router.post("/handovers/{handover_id}/cancel", status_code=202)
async def cancel_handover(request: Request, handover_id: int, user: Supervisor, db_url: DbUrl) -> dict[str, str]:
    client, _ = _temporal(request)
    await client.get_workflow_handle(handover_workflow_id(handover_id)).signal("cancel")
    _audit(db_url, user, "workforce.handover_cancelled", f"handover:{handover_id}")
    return {"status": "cancelling"}


@router.get("/groups")
def list_groups(user: Sender, db_url: DbUrl, connector_id: Annotated[str, Query(min_length=1, max_length=80)],
                owner: Annotated[str | None, Query(max_length=64)] = None) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return groups.view(db, connector_id, owner=owner, limit=1000)


@router.post("/mass-sends/preview")
async def preview_mass_send(body: MassSendIn, user: Sender, db_url: DbUrl) -> dict[str, Any]:
    """Before sending: recipients, who is within the allowance and who is at the limit, per sender."""
    def work() -> dict[str, Any]:
        with session_factory(db_url)() as db:
            return mass_sends.preview(db, body, utcnow())

    return dict(await _run(work))


@router.post("/mass-sends", status_code=201, responses={
    503: {"description": "the workflow engine is not reachable: nothing was stored; send again after Retry-After"}})
async def create_mass_send(request: Request, body: MassSendIn, user: Sender, db_url: DbUrl) -> dict[str, Any]:
    """Store the mass send and start its workflow, both or neither (a 503 with Retry-After when Temporal is not
    reachable)."""
    client, queue = _temporal(request)
    try:
        send_id = await create_mass_send_started(client, db_url, queue, body, user.username, utcnow())
    except WorkforceError as exc:
        raise _refused(exc) from None
    _audit(db_url, user, "workforce.mass_send_created", f"mass-send:{send_id}", chat_type=body.chat_type)
    with session_factory(db_url)() as db:
        found = db.get(wf.MassSend, send_id)
        assert found is not None
        return mass_sends.view(db, found)


@router.get("/mass-sends/{send_id}")
def get_mass_send(send_id: int, user: Sender, db_url: DbUrl) -> dict[str, Any]:
    """Per sender: waiting for confirmation or sent; per recipient (customer or group): the outcome."""
    with session_factory(db_url)() as db:
        found = db.get(wf.MassSend, send_id)
        if found is None:
            raise ApiError(404, Msg("mass send %(send_id)s does not exist", send_id=send_id), Msg("check the id"), "id")
        return mass_send_view(db, user, found)


def mass_send_view(db: Session, user: User, send: wf.MassSend) -> dict[str, Any]:
    """A mass send with its recipients as ``user`` may see them: a one-to-one send's recipients are customers'
    WeCom ids (``external_userid``), personal data the read policy masks for marketers."""
    view = mass_sends.view(db, send)
    if send.chat_type == "single":
        recipients = view["recipients"]
        seen = reading.identities_for(db, reading.reader_of(db, user), (
            (r["customer_id"], "wecom_external_userid", r["recipient"]) for r in recipients))
        view["recipients"] = [{**r, "recipient": value} for r, value in zip(recipients, seen, strict=True)]
    return view


@router.post("/mass-sends/{send_id}/cancel", status_code=202)
async def cancel_mass_send(request: Request, send_id: int, user: Sender, db_url: DbUrl) -> dict[str, str]:
    client, _ = _temporal(request)
    await client.get_workflow_handle(mass_send_workflow_id(send_id)).signal("cancel")
    _audit(db_url, user, "workforce.mass_send_cancelled", f"mass-send:{send_id}")
    return {"status": "cancelling"}


@router.get("/archive")
def archive(user: Officer, db_url: DbUrl, connector_id: Annotated[str, Query(min_length=1, max_length=80)],
            customer_id: Annotated[str | None, Query(max_length=40)] = None,
            staff: Annotated[str | None, Query(max_length=64)] = None,
            roomid: Annotated[str | None, Query(max_length=120)] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Archived chats (masked), audited: who read whose conversation, when."""
    with session_factory(db_url)() as db:
        try:
            messages = chat_archive.conversation(db, connector_id, customer_id=customer_id, staff=staff,
                                                 roomid=roomid, limit=limit)
        except WorkforceError as exc:
            raise _refused(exc) from None
    _audit(db_url, user, "workforce.archive_viewed", f"customer:{customer_id or ''}|staff:{staff or ''}|"
           f"room:{roomid or ''}", messages=len(messages))
    return {"viewer": user.display_name or user.username, "viewed_at": utcnow().isoformat(), "messages": messages}


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connector_id: str = Field(min_length=1, max_length=80)
    version: int = Field(ge=1, description="publickey_ver: the version WeCom shows for the public key")
    pem: str = Field(min_length=100, max_length=10_000, description="the RSA private key (PEM, PKCS#1 or PKCS#8)",
                     json_schema_extra={"writeOnly": True})


@router.post("/archive/keys", status_code=201)
def add_key(body: KeyIn, user: Annotated[User, Depends(require())], db_url: DbUrl) -> dict[str, Any]:
    """Add an archive private key version (admins only; stored encrypted, shown only as a fingerprint)."""
    with transaction(db_url) as db:
        try:
            saved = chat_archive.add_key(db, body.connector_id, body.version, body.pem, user.username, utcnow())
        except WorkforceError as exc:
            raise _refused(exc) from None
        auth.audit(db, user, "workforce.archive_key_added", f"{body.connector_id}:v{body.version}",
                   {"fingerprint": saved["fingerprint"]})
    return saved


class WordListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str = Field(min_length=1, max_length=80)
    name: str = Field(min_length=1, max_length=200)
    direction: Literal["staff", "customer", "both"] = "both"
    departments: list[int] = Field(default_factory=list, max_length=500)
    members: list[str] = Field(default_factory=list, max_length=5000)
    enabled: bool = True


class WordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str = Field(min_length=1, max_length=200)
    kind: Literal["keyword", "regex"] = "keyword"
    severity: Literal["low", "medium", "high", "critical"] = "medium"


@router.get("/word-lists")
def word_lists(user: Officer, db_url: DbUrl, team: Annotated[str | None, Query(max_length=80)] = None
               ) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return compliance.lists_view(db, team)


@router.post("/word-lists", status_code=201)
def create_word_list(body: WordListIn, user: Officer, db_url: DbUrl) -> dict[str, int]:
    with transaction(db_url) as db:
        try:
            row = compliance.save_list(db, team=body.team, name=body.name, direction=body.direction,
                                       departments=body.departments, members=body.members, enabled=body.enabled,
                                       actor=user.username)
        except WorkforceError as exc:
            raise _refused(exc) from None
        auth.audit(db, user, "workforce.word_list_saved", f"word-list:{row.id}", {"team": body.team})
        return {"id": row.id}


@router.post("/word-lists/{list_id}/words", status_code=201)
def add_words(list_id: int, body: list[WordIn], user: Officer, db_url: DbUrl) -> dict[str, int]:
    """Add words (a regex must be one RE2 can run; duplicates are skipped)."""
    if len(body) > 10_000:
        raise ApiError(413, Msg("at most 10,000 words per request"), Msg("send them in parts"), "body")
    with transaction(db_url) as db:
        try:
            added = compliance.add_words(db, list_id, [(w.pattern, w.kind, w.severity) for w in body])
        except WorkforceError as exc:
            raise _refused(exc) from None
        auth.audit(db, user, "workforce.words_added", f"word-list:{list_id}", {"added": added})
        return {"added": added}


@router.get("/hits")
def hits_dashboard(user: Officer, db_url: DbUrl, days: Annotated[int, Query(ge=1, le=366)] = 30,
                   team: Annotated[str | None, Query(max_length=80)] = None) -> dict[str, Any]:
    """Hits per team, per member and per day over the last ``days``."""
    now = utcnow()
    since: datetime = now - timedelta(days=days)
    with session_factory(db_url)() as db:
        return compliance.dashboard(db, since, now, team=team)
