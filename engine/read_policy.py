"""Who may read message content, customers' personal data and the audit log: one policy, pure functions.

Every route and page that returns messages, customers or audit rows asks this module; none decides
for itself. The decisions, by role (``admin`` may do everything):

=========== ============================== ============================== ================
role        message content                customer personal data         audit log
=========== ============================== ============================== ================
admin       all, clear                     clear                          yes
auditor     none (metadata only)           masked                         yes
ops         all, clear                     clear                          no
agent       replies of tickets of their    clear for customers with a     no
            groups (others' not listed);   ticket in their groups,
            customers' inbound messages    masked otherwise
            when the customer has such a
            ticket; the rest metadata only
marketer    journey messages and inbound,  masked                         no
            clear; ticket replies metadata
finance     none (metadata only)           masked                         no
developer   none (metadata only)           masked                         no
=========== ============================== ============================== ================

*Masked* covers every place personal data appears in an answer: identities (phones ``138****8000``,
e-mail ``l***@example.org``, platform ids cut), the customer's name (``李*``), profile attributes
(fields named like personal data are masked whole; phone, card and e-mail numbers inside any other
text are masked where they occur), and the same free-text masking for message content and audit
details shown to roles that see them masked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engine.customers import mask_identity
from engine.pii import mask_text

#: roles that read the audit log
AUDIT_READERS = frozenset({"admin", "auditor"})
#: roles that see every customer's personal data in clear
CLEAR_PII_ROLES = frozenset({"admin", "ops"})
#: roles that read all message content in clear
ALL_MESSAGES_ROLES = frozenset({"admin", "ops"})


class Access(Enum):
    """What a reader gets of one message: everything, its metadata only (content hidden), or nothing."""

    CLEAR = "clear"
    METADATA = "metadata"
    NONE = "none"


@dataclass(frozen=True)
class Reader:
    """The person asking: their role, and for agents the ticket groups they work in and their user id."""

    role: str
    user_id: int | None = None
    groups: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class MessageFacts:
    """What the policy needs to know about a message.

    ``ticket_group`` is the group of the ticket a reply belongs to (None: not a ticket reply);
    ``ticket_assignee`` its assignee; ``customer_groups`` the groups of the customer's tickets."""

    direction: str = "out"
    ticket_group: str | None = None
    ticket_assignee: int | None = None
    customer_groups: frozenset[str] = field(default_factory=frozenset)


def may_read_audit(reader: Reader) -> bool:
    return reader.role in AUDIT_READERS


def _agent_works_on(reader: Reader, groups: Collection[str]) -> bool:
    return reader.role == "agent" and bool(reader.groups.intersection(groups))


def message_access(reader: Reader, message: MessageFacts) -> Access:
    """How much of one message ``reader`` may see."""
    if reader.role in ALL_MESSAGES_ROLES:
        return Access.CLEAR
    is_reply = message.ticket_group is not None
    if reader.role == "agent":
        if is_reply:
            mine = message.ticket_group in reader.groups or (
                reader.user_id is not None and message.ticket_assignee == reader.user_id)
            return Access.CLEAR if mine else Access.NONE
        if message.direction == "in" and _agent_works_on(reader, message.customer_groups):
            return Access.CLEAR
        return Access.METADATA
    if reader.role == "marketer":
        return Access.METADATA if is_reply else Access.CLEAR
    return Access.METADATA  # auditor, finance, developer, unknown roles


def sees_pii(reader: Reader, customer_groups: Collection[str] = ()) -> bool:
    """Whether ``reader`` sees this customer's personal data in clear (``customer_groups``: the groups
    of the customer's tickets, for agents)."""
    return reader.role in CLEAR_PII_ROLES or _agent_works_on(reader, customer_groups)


