"""The read policy (engine/read_policy.py) applied to what the web app answers: every route and page that
returns messages, customers or audit rows calls these, and none decides on its own who sees what.

The facts the pure policy needs are gathered from the database by :mod:`activities.reading` (shared with the
chat sidebar, so both apply the one policy); the pages' words for hidden and masked data are in their templates.
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

__all__ = ["customer_for", "customer_groups", "identities_for", "messages_for", "names_for", "reader_of",
           "sees_customer_pii", "ticket_of_message"]
