"""The labels of the people area's values (``{{ x|label("...") }}``): a user's status, a token's scope and what
a password link is for."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("user_status", "user status", {
    "active": NC_("user status", "active"), "disabled": NC_("user status", "disabled"),
    "invited": NC_("user status", "invited"), "locked": NC_("user status", "locked"),
})
add_labels("token_scope", "token scope", {
    "full": NC_("token scope", "full (all the role may)"), "read": NC_("token scope", "read only"),
    "events": NC_("token scope", "send events only (and read)"),
})
add_labels("link_purpose", "password link", {
    "invite": NC_("password link", "Invitation link (shown this once: copy it and send it to the user):"),
    "reset": NC_("password link", "Password-reset link (shown this once: copy it and send it to the user):"),
})
