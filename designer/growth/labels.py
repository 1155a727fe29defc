"""The labels of the growth area's statuses and other values (``{{ x|label("...") }}``).

Made by tools/i18n_convert.py from the old keyed catalogue; each table's gettext context is the old
key prefix. Rename a kind to something clearer (with its uses) whenever you like."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("gr.cs", "gr.cs", {
    "active": NC_("gr.cs", "Running"),
    "draft": NC_("gr.cs", "Draft"),
    "ended": NC_("gr.cs", "Ended"),
    "paused": NC_("gr.cs", "Paused"),
})
add_labels("gr.f", "gr.f", {
    "accepted": NC_("gr.f", "Passed the rules"),
    "adds": NC_("gr.f", "Adds through codes"),
    "counted": NC_("gr.f", "Ever counted"),
    "goal_reached": NC_("gr.f", "Reached the goal"),
    "in_review": NC_("gr.f", "In review"),
    "participants": NC_("gr.f", "Participants"),
    "revoked": NC_("gr.f", "Revoked / left"),
    "rewarded": NC_("gr.f", "Rewarded"),
    "valid": NC_("gr.f", "Valid now"),
})
add_labels("gr.platform", "gr.platform", {
    "wechat_oa": NC_("gr.platform", "OA parametric QR code"),
    "wecom": NC_("gr.platform", "WeCom contact-me code"),
})
add_labels("gr.rule", "gr.rule", {
    "blocklisted": NC_("gr.rule", "Blocklisted"),
    "early_leavers": NC_("gr.rule", "Invitees left early"),
    "fast_invites": NC_("gr.rule", "Invites too fast"),
    "new_account": NC_("gr.rule", "New account"),
    "no_avatar": NC_("gr.rule", "No avatar"),
    "no_nickname": NC_("gr.rule", "No nickname"),
    "shared_device": NC_("gr.rule", "Shared device / IP / address"),
})
add_labels("gr.rw", "gr.rw", {
    "failed": NC_("gr.rw", "Failed"),
    "issued": NC_("gr.rw", "Issued"),
    "issuing": NC_("gr.rw", "Issuing"),
})
add_labels("gr.st", "gr.st", {
    "active": NC_("gr.st", "Active"),
    "creating": NC_("gr.st", "Being created"),
    "deleted": NC_("gr.st", "Deleted"),
    "disabled": NC_("gr.st", "Disabled"),
})
add_labels("gr.ws", "gr.ws", {
    "expired": NC_("gr.ws", "Not sent: over 20 seconds"),
    "failed": NC_("gr.ws", "Sending failed"),
    "no_code": NC_("gr.ws", "Not sent: no WelcomeCode"),
    "none": NC_("gr.ws", "No welcome set"),
    "other_app": NC_("gr.ws", "Not sent: another app is sending (41096)"),
    "pending": NC_("gr.ws", "Sending"),
    "sending": NC_("gr.ws", "Sending"),
    "sent": NC_("gr.ws", "Sent"),
    "sent_unconfirmed": NC_("gr.ws", "Sent (unconfirmed)"),
    "used": NC_("gr.ws", "Not sent: welcome code already used (41051)"),
})
