"""Channel codes (渠道活码) kept in step with WeCom: create, edit, disable, delete go back to WeCom
(``add_contact_way`` / ``update_contact_way`` / ``del_contact_way``); staff on duty are re-applied
when schedules or daily caps change who should answer; per-channel statistics.

The API shape is :class:`ChannelSpec` (what a marketer fills in). Calls to WeCom are made outside any
write transaction: the row is reserved first (its number is the ``state``), WeCom is called, and the
answer (``config_id``, ``qr_code``) or the refusal (``sync_error``, shown on the channel page) is
stored after. Tideflow makes permanent codes only: WeCom limits temporary ones (single member, one
add, certain industries).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.growth import rotation
from activities.growth.states import MAX_STATE, channel_state
from connectors.wecom import contact_way as wecom_ways
from connectors.wecom.api_errors import ApiError
from connectors.wecom.client import WeComClient
from engine import connectors as configured
from engine.auth import audit
from engine.db import models
from engine.db.growth_models import ChannelAdd, GrowthChannel
from engine.db.session import session_factory, transaction
from engine.text import NO_FIX, Msg, MsgError, message_of
from engine.zones import check_zone
from wording.stored import MAX_REASON, stored, stored_english

KEY = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,59}$")


class ChannelError(MsgError):
    """A channel operation that cannot be done; ``field`` names the input at fault."""

    def __init__(self, message: Msg, field: str | None = None, status: int = 422) -> None:
        super().__init__(message, NO_FIX, field, status)


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], description="ISO weekdays 1..7")
    start: str = Field(pattern=r"^\d{2}:\d{2}$", examples=["09:00"])
    end: str = Field(pattern=r"^\d{2}:\d{2}$", examples=["18:00"])
    users: list[str] = Field(min_length=1, max_length=100)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value or any(d < 1 or d > 7 for d in value):
            raise ValueError(Msg("days are ISO weekdays: 1 (Monday) to 7 (Sunday)"))
        return sorted(set(value))

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        from datetime import time

        try:
            time.fromisoformat(value)
        except ValueError:
            raise ValueError(Msg("'%(value)s' is not a time of day; write e.g. 09:00",
                                 value=value)) from None
        return value


class Welcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="", max_length=2000, description="the welcome text (templates: {{ customer.name }})")
    attachments: list[str] = Field(default_factory=list, max_length=9, description="image or link URLs")


class ChannelSpec(BaseModel):
    """A channel code as the marketer describes it (POST/PUT /api/growth/channels)."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(description="short id used in flows, e.g. store-a (a-z, 0-9, - and _)", examples=["store-a"])
    name: str = Field(min_length=1, max_length=200, examples=["门店A 收银台"])
    platform: Literal["wecom", "wechat_oa"] = "wecom"
    connector_id: str | None = Field(default=None, description="the WeCom (or OA) connector; default: the first one")
    staff: list[str] = Field(default_factory=list, max_length=100, description="WeCom UserIDs answering the code")
    departments: list[int] = Field(default_factory=list, max_length=100)
    schedule: list[Shift] = Field(default_factory=list, description="who answers at which hours")
    daily_cap: int | None = Field(default=None, ge=1, le=100_000, description="adds per member per day, then next")
    backup: list[str] = Field(default_factory=list, max_length=100, description="who answers when all are capped")
    mode: Literal["all", "rotate"] = "all"
    skip_verify: bool = True
    tags: list[str] = Field(default_factory=list, max_length=20)
    welcome: Welcome = Field(default_factory=Welcome)
    remark: str = Field(default="", max_length=30, description="WeCom remark: at most 30 characters")
    timezone: str = "Asia/Shanghai"

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY.match(value):
            raise ValueError(Msg("use 1-60 lower-case letters, digits, - or _, starting with a letter "
                                 "or digit"))
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_zone(value)

    @model_validator(mode="after")
    def _members(self) -> ChannelSpec:
        if self.platform == "wecom":
            if not self.staff and not self.departments and not self.schedule:
                raise ValueError(Msg("a WeCom channel code needs staff (WeCom UserIDs), departments or a "
                                     "schedule"))
            everyone = {*self.staff, *self.backup, *(u for s in self.schedule for u in s.users)}
            if len(everyone) > wecom_ways.MAX_MEMBERS:
                raise ValueError(Msg("%(count)s staff members in all; WeCom allows at most %(limit)s "
                                     "per contact way: split them over several codes",
                                     count=len(everyone), MAX_MEMBERS=wecom_ways.MAX_MEMBERS))
        return self


