"""The labels of the decisions area's statuses and other values (``{{ x|label("...") }}``).

Made by tools/i18n_convert.py from the old keyed catalogue; each table's gettext context is the old
key prefix. Rename a kind to something clearer (with its uses) whenever you like."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("drg", "drg", {
    "information": NC_("drg", "information requirement"),
    "knowledge": NC_("drg", "knowledge requirement (invocation)"),
})
add_labels("drg.kind", "drg.kind", {
    "bkm": NC_("drg.kind", "Business knowledge model"),
    "decision": NC_("drg.kind", "Decision"),
    "input": NC_("drg.kind", "Input data"),
    "service": NC_("drg.kind", "Decision service"),
})
add_labels("drg.logic", "drg.logic", {
    "conditional": NC_("drg.logic", "conditional"),
    "context": NC_("drg.logic", "context"),
    "filter": NC_("drg.logic", "filter"),
    "function": NC_("drg.logic", "function"),
    "invocation": NC_("drg.logic", "invocation"),
    "iterator": NC_("drg.logic", "iterator"),
    "list": NC_("drg.logic", "list"),
    "literal": NC_("drg.logic", "literal expression"),
    "none": NC_("drg.logic", "no logic"),
    "relation": NC_("drg.logic", "relation"),
    "table": NC_("drg.logic", "decision table"),
})
