"""The labels of the journeys area's values (``{{ x|label("...") }}``): why a journey failed."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("failure_kind", "failure kind", {
    "action": NC_("failure kind", "action failed"),
    "logic": NC_("failure kind", "condition or expression error"),
    "engine": NC_("failure kind", "engine"),
})
