"""The labels of the quarantine's values (``{{ x|label("...") }}``): what kind of work an entry is, its
status, and what its error means in words."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("quarantine_kind", "quarantine kind", {
    "event": NC_("quarantine kind", "Event (routing kept failing)"),
    "push": NC_("quarantine kind", "Connector push (not a valid event)"),
    "ticket_start": NC_("quarantine kind", "Ticket start (its workflow did not start)"),
})
add_labels("quarantine_status", "quarantine status", {
    "open": NC_("quarantine status", "open"), "redriven": NC_("quarantine status", "sent again"),
    "dropped": NC_("quarantine status", "dropped"), "all": NC_("quarantine status", "all"),
})
add_labels("quarantine_error", "quarantine error", {
    "too_deep": NC_("quarantine error", "The payload is nested too deeply to be processed."),
    "invalid_event": NC_("quarantine error", "It is not a valid event (a field is missing or wrong)."),
    "not_startable": NC_("quarantine error", "The ticket's workflow could not be started."),
    "too_costly": NC_("quarantine error", "An expression costs too much on this event's data."),
    "other": NC_("quarantine error", "Routing it failed every time it was tried."),
})
