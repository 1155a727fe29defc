"""The chat sidebar (聊天工具栏) in the JSON API: JS-SDK signatures, the chat's customer with scripts,
using a script, and the library (话术库), its images, suggestion rules and WeCom staff links.

Thin routes over :mod:`activities.sidebar`; see docs/sidebar.md. Every route is guarded: the sidebar's
own routes need a role that reads customers (:data:`designer.permissions.CUSTOMER_READERS`), the
library's need a manager (marketer, ops), staff links need an admin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.sidebar import library, staff, suggestions
from activities.sidebar import scripts as script_rules
from activities.sidebar.context import customer_for_contact, scripts_for, sidebar_for_customer, use_script
from activities.sidebar.library import LibraryError
from activities.sidebar.picture import ArchiveAccess
from activities.sidebar.scripts import MANAGERS, ScriptSpec
from activities.sidebar.suggestions import RuleSpec
from activities.sidebar.wecom import NotConfigured, media_for, sidebar_app
from connectors.wecom.api_errors import ApiError as WeComError
from designer import evaluation
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import (
    COMPLIANCE_OFFICERS,
    COUPON_ISSUERS,
    CUSTOMER_READERS,
    EVENT_SENDERS,
    TICKET_CREATORS,
)
from engine.auth import AuthError, has_role
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.db.sidebar_models import ScriptImage
from engine.db.workforce_models import WeComStaff
from engine.text import Msg, message_of

router = APIRouter(prefix="/api/sidebar", tags=["sidebar"])
DbUrl = Annotated[str, Depends(get_db_url)]
Staff = Annotated[User, Depends(require(*CUSTOMER_READERS))]
Manager = Annotated[User, Depends(require(*MANAGERS))]
Admin = Annotated[User, Depends(require("admin"))]
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _library_error(exc: LibraryError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.fix, exc.field)


def _wecom_error(exc: WeComError) -> ApiError:
    if exc.retryable:
        return ApiError(503, Msg("WeCom is not answering right now: %(exc)s", exc=message_of(exc)), Msg("retry in a "
                                                                                                        "minute"), None,
                        retry_after=exc.retry_after)
    return ApiError(502, Msg("WeCom refused: %(exc)s", exc=message_of(exc)),
                    Msg("check the WeCom connector's CorpID, AgentId and app secret"),
                    None)


@contextmanager
def _tx(db_url: str) -> Iterator[Session]:
    """A transaction whose domain errors become the API's error shape."""
    try:
        with transaction(db_url) as db:
            yield db
    except LibraryError as exc:
        raise _library_error(exc) from None
    except NotConfigured as exc:  # a state an admin changes, not an outage: 409
        raise ApiError(409, message_of(exc), Msg("configure the WeCom connector (agent_id, app_secret)"),
                       None) from None
    except WeComError as exc:
        raise _wecom_error(exc) from None


def _in(db_url: str, work: Callable[[Session], T]) -> T:
    with _tx(db_url) as db:
        return work(db)


# -- JS-SDK -------------------------------------------------------------------------------------------------


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2048, description="location.href of the sidebar page")
    retry: bool = Field(default=False, description="WeCom said 'invalid signature' to the last ones: use fresh "
                                                   "tickets (at most once a minute)")


@router.post("/signatures")
def signatures(request: Request, body: SignIn, user: Staff, db_url: DbUrl) -> dict[str, Any]:
    """The ``getConfigSignature`` and ``getAgentConfigSignature`` answers for this page URL (corp and app
    jsapi_ticket, cached within WeCom's limits). Only pages of this site are signed."""
    host = request.headers.get("host", "")
    if urlsplit(body.url).netloc != host:
        raise ApiError(422, Msg("only pages of this site are signed"),
                       Msg("send the sidebar page's own URL (on %(host)s)", host=host),
                       "url")

    def work(db: Session) -> dict[str, Any]:
        sidebar = sidebar_app(db)
        if body.retry:
            sidebar.app.refresh_tickets()
        try:
            corp, agent = sidebar.app.config_signature(body.url), sidebar.app.agent_config_signature(body.url)
        except ValueError as exc:
            raise ApiError(422, Msg("the page address cannot be signed: %(detail)s", detail=message_of(exc)),
                           Msg("send location.href"), "url") from None
        return {"corp_id": sidebar.corp_id, "agent_id": sidebar.agent_id,
                "config": {"timestamp": corp.timestamp, "nonceStr": corp.nonce_str, "signature": corp.signature},
                "agent_config": {"timestamp": agent.timestamp, "nonceStr": agent.nonce_str,
                                 "signature": agent.signature}}

    return _in(db_url, work)


