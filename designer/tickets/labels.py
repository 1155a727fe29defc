"""The labels of the tickets area's values (``{{ x|label("...") }}``): what became of a reply, why a reply cannot
reach the customer, how a group assigns its tickets and the types of a ticket type's custom fields."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("reply_delivery", "reply delivery", {
    "sent": NC_("reply delivery", "delivered"), "queued": NC_("reply delivery", "queued"),
    "failed": NC_("reply delivery", "failed (the channel answered an error)"),
    "not_configured": NC_("reply delivery", "the channel is not set up"),
    "no_address": NC_("reply delivery", "the customer has no address on this channel"),
    "no_customer": NC_("reply delivery", "the ticket has no customer"),
    "no_channel": NC_("reply delivery", "the customer has no channel at all"),
    "other": NC_("reply delivery", "unknown outcome"),
})
#: a sentence each, with the channel's name as %(channel)s
add_labels("reply_reach", "reply reach", {
    "not_configured": NC_("reply reach", "Note: the %(channel)s channel is not set up, so a reply cannot reach the "
                                         "customer. Ask an admin to set it up under Connectors, or reach the customer "
                                         "another way."),
    "no_address": NC_("reply reach", "Note: the customer has no %(channel)s address, so a reply cannot reach them."),
    "no_customer": NC_("reply reach", "Note: this ticket has no customer; a reply is only recorded on the ticket."),
    "no_channel": NC_("reply reach", "Note: the customer has no channel to reach them on (WeCom, OA, phone, email); "
                                     "a reply is only recorded on the ticket."),
})
add_labels("assignment_strategy", "assignment strategy", {
    "round_robin": NC_("assignment strategy", "round robin"),
    "least_loaded": NC_("assignment strategy", "least loaded first"),
    "skill_based": NC_("assignment strategy", "by skills"),
})
add_labels("field_type", "custom field type", {
    "text": NC_("custom field type", "text"), "number": NC_("custom field type", "whole number"),
    "choice": NC_("custom field type", "choice"), "date": NC_("custom field type", "date"),
})
