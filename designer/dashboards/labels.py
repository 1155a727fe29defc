"""The labels of the dashboards area's values (``{{ x|label("...") }}``): each board's title and tab, and the
time ranges a board offers."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("dashboard_title", "dashboard", {
    "marketer": NC_("dashboard", "Marketing dashboard"), "ops": NC_("dashboard", "Service dashboard"),
    "finance": NC_("dashboard", "Finance dashboard"),
})
add_labels("dashboard_tab", "dashboard tab", {
    "marketer": NC_("dashboard tab", "Marketing"), "ops": NC_("dashboard tab", "Service"),
    "finance": NC_("dashboard tab", "Finance"),
})
add_labels("range_preset", "time range", {
    "7": NC_("time range", "Last 7 days"), "30": NC_("time range", "Last 30 days"),
    "90": NC_("time range", "Last 90 days"), "month": NC_("time range", "This month"),
    "last_month": NC_("time range", "Last month"), "custom": NC_("time range", "Custom"),
})