# -- the chat's customer and scripts -------------------------------------------------------------------------


class ContextIn(BaseModel):
    """Who the chat is with: ``external_userid`` (getCurExternalContact's userId) or ``chat_id``
    (getCurExternalChat's chatId); optionally a search."""

    model_config = ConfigDict(extra="forbid")
    external_userid: str | None = Field(default=None, min_length=1, max_length=64)
    chat_id: str | None = Field(default=None, min_length=1, max_length=80)
    q: str = Field(default="", max_length=100)
    category_id: int | None = None

    @model_validator(mode="after")
    def _one(self) -> ContextIn:
        if (self.external_userid is None) == (self.chat_id is None):
            raise ValueError("send exactly one of external_userid or chat_id")
        return self


def actions_for(db: Session, user: User) -> dict[str, Any]:
    """What this user may do from the sidebar, and the choices (flows, campaigns, ticket types)."""
    flows = db.execute(select(models.FlowRecord.id, models.FlowRecord.name)
                       .join(models.FlowVersion, (models.FlowVersion.flow_id == models.FlowRecord.id)
                             & (models.FlowVersion.version == models.FlowRecord.current_version))
                       .where(models.FlowRecord.status == "active", models.FlowVersion.trigger_type == "trigger.api")
                       .order_by(models.FlowRecord.name)).all()
    campaigns = db.execute(select(models.CouponCampaign.id, models.CouponCampaign.name)
                           .where(models.CouponCampaign.status == "active").order_by(models.CouponCampaign.name)).all()
    types = db.execute(select(models.TicketType.key, models.TicketType.name).order_by(models.TicketType.name)).all()
    return {"tag": has_role(user, *CUSTOMER_READERS),
            "enroll": has_role(user, *EVENT_SENDERS), "flows": [{"id": i, "name": n} for i, n in flows],
            "coupon": has_role(user, *COUPON_ISSUERS), "campaigns": [{"id": i, "name": n} for i, n in campaigns],
            "ticket": has_role(user, *TICKET_CREATORS), "ticket_types": [{"key": k, "name": n} for k, n in types]}


def archive_access(db: Session, user: User) -> ArchiveAccess | None:
    """How this user may use the WeCom conversation archive in the sidebar: compliance officers read the
    customer's archived chat (as in the archive viewer); anyone else only the latest message the customer wrote
    to them, found by their WeCom UserID."""
    try:
        connector_id = sidebar_app(db).connector_id
    except NotConfigured:
        return None
    member = db.scalar(select(WeComStaff.userid).where(WeComStaff.connector_id == connector_id,
                                                       WeComStaff.user_id == user.id).limit(1))
    return ArchiveAccess(connector_id, member=member, read_all=has_role(user, *COMPLIANCE_OFFICERS))


@router.post("/context")
def context(body: ContextIn, user: Staff, db_url: DbUrl) -> dict[str, Any]:
    """The customer's picture (masked under the read policy), suggested scripts with why, the library's
    matches for ``q`` — rendered for this customer — and the actions this user may take. A WeCom contact
    Tideflow has not seen becomes a customer here."""

    def work(db: Session) -> dict[str, Any]:
        if body.external_userid is not None:
            customer_id = customer_for_contact(db, body.external_userid)
            out = sidebar_for_customer(db, user, customer_id, _now(), body.q, body.category_id,
                                       archive=archive_access(db, user), run=evaluation.isolated)
        else:
            out = {"customer": None, "chat_id": body.chat_id, "latest_message": "",
                   **scripts_for(db, user, None, body.q, body.category_id, run=evaluation.isolated)}
        return {**out, "actions": actions_for(db, user)}

    return _in(db_url, work)


class UseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str | None = Field(default=None, max_length=40)
    chat_id: str | None = Field(default=None, max_length=80)