ClientFor = Callable[[Session, str | None], tuple[str, Any]]


def wecom_client(db: Session, connector_id: str | None) -> tuple[str, WeComClient]:
    """The WeCom client of a configured connector (or the first enabled WeCom connector)."""
    connector, client, _settings = wecom_connection(db, connector_id)
    return connector, client


def wecom_connection(db: Session, connector_id: str | None) -> tuple[str, WeComClient, Any]:
    """The connector's id, its WeCom client and its settings (e.g. ``image_hosts`` for media uploads)."""
    from connectors.wecom.connector import client_for

    loaded = configured.load(db, connector_id) if connector_id else configured.for_channel(db, "wecom")
    if loaded is None or loaded.kind != "wecom":
        raise ChannelError(Msg("no enabled WeCom connector is configured: add one under Connectors "
                               "first"),
                           "connector_id", 409)
    return loaded.id, client_for(loaded.settings, loaded.secrets), loaded.settings


def oa_client(db: Session, connector_id: str | None) -> tuple[str, Any]:
    from connectors.wechat_oa.connector import client_for

    loaded = configured.load(db, connector_id) if connector_id else configured.for_channel(db, "wechat_oa")
    if loaded is None or loaded.kind != "wechat_oa":
        raise ChannelError(Msg("no enabled WeChat Official Account connector is configured"), "connector_id", 409)
    return loaded.id, client_for(loaded.settings, loaded.secrets)


