"""WeCom app messages to staff members (应用消息, ``message/send`` [90236]): how compliance alerts reach
a supervisor's WeCom client.

A text message from the self-built app ``agentid`` to up to 1,000 members (``touser`` joined by
``|``). WeCom answers which members were not reachable (``invaliduser``: not in the app's visible
range, or unknown); the caller records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from connectors.wecom.client import WeComClient
from wording import Msg

MAX_APP_MESSAGE_USERS = 1000
#: text messages are at most 2048 bytes
MAX_APP_TEXT_BYTES = 2048


@dataclass(frozen=True)
class AppMessageResult:
    msgid: str
    invalid_users: list[str] = field(default_factory=list)


def send_text(client: WeComClient, agent_id: int, users: Sequence[str], text: str) -> AppMessageResult:
    """Send ``text`` from app ``agent_id`` to these members; text longer than WeCom takes is cut with "…"."""
    touser = list(dict.fromkeys(u for u in users if u))
    if not touser:
        raise ValueError(Msg("an app message needs at least one userid"))
    if len(touser) > MAX_APP_MESSAGE_USERS:
        raise ValueError(Msg("WeCom takes at most %(max_app_message_users)s users per app message",
                             max_app_message_users=MAX_APP_MESSAGE_USERS))
    if not text.strip():
        raise ValueError(Msg("an app message needs a text"))
    data = text.encode("utf-8")
    if len(data) > MAX_APP_TEXT_BYTES:
        text = data[:MAX_APP_TEXT_BYTES - 3].decode("utf-8", errors="ignore") + "…"
    answer = client.call("POST", "/cgi-bin/message/send", "message/send",
                         body={"touser": "|".join(touser), "msgtype": "text", "agentid": agent_id,
                               "text": {"content": text}, "safe": 0})
    invalid = [u for u in str(answer.get("invaliduser") or "").split("|") if u]
    return AppMessageResult(str(answer.get("msgid") or ""), invalid)