@router.post("/scripts/{script_id}/use")
def use(script_id: int, body: UseIn, user: Staff, db_url: DbUrl) -> dict[str, Any]:
    """Render a published script for this chat and record the use; pass ``message`` to
    ``ww.sendChatMessage`` and report its answer with ``POST /api/sidebar/uses/{use_id}``."""

    def work(db: Session) -> dict[str, Any]:
        if body.customer_id is not None and db.get(models.Customer, body.customer_id) is None:
            raise ApiError(422, Msg("customer '%(customer_id)s' does not exist", customer_id=body.customer_id),
                           Msg("use the id /context returned"),
                           "customer_id")
        now = _now()
        try:
            media = media_for(db, sidebar_app(db), now)
        except NotConfigured:
            media = None
        return use_script(db, user, script_id, now, customer_id=body.customer_id, chat_id=body.chat_id,
                          media_for=media, run=evaluation.isolated)

    return _in(db_url, work)


class UseReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["sent", "failed", "cancelled"]
    error: str = Field(default="", max_length=500, description="sendChatMessage's errMsg when it failed")


@router.post("/uses/{use_id}")
def report_use(use_id: int, body: UseReport, user: Staff, db_url: DbUrl) -> dict[str, Any]:
    """What the WeCom client answered to sendChatMessage (reported by the page; a repeat changes nothing)."""
    def work(db: Session) -> dict[str, Any]:
        done = library.finish_use(db, user, use_id, body.status, body.error, _now())
        return {"id": done.id, "status": done.status, "error": done.error}

    return _in(db_url, work)


# -- the library (managers) -----------------------------------------------------------------------------------


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    team: str = Field(default="", max_length=60)
    position: int = Field(default=0, ge=0, le=10_000)


def _category(c: Any) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "team": c.team, "position": c.position}


@router.get("/categories")
def list_categories(user: Manager, db_url: DbUrl) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return [_category(c) for c in library.categories(db, None)]