def adds_today(db: Session, channel: GrowthChannel, now: datetime) -> dict[str, int]:
    tz = ZoneInfo(channel.timezone or "Asia/Shanghai")
    local = now.astimezone(tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = db.execute(select(ChannelAdd.user_id, func.count()).where(
        ChannelAdd.channel_id == channel.id, ChannelAdd.kind == "add", ChannelAdd.added_at >= start,
        ChannelAdd.added_at < start + timedelta(days=1)).group_by(ChannelAdd.user_id)).all()
    return {u: int(n) for u, n in rows}


def wanted_users(db: Session, channel: GrowthChannel, now: datetime) -> rotation.Pick:
    local = now.astimezone(ZoneInfo(channel.timezone or "Asia/Shanghai"))
    return rotation.pick_staff(list(channel.staff or []), local, schedule=list(channel.schedule or []),
                               daily_cap=channel.daily_cap, adds_today=adds_today(db, channel, now),
                               backup=list(channel.backup or []), mode="rotate" if channel.mode == "rotate" else "all",
                               last_assigned=channel.last_assigned)


def _apply(channel: GrowthChannel, spec: ChannelSpec) -> None:
    channel.name, channel.platform, channel.connector_id = spec.name, spec.platform, spec.connector_id
    channel.staff, channel.departments = list(spec.staff), list(spec.departments)
    channel.schedule = [s.model_dump() for s in spec.schedule]
    channel.daily_cap, channel.backup, channel.mode = spec.daily_cap, list(spec.backup), spec.mode
    channel.skip_verify, channel.tags = spec.skip_verify, list(spec.tags)
    channel.welcome, channel.remark, channel.timezone = spec.welcome.model_dump(), spec.remark, spec.timezone


def count_contact_ways(db: Session, connector_id: str) -> int:
    return int(db.scalar(select(func.count()).select_from(GrowthChannel).where(
        GrowthChannel.platform == "wecom", GrowthChannel.connector_id == connector_id,
        GrowthChannel.config_id.is_not(None), GrowthChannel.status != "deleted")) or 0)


def create_channel(database_url: str | None, spec: ChannelSpec, actor: str, now: datetime, *,
                   purpose: str = "channel", campaign_id: str | None = None, state: str | None = None) -> GrowthChannel:
    """Create the code on the platform and in the database. Raises :class:`ChannelError` (with the
    platform's refusal) — nothing half-made is left behind."""
    with transaction(database_url) as db:
        if db.scalar(select(GrowthChannel.id).where(GrowthChannel.key == spec.key)) is not None:
            raise ChannelError(Msg("a channel with key '%(key)s' exists; pick another key",
                                   key=spec.key), "key", 409)
        connector_id, _client = (wecom_client if spec.platform == "wecom" else oa_client)(db, spec.connector_id)
        if spec.platform == "wecom" and count_contact_ways(db, connector_id) >= wecom_ways.MAX_CONTACT_WAYS:
            raise ChannelError(Msg("this corp has %(limit)s contact ways made through the API, "
                                   "WeCom's limit: delete unused codes first",
                                   limit=wecom_ways.MAX_CONTACT_WAYS), None, 409)
        channel = GrowthChannel(key=spec.key, name=spec.name, state="pending:" + spec.key, purpose=purpose,
                                campaign_id=campaign_id, created_by=actor, created_at=now, updated_at=now,
                                status="creating")
        _apply(channel, spec)
        channel.connector_id = connector_id
        try:
            with db.begin_nested():
                db.add(channel)
                db.flush()
        except IntegrityError:  # made by a concurrent request between our check and our insert
            raise ChannelError(Msg("a channel with key '%(key)s' exists; pick another key",
                                   key=spec.key), "key", 409) from None
        channel.state = state or channel_state(channel.id)
        channel_id = channel.id
    try:
        with session_factory(database_url)() as db:
            reserved = db.get(GrowthChannel, channel_id)
            assert reserved is not None
            state_of = reserved.state
            users = wanted_users(db, reserved, now).users if spec.platform == "wecom" else []
            if spec.platform == "wecom":
                _, client = wecom_client(db, reserved.connector_id)
            else:
                _, oa = oa_client(db, reserved.connector_id)
        if spec.platform == "wecom":
            way = wecom_ways.add_contact_way(
                client, user=users, party=list(spec.departments), type=1 if len(users) == 1 and not spec.departments
                and spec.mode != "rotate" and not spec.schedule and spec.daily_cap is None else 2, scene=2,
                state=state_of, remark=spec.remark, skip_verify=spec.skip_verify)
            config_id, qr_url = way.config_id, way.qr_code
        else:
            from connectors.wechat_oa.qrcode import create_qrcode

            code = create_qrcode(oa, state_of)
            config_id, qr_url, users = code.ticket, code.url, []
    except (ApiError, ValueError) as exc:
        with transaction(database_url) as db:
            row = db.get(GrowthChannel, channel_id)
            if row is not None:
                db.delete(row)
        raise ChannelError(Msg("%(platform)s refused the code: %(detail)s",
                               platform='WeCom' if spec.platform == 'wecom' else 'WeChat', detail=exc),
                           None, 502 if isinstance(exc, ApiError) and exc.retryable else 422) from None
    with transaction(database_url) as db:
        made = db.get(GrowthChannel, channel_id)
        assert made is not None
        channel = made
        channel.config_id, channel.qr_url, channel.current_users = config_id, qr_url, users
        channel.status, channel.sync_error = "active", None
        channel.contact_type = 0 if spec.platform == "wechat_oa" else (
            1 if len(users) == 1 and spec.mode != "rotate" and not spec.departments and not spec.schedule
            and spec.daily_cap is None else 2)
        audit(db, actor, "growth.channel_created", f"channel:{spec.key}",
              {"state": channel.state, "platform": spec.platform, "purpose": purpose})
    return channel


def update_channel(database_url: str | None, key: str, spec: ChannelSpec, actor: str, now: datetime) -> GrowthChannel:
    with transaction(database_url) as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key, GrowthChannel.status != "deleted"))
        if channel is None:
            raise ChannelError(Msg("channel '%(key)s' does not exist", key=key), "key", 404)
        if spec.key != key:
            raise ChannelError(Msg("the key of a channel cannot change (journeys filter on it)"), "key")
        if spec.platform != channel.platform:
            raise ChannelError(Msg("the platform of a channel cannot change; make a new channel"), "platform")
        before = {"staff": channel.staff, "tags": channel.tags, "welcome": channel.welcome}
        _apply(channel, spec)
        channel.updated_at = now
        audit(db, actor, "growth.channel_updated", f"channel:{key}", before=before,
              after={"staff": channel.staff, "tags": channel.tags, "welcome": channel.welcome})
    sync_staff(database_url, key, now, force=True)
    with session_factory(database_url)() as db:
        found = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        assert found is not None
        return found


