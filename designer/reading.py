"""The read policy (engine/read_policy.py) applied to what the web app answers: every route and page that
returns messages, customers or audit rows calls these, and none decides on its own who sees what.

The facts the pure policy needs are gathered from the database by :mod:`activities.reading` (shared with the
chat sidebar, so both apply the one policy); this module adds the pages' words for hidden and masked data.
"""

from __future__ import annotations

from activities.reading import (
    customer_for,
    customer_groups,
    identities_for,
    messages_for,
    names_for,
    reader_of,
    sees_customer_pii,
    ticket_of_message,
)
from designer import i18n

__all__ = ["customer_for", "customer_groups", "identities_for", "messages_for", "names_for", "reader_of",
           "sees_customer_pii", "ticket_of_message"]

i18n.add({
    "zh-CN": {"rd.hidden": "（你的角色不能查看消息内容）", "rd.masked": "个人信息已按你的角色打码。"},
    "en": {"rd.hidden": "(your role may not read message content)",
           "rd.masked": "Personal data is masked for your role."},
})