# -- masking ---------------------------------------------------------------------------------------------
#: profile fields whose values are personal data as a whole, whatever they look like
PII_FIELD = re.compile(r"(phone|mobile|tel(ephone)?$|e-?mail|mail$|address|addr$|id_?card|id_?number|identity|"
                       r"passport|bank|card|account|(real|full|first|last|nick)_?name|^name$|wechat|weixin|"
                       r"unionid|openid|^qq$|birth|license|plate|身份证|手机|电话|邮箱|地址|姓名|银行|卡号|生日)",
                       re.IGNORECASE)
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_free_text(text: str) -> str:
    """Phones, card numbers and e-mail addresses inside free text masked; the rest kept."""
    masked = mask_text(text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", masked) if "@" in masked else masked


def mask_name(name: str) -> str:
    """``李雷`` → ``李*``, ``Li Lei`` → ``L*****``: the first character, the length hidden for short names."""
    name = name.strip()
    if not name:
        return name
    return name[0] + "*" * max(1, min(len(name) - 1, 5))


def _mask_whole(value: Any) -> Any:
    if isinstance(value, str):
        if "@" in value:
            return mask_identity("email", value)
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7 and len(digits) >= len(value.replace(" ", "").replace("-", "")) - 3:
            return digits[:3] + "****" + digits[-4:]
        return mask_name(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "****"
    if isinstance(value, list):
        return [_mask_whole(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_whole(v) for k, v in value.items()}
    return value


def mask_value(value: Any, key: str | None = None) -> Any:
    """A profile attribute (or any JSON value) as a masked reader sees it: fields named like personal
    data masked whole, personal data inside other text masked where it occurs, nested."""
    if key is not None and PII_FIELD.search(key):
        return _mask_whole(value)
    if isinstance(value, str):
        return mask_free_text(value)
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    return value


def customer_view(reader: Reader, customer: Mapping[str, Any], customer_groups: Collection[str] = ()
                  ) -> dict[str, Any]:
    """A customer as ``reader`` may see it. Understands the usual shapes: ``name``, ``attributes``,
    ``identities`` (a list of ``{kind, value}`` or a ``{kind: [values]}`` / ``{kind: value}`` map) and
    any other field (masked like an attribute)."""
    if sees_pii(reader, customer_groups):
        return dict(customer)
    out: dict[str, Any] = {}
    for key, value in customer.items():
        if key in ("id", "customer_id", "merged_into", "timezone", "tags", "created_at", "updated_at"):
            out[key] = value
        elif key in ("name", "display_name") and isinstance(value, str):
            out[key] = mask_name(value)
        elif key == "identities":
            out[key] = _mask_identities(value)
        elif key == "attributes" and isinstance(value, Mapping):
            out[key] = {k: mask_value(v, str(k)) for k, v in value.items()}
        else:
            out[key] = mask_value(value, key)
    out["pii_masked"] = True
    return out


def _mask_identities(value: Any) -> Any:
    if isinstance(value, list):
        masked = []
        for item in value:
            if isinstance(item, Mapping) and "kind" in item and "value" in item:
                masked.append({**item, "value": mask_identity(str(item["kind"]), str(item["value"]))})
            else:
                masked.append(_mask_whole(item))
        return masked
    if isinstance(value, Mapping):
        return {kind: ([mask_identity(str(kind), str(v)) for v in values] if isinstance(values, list)
                       else mask_identity(str(kind), str(values))) for kind, values in value.items()}
    return _mask_whole(value)


def message_view(reader: Reader, message: Mapping[str, Any], facts: MessageFacts,
                 content_keys: Collection[str] = ("content", "text", "body")) -> dict[str, Any] | None:
    """A message as ``reader`` may see it: None when it must not be listed; the content fields set to
    None (and ``content_hidden`` true) when only its metadata may be seen."""
    access = message_access(reader, facts)
    if access is Access.NONE:
        return None
    if access is Access.CLEAR:
        return dict(message)
    return {**{k: (None if k in content_keys else v) for k, v in message.items()}, "content_hidden": True}


def audit_view(reader: Reader, row: Mapping[str, Any]) -> dict[str, Any]:
    """An audit row as an audit reader sees it: admins in clear, auditors with personal data masked."""
    if reader.role == "admin":
        return dict(row)
    return {k: mask_value(v, None if k in ("action", "target", "actor", "at", "id") else k) for k, v in row.items()}