def sync_staff(database_url: str | None, key: str, now: datetime, *, force: bool = False) -> list[str] | None:
    """Make the contact way offer the staff who should answer now (schedule, caps, rotation); the new
    list, or None when nothing had to change. A refusal is kept in ``sync_error``."""
    with session_factory(database_url)() as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        if channel is None or channel.platform != "wecom" or channel.status != "active" or not channel.config_id:
            return None
        pick = wanted_users(db, channel, now)
        if not force and sorted(pick.users) == sorted(channel.current_users or []):
            return None
        _, client = wecom_client(db, channel.connector_id)
        config_id, departments = channel.config_id, list(channel.departments or [])
    error: str | None = None
    try:
        wecom_ways.update_contact_way(client, config_id, user=pick.users, party=departments)
    except (ApiError, ValueError) as exc:  # kept as a Msg (wording.stored): the channel page translates it
        error = stored(Msg("WeCom refused the staff change: %(detail)s", detail=message_of(exc)), MAX_REASON)
    with transaction(database_url) as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        assert channel is not None
        channel.sync_error = error
        if error is None:
            channel.current_users = pick.users
    return None if error else pick.users


def set_status(database_url: str | None, key: str, status: Literal["active", "disabled", "deleted"], actor: str,
               now: datetime) -> GrowthChannel:
    """Disable (the code stays on WeCom but offers the backup members, or is deleted there), enable, or
    delete (del_contact_way; statistics are kept)."""
    with session_factory(database_url)() as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key, GrowthChannel.status != "deleted"))
        if channel is None:
            raise ChannelError(Msg("channel '%(key)s' does not exist", key=key), "key", 404)
        platform, config_id, connector_id = channel.platform, channel.config_id, channel.connector_id
        if platform == "wecom" and config_id and status in ("disabled", "deleted"):
            _, client = wecom_client(db, connector_id)
        else:
            client = None
    if client is not None and config_id:
        try:
            wecom_ways.del_contact_way(client, config_id)
        except ApiError as exc:
            if exc.errcode != 41044:  # already gone on WeCom's side: fine
                raise ChannelError(Msg("WeCom refused to delete the code: %(exc)s", exc=message_of(exc)), None,
                                   502) from None
    with transaction(database_url) as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        assert channel is not None
        before = channel.status
        if client is not None:
            channel.config_id, channel.qr_url = None, None
        channel.status, channel.updated_at = status, now
        audit(db, actor, f"growth.channel_{status}", f"channel:{key}", before={"status": before},
              after={"status": status})
    if status == "active":
        _recreate(database_url, key, now)
    with session_factory(database_url)() as db:
        found = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        assert found is not None
        return found


