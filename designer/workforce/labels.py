"""The labels of the workforce area's statuses and other values (``{{ x|label("...") }}``).

Made by tools/i18n_convert.py from the old keyed catalogue; each table's gettext context is the old
key prefix. Rename a kind to something clearer (with its uses) whenever you like."""

from __future__ import annotations

from activities.workforce.handover import BLOCK_REASONS
from designer.display import add_labels
from designer.i18n import NC_

#: why a handover item cannot move: the planner's own table (its English is what the item keeps)
add_labels("wf.block", "wf.block", BLOCK_REASONS)
add_labels("wf.ct", "wf.ct", {
    "group": NC_("wf.ct", "customer groups (from their owner)"),
    "single": NC_("wf.ct", "customers (from their own staff member)"),
})
add_labels("wf.dir", "wf.dir", {
    "both": NC_("wf.dir", "all messages"),
    "customer": NC_("wf.dir", "customer messages"),
    "staff": NC_("wf.dir", "staff messages"),
})
add_labels("wf.hs", "wf.hs", {
    "cancelled": NC_("wf.hs", "stopped"),
    "done": NC_("wf.hs", "done"),
    "failed": NC_("wf.hs", "failed"),
    "planned": NC_("wf.hs", "planned"),
    "running": NC_("wf.hs", "running"),
    "waiting": NC_("wf.hs", "waiting for takeovers"),
})
add_labels("wf.is", "wf.is", {
    "blocked": NC_("wf.is", "cannot move"),
    "cancelled": NC_("wf.is", "cancelled"),
    "done": NC_("wf.is", "taken over"),
    "failed": NC_("wf.is", "failed"),
    "limit_reached": NC_("wf.is", "colleague's customer limit reached"),
    "planned": NC_("wf.is", "planned"),
    "refused": NC_("wf.is", "refused by the customer"),
    "sending": NC_("wf.is", "sending"),
    "sent": NC_("wf.is", "waiting for the takeover (24 h)"),
})
add_labels("wf.kind", "wf.kind", {
    "customer": NC_("wf.kind", "customer"),
    "group": NC_("wf.kind", "group"),
})
add_labels("wf.mode", "wf.mode", {
    "onjob": NC_("wf.mode", "in service (the customer is told)"),
    "resigned": NC_("wf.mode", "departed member (离职继承)"),
})
add_labels("wf.ms", "wf.ms", {
    "cancelled": NC_("wf.ms", "cancelled"),
    "done": NC_("wf.ms", "done"),
    "draft": NC_("wf.ms", "draft"),
    "failed": NC_("wf.ms", "failed"),
    "sending": NC_("wf.ms", "sending"),
})
add_labels("wf.rs", "wf.rs", {
    "already_received": NC_("wf.rs", "already received another mass message"),
    "cancelled": NC_("wf.rs", "cancelled"),
    "deferred": NC_("wf.rs", "at the limit, deferred"),
    "failed": NC_("wf.rs", "failed"),
    "not_friend": NC_("wf.rs", "not a friend / group dismissed"),
    "not_sent": NC_("wf.rs", "not sent"),
    "not_started": NC_("wf.rs", "not sent: the mass send was not started"),
    "queued": NC_("wf.rs", "queued"),
    "requeued": NC_("wf.rs", "moved to the new owner"),
    "sent": NC_("wf.rs", "sent"),
    "skipped: at limit": NC_("wf.rs", "at the allowance limit"),
    "skipped: no owner": NC_("wf.rs", "no staff member"),
    "waiting": NC_("wf.rs", "waiting for the sender"),
})
add_labels("wf.sev", "wf.sev", {
    "critical": NC_("wf.sev", "critical"),
    "high": NC_("wf.sev", "high"),
    "low": NC_("wf.sev", "low"),
    "medium": NC_("wf.sev", "medium"),
})
add_labels("wf.sg", "wf.sg", {
    "by_tag": NC_("wf.sg", "by customer tag"),
    "by_team": NC_("wf.sg", "by the customer's team"),
    "colleague": NC_("wf.sg", "all to one colleague"),
    "round_robin": NC_("wf.sg", "round-robin in the department"),
})
add_labels("wf.st", "wf.st", {
    "active": NC_("wf.st", "employed"),
    "resigned": NC_("wf.st", "left"),
})
add_labels("wf.ts", "wf.ts", {
    "cancelled": NC_("wf.ts", "cancelled"),
    "expired": NC_("wf.ts", "not confirmed in time"),
    "failed": NC_("wf.ts", "could not be created"),
    "pending": NC_("wf.ts", "being created"),
    "sent": NC_("wf.ts", "confirmed and sent"),
    "waiting": NC_("wf.ts", "waiting for staff confirmation"),
})
add_labels("wf.wk", "wf.wk", {
    "keyword": NC_("wf.wk", "keyword"),
    "regex": NC_("wf.wk", "regex"),
})
