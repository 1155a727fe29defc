"""The labels of the loyalty area's values (``{{ x|label("...") }}``): what a points-ledger entry did and why
(the customer page's points section)."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("points_entry", "points entry", {
    "earn": NC_("points entry", "Earned"), "burn": NC_("points entry", "Redeemed"),
    "reverse": NC_("points entry", "Refund reversal"), "expire": NC_("points entry", "Expired"),
    "adjust": NC_("points entry", "Adjusted"), "cancel": NC_("points entry", "Redemption cancelled"),
})
#: a reason a shop or a flow gives freely shows as written when it is none of these
add_labels("points_reason", "points reason", {
    "order": NC_("points reason", "Order"), "refund": NC_("points reason", "Refund"),
    "expired": NC_("points reason", "Expired"), "backfill": NC_("points reason", "Order import"),
    "redeem": NC_("points reason", "Redemption"), "signup": NC_("points reason", "Sign-up"),
    "review": NC_("points reason", "Review"), "referral": NC_("points reason", "Referral"),
    "cancelled": NC_("points reason", "Cancelled"),
})
