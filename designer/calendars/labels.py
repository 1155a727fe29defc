"""The labels of the calendars area's values (``{{ x|label("...") }}``): weekdays, and how a year's calendar
differs from the State Council notice (each with the days as %(days)s)."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("weekday", "weekday", {
    "1": NC_("weekday", "Mon"), "2": NC_("weekday", "Tue"), "3": NC_("weekday", "Wed"), "4": NC_("weekday", "Thu"),
    "5": NC_("weekday", "Fri"), "6": NC_("weekday", "Sat"), "7": NC_("weekday", "Sun"),
})
add_labels("calendar_difference", "calendar difference", {
    "removed_holidays": NC_("calendar difference", "Working although the notice gives a day off: %(days)s"),
    "added_holidays": NC_("calendar difference", "Extra days off: %(days)s"),
    "removed_workdays": NC_("calendar difference", "Not working a make-up day of the notice: %(days)s"),
    "added_workdays": NC_("calendar difference", "Extra working weekends: %(days)s"),
})
