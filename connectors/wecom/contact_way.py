"""WeCom contact ways (客户联系「联系我」): the QR codes behind channel codes (渠道活码) and referral
participants' personal codes, through the corp's :class:`~connectors.wecom.client.WeComClient`.

==============================================  ===================================================
``POST /cgi-bin/externalcontact/add_contact_way``     ``type`` (1 single, 2 multi-person), ``scene`` (1
                                                      mini-program button, 2 QR code), ``state``,
                                                      ``remark``, ``skip_verify``, ``user``, ``party``,
                                                      ``is_temp`` … → ``config_id``, ``qr_code``
``POST /cgi-bin/externalcontact/update_contact_way``  ``config_id`` and the fields to change
``POST /cgi-bin/externalcontact/get_contact_way``     ``config_id`` → ``contact_way``
``POST /cgi-bin/externalcontact/del_contact_way``     ``config_id``
==============================================  ===================================================

WeCom's limits, checked here before a call (docs/growth.md cites the documentation):

* ``state`` and ``remark`` — at most 30 characters each;
* at most 100 members per contact way, members of the included departments counted (pass the
  department sizes when they are known; WeCom refuses the rest);
* at most 500,000 contact ways per corp through the API (the caller counts its own codes:
  :data:`MAX_CONTACT_WAYS`);
* temporary contact ways (``is_temp``): one member (type 1), the code works for one add and only
  for corps of the industries WeCom allows; the QR code lives at most 14 days and so does the chat.
  Channel codes are permanent; Tideflow never makes temporary ones on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.wecom.api_errors import WeComRejected
from connectors.wecom.client import WeComClient
from wording import Msg

MAX_STATE = 30
MAX_REMARK = 30
MAX_MEMBERS = 100
MAX_CONTACT_WAYS = 500_000
MAX_TEMP_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class ContactWay:
    config_id: str
    qr_code: str = ""
    type: int = 2
    scene: int = 2
    state: str = ""
    remark: str = ""
    skip_verify: bool = True
    user: list[str] = field(default_factory=list)
    party: list[int] = field(default_factory=list)
    is_temp: bool = False


def check_fields(*, type: int | None = None, scene: int | None = None, state: str | None = None,
                 remark: str | None = None, user: Sequence[str] | None = None, party: Sequence[int] | None = None,
                 department_sizes: Mapping[int, int] | None = None, is_temp: bool = False,
                 expires_in: int | None = None, chat_expires_in: int | None = None) -> None:
    """Refuse what WeCom would refuse, with the rule in the message (a ValueError)."""
    if type is not None and type not in (1, 2):
        raise ValueError(Msg("type is 1 (one member) or 2 (several members)"))
    if scene is not None and scene not in (1, 2):
        raise ValueError(Msg("scene is 1 (a mini-program button) or 2 (a QR code)"))
    if state is not None and len(state) > MAX_STATE:
        raise ValueError(Msg("state is %(count)s characters; WeCom takes at most %(max_state)s", count=len(state),
                             max_state=MAX_STATE))
    if remark is not None and len(remark) > MAX_REMARK:
        raise ValueError(Msg("remark is %(count)s characters; WeCom takes at most %(max_remark)s", count=len(remark),
                             max_remark=MAX_REMARK))
    users = list(dict.fromkeys(user or []))
    parties = list(dict.fromkeys(party or []))
    if type == 1 and (len(users) != 1 or parties):
        raise ValueError(Msg("a single-person contact way (type 1) has exactly one user and no departments"))
    if type == 2 and user is not None and party is not None and not users and not parties:
        raise ValueError(Msg("a contact way needs at least one member or department"))
    members = len(users) + sum((department_sizes or {}).get(p, 0) for p in parties)
    if members > MAX_MEMBERS:
        raise ValueError(Msg("%(members)s members (departments' members counted); WeCom allows at most "
                             "%(max_members)s per contact way: split the staff over several codes", members=members,
                             max_members=MAX_MEMBERS))
    if is_temp:
        if type != 1:
            raise ValueError(Msg("a temporary contact way is single-person (type 1)"))
        for name, value in (("expires_in", expires_in), ("chat_expires_in", chat_expires_in)):
            if value is not None and not 0 < value <= MAX_TEMP_SECONDS:
                raise ValueError(Msg("%(name)s is at most 14 days (%(max_temp_seconds)s s)", name=name,
                                     max_temp_seconds=MAX_TEMP_SECONDS))


def _parse(data: Mapping[str, Any]) -> ContactWay:
    return ContactWay(config_id=str(data.get("config_id") or ""), qr_code=str(data.get("qr_code") or ""),
                      type=int(data.get("type") or 0), scene=int(data.get("scene") or 0),
                      state=str(data.get("state") or ""), remark=str(data.get("remark") or ""),
                      skip_verify=bool(data.get("skip_verify", True)),
                      user=[str(u) for u in data.get("user") or []],
                      party=[int(p) for p in data.get("party") or []], is_temp=bool(data.get("is_temp", False)))


def add_contact_way(client: WeComClient, *, user: Sequence[str] = (), party: Sequence[int] = (), type: int = 2,
                    scene: int = 2, state: str = "", remark: str = "", skip_verify: bool = True,
                    department_sizes: Mapping[int, int] | None = None, is_temp: bool = False,
                    expires_in: int | None = None, chat_expires_in: int | None = None) -> ContactWay:
    """Create a contact way; its ``config_id`` (keep it: without it the code cannot be edited or
    deleted) and, for scene 2, the ``qr_code`` URL."""
    check_fields(type=type, scene=scene, state=state, remark=remark, user=user, party=party,
                 department_sizes=department_sizes, is_temp=is_temp, expires_in=expires_in,
                 chat_expires_in=chat_expires_in)
    body: dict[str, Any] = {"type": type, "scene": scene, "skip_verify": skip_verify}
    if state:
        body["state"] = state
    if remark:
        body["remark"] = remark
    if user:
        body["user"] = list(dict.fromkeys(user))
    if party:
        body["party"] = list(dict.fromkeys(party))
    if is_temp:
        body["is_temp"] = True
        if expires_in is not None:
            body["expires_in"] = expires_in
        if chat_expires_in is not None:
            body["chat_expires_in"] = chat_expires_in
    data = client.call("POST", "/cgi-bin/externalcontact/add_contact_way", "add_contact_way", body=body)
    config_id = data.get("config_id")
    if not isinstance(config_id, str) or not config_id:
        raise WeComRejected(Msg("WeCom add_contact_way answered without a config_id"), api="add_contact_way")
    return ContactWay(config_id=config_id, qr_code=str(data.get("qr_code") or ""), type=type, scene=scene,
                      state=state, remark=remark, skip_verify=skip_verify, user=list(user), party=list(party),
                      is_temp=is_temp)


def update_contact_way(client: WeComClient, config_id: str, *, user: Sequence[str] | None = None,
                       party: Sequence[int] | None = None, state: str | None = None, remark: str | None = None,
                       skip_verify: bool | None = None, department_sizes: Mapping[int, int] | None = None) -> None:
    """Change a contact way; fields left None keep their value. ``user``/``party`` replace the lists."""
    if not config_id:
        raise ValueError(Msg("config_id must not be empty"))
    check_fields(state=state, remark=remark, user=user, party=party, department_sizes=department_sizes)
    body: dict[str, Any] = {"config_id": config_id}
    for name, value in (("state", state), ("remark", remark), ("skip_verify", skip_verify)):
        if value is not None:
            body[name] = value
    if user is not None:
        body["user"] = list(dict.fromkeys(user))
    if party is not None:
        body["party"] = list(dict.fromkeys(party))
    client.call("POST", "/cgi-bin/externalcontact/update_contact_way", "update_contact_way", body=body)


def get_contact_way(client: WeComClient, config_id: str) -> ContactWay:
    data = client.call("POST", "/cgi-bin/externalcontact/get_contact_way", "get_contact_way",
                       body={"config_id": config_id})
    way = data.get("contact_way")
    if not isinstance(way, dict):
        raise WeComRejected(Msg("WeCom get_contact_way answered without a contact_way"), api="get_contact_way")
    return _parse(way)


def del_contact_way(client: WeComClient, config_id: str) -> None:
    if not config_id:
        raise ValueError(Msg("config_id must not be empty"))
    client.call("POST", "/cgi-bin/externalcontact/del_contact_way", "del_contact_way", body={"config_id": config_id})