@router.post("/categories", status_code=201)
def create_category(body: CategoryIn, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    return _in(db_url, lambda db: _category(library.create_category(db, user, body.name, body.team, body.position)))


@router.delete("/categories/{category_id}")
def delete_category(category_id: int, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    _in(db_url, lambda db: library.delete_category(db, user, category_id))
    return {"id": category_id, "deleted": True}


class ScriptEdit(ScriptSpec):
    expected_version: int | None = Field(default=None, ge=1, description="the version you edited: a 409 tells "
                                                                          "you someone changed it meanwhile")


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    approve: bool
    note: str = Field(default="", max_length=2000)


@router.get("/library")
def list_scripts(user: Manager, db_url: DbUrl, status: Literal["approved", "pending", "rejected", "archived"]
                 | None = None) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return [library.script_view(s) for s in library.library(db, None, status=status)]


@router.post("/library", status_code=201)
def create_script(body: ScriptSpec, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    """A script; with ``requires_approval`` it waits for a reviewer (ops, not its author). A template that
    costs too much on sample data is refused (422 naming its field), as in a flow."""
    evaluation.prime_sources(script_rules.cost_sources(body))  # measured in the evaluation pool, not here
    return _in(db_url, lambda db: library.script_view(library.create_script(db, user, body, _now())))


@router.get("/library/{script_id}")
def get_script(script_id: int, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    return _in(db_url, lambda db: {**library.script_view(library.get_script(db, script_id)),
                                   "published": library.get_script(db, script_id).published})


@router.put("/library/{script_id}")
def update_script(script_id: int, body: ScriptEdit, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    """A new version (published at once, or waiting for review: staff keep the approved one)."""
    spec = ScriptSpec.model_validate(body.model_dump(exclude={"expected_version"}))
    evaluation.prime_sources(script_rules.cost_sources(spec))
    return _in(db_url, lambda db: library.script_view(
        library.update_script(db, user, script_id, spec, _now(), body.expected_version)))


@router.delete("/library/{script_id}")
def archive_script(script_id: int, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    """Archive: staff no longer see it; its uses stay on record."""
    return _in(db_url, lambda db: library.script_view(library.archive_script(db, user, script_id, _now())))


@router.post("/library/{script_id}/review")
def review_script(script_id: int, body: Review, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    """Approve (publish) or reject the version waiting; reviewers are ops (or admin), never its author."""
    return _in(db_url, lambda db: library.script_view(
        library.review_script(db, user, script_id, body.version, body.approve, body.note, _now())))


@router.get("/library/{script_id}/uses")
def script_uses(script_id: int, user: Manager, db_url: DbUrl) -> list[dict[str, Any]]:
    def work(db: Session) -> list[dict[str, Any]]:
        library.get_script(db, script_id)
        names = {u.id: u.username for u in db.scalars(select(models.User))}
        return [{"id": u.id, "version": u.version, "user": names.get(u.user_id), "customer_id": u.customer_id,
                 "chat_id": u.chat_id, "msgtype": u.msgtype, "status": u.status, "error": u.error,
                 "at": u.at.isoformat()} for u in library.uses_of(db, script_id)]

    return _in(db_url, work)


@router.post("/images", status_code=201)
async def upload_image(user: Manager, db_url: DbUrl, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    """A PNG or JPEG (at most 2 MB) for image scripts; the same picture twice is stored once."""
    data = await file.read(library.MAX_IMAGE_BYTES + 1)
    from starlette.concurrency import run_in_threadpool

    def work(db: Session) -> dict[str, Any]:
        image = library.store_image(db, user, data)
        return {"id": image.id, "content_type": image.content_type, "size": image.size}

    return await run_in_threadpool(_in, db_url, work)


@router.get("/images/{image_id}")
def get_image(image_id: int, user: Staff, db_url: DbUrl) -> Response:
    with session_factory(db_url)() as db:
        image = db.get(ScriptImage, image_id)
        if image is None:
            raise ApiError(404, Msg("image %(image_id)s does not exist", image_id=image_id), Msg("upload it first"),
                           "id")
        return Response(image.data, media_type=image.content_type,
                        headers={"Cache-Control": "private, max-age=86400", "Content-Disposition": "inline"})


# -- suggestion rules ------------------------------------------------------------------------------------------


@router.get("/rules")
def list_rules(user: Manager, db_url: DbUrl) -> list[dict[str, Any]]:
    with session_factory(db_url)() as db:
        return [library.rule_view(r) for r in library.rules(db, None)]


@router.post("/rules", status_code=201)
def create_rule(body: RuleSpec, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    """A suggestion rule; a condition that costs too much on sample data is refused (422, ``condition``)."""
    evaluation.prime_sources(suggestions.cost_sources(body))
    return _in(db_url, lambda db: library.rule_view(library.create_rule(db, user, body, _now())))


@router.put("/rules/{rule_id}")
def update_rule(rule_id: int, body: RuleSpec, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    evaluation.prime_sources(suggestions.cost_sources(body))
    return _in(db_url, lambda db: library.rule_view(library.update_rule(db, user, rule_id, body, _now())))


@router.delete("/rules/{rule_id}")
def delete_rule(rule_id: int, user: Manager, db_url: DbUrl) -> dict[str, Any]:
    _in(db_url, lambda db: library.delete_rule(db, user, rule_id))
    return {"id": rule_id, "deleted": True}


# -- WeCom staff links (admin) -----------------------------------------------------------------------------------


class StaffLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    userid: str = Field(min_length=1, max_length=64, description="the member's UserID (通讯录 › 成员 › 账号)")
    username: str = Field(min_length=1, max_length=80, description="the Tideflow user they sign in as")


def _connector(db: Session) -> str:
    return sidebar_app(db).connector_id


@router.get("/staff")
def list_staff(user: Admin, db_url: DbUrl) -> list[dict[str, Any]]:
    return _in(db_url, lambda db: staff.links(db, _connector(db)))


@router.post("/staff", status_code=201)
def link_staff(body: StaffLink, user: Admin, db_url: DbUrl) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        try:
            row = staff.link(db, user, _connector(db), body.userid, body.username, _now())
        except AuthError as exc:
            raise ApiError(422, message_of(exc),
                           Msg("check the UserID and the Tideflow username"), "userid") from None
        return {"connector_id": row.connector_id, "userid": row.userid, "username": body.username.strip().lower()}

    return _in(db_url, work)


@router.delete("/staff/{userid}")
def unlink_staff(userid: str, user: Admin, db_url: DbUrl) -> dict[str, Any]:
    removed = _in(db_url, lambda db: staff.unlink(db, user, _connector(db), userid, _now()))
    if not removed:
        raise ApiError(404, Msg("the WeCom UserID %(userid)s is not linked", userid=userid),
                       Msg("list the links with GET /api/sidebar/staff"),
                       "userid")
    return {"userid": userid, "unlinked": True}