def _recreate(database_url: str | None, key: str, now: datetime) -> None:
    """Enabling a disabled WeCom code makes a new contact way under the same state (the old QR code
    was deleted on WeCom when it was disabled; print the new one)."""
    with session_factory(database_url)() as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        if channel is None or channel.platform != "wecom" or channel.config_id:
            return
        _, client = wecom_client(db, channel.connector_id)
        pick = wanted_users(db, channel, now)
        state, remark, skip, departments = channel.state, channel.remark, channel.skip_verify, channel.departments
    way = wecom_ways.add_contact_way(client, user=pick.users, party=list(departments or []), type=2, scene=2,
                                     state=state, remark=remark, skip_verify=skip)
    with transaction(database_url) as db:
        channel = db.scalar(select(GrowthChannel).where(GrowthChannel.key == key))
        assert channel is not None
        channel.config_id, channel.qr_url, channel.current_users = way.config_id, way.qr_code, pick.users


# -- statistics ---------------------------------------------------------------------------------------------
def stats(db: Session, channel: GrowthChannel, now: datetime) -> dict[str, Any]:
    """Scans (where the platform reports them), adds, still friends after 7 days, first orders, GMV."""
    adds = list(db.scalars(select(ChannelAdd).where(ChannelAdd.channel_id == channel.id)))
    joined = [a for a in adds if a.kind in ("add", "subscribe")]
    matured = [a for a in joined if a.added_at <= now - timedelta(days=7)]
    kept = [a for a in matured if a.removed_at is None or a.removed_at > a.added_at + timedelta(days=7)]
    customers = sorted({a.customer_id for a in joined})
    first_add = {c: min(a.added_at for a in joined if a.customer_id == c) for c in customers}
    first_orders, gmv = 0, 0
    for cid in customers:
        orders = list(db.execute(select(models.Order.paid_at, models.Order.amount_fen, models.Order.refunded_fen)
                                 .where(models.Order.customer_id == cid, models.Order.paid_at.is_not(None),
                                        models.Order.status != "cancelled")).all())
        after = [o for o in orders if o.paid_at >= first_add[cid]]
        if after:
            first_orders += 1
            gmv += sum(int(o.amount_fen) - int(o.refunded_fen or 0) for o in after)
    welcome: dict[str, int] = {}
    for a in joined:
        welcome[a.welcome_status] = welcome.get(a.welcome_status, 0) + 1
    return {"channel": channel.key, "scans": channel.scans if channel.platform == "wechat_oa" else None,
            "adds": len(joined), "customers": len(customers), "matured_7d": len(matured),
            "still_friends_7d": len(kept), "deleted": sum(1 for a in joined if a.removed_at is not None),
            "first_orders": first_orders, "gmv_fen": gmv, "welcome": welcome}


def welcome_flow_active(db: Session) -> bool:
    """Whether a published, active flow sends channel welcomes (``action.channel_welcome`` on a
    ``wecom.contact_added`` trigger); the channel page warns when none does."""
    rows = db.execute(select(models.FlowVersion.compiled).join(
        models.FlowRecord, (models.FlowRecord.id == models.FlowVersion.flow_id)
        & (models.FlowRecord.current_version == models.FlowVersion.version))
        .where(models.FlowRecord.status == "active", models.FlowVersion.trigger_event == "wecom.contact_added")).all()
    return any(node.get("type") == "action.channel_welcome" for (compiled,) in rows
               for node in (compiled.get("nodes") or {}).values())


def describe(channel: GrowthChannel) -> dict[str, Any]:
    return {"key": channel.key, "name": channel.name, "platform": channel.platform, "purpose": channel.purpose,
            "state": channel.state, "status": channel.status, "connector_id": channel.connector_id,
            "qr_url": channel.qr_url, "config_id": channel.config_id, "staff": channel.staff,
            "departments": channel.departments, "schedule": channel.schedule, "daily_cap": channel.daily_cap,
            "backup": channel.backup, "mode": channel.mode, "current_users": channel.current_users,
            "skip_verify": channel.skip_verify, "tags": channel.tags, "welcome": channel.welcome,
            "remark": channel.remark, "timezone": channel.timezone, "sync_error": stored_english(channel.sync_error),
            "campaign_id": channel.campaign_id}


assert MAX_STATE == wecom_ways.MAX_STATE
