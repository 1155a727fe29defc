"""The send rules that apply to a send node, in words: the workspace's policy (:func:`engine.policies.
current_policy`) with the flow's settings and the node's message category. Shown in the send node's
property form and, compactly, on the canvas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from designer.display import label
from designer.i18n import _
from engine.db.session import session_factory
from engine.durations import to_amount
from engine.policies import SendPolicy, current_policy, env_cap

#: node types whose messages pass the policy gate
SEND_TYPES = frozenset({"action.send_message"})


def workspace_policy(db_url: str) -> SendPolicy:
    try:
        with session_factory(db_url)() as db:
            return current_policy(db)
    except SQLAlchemyError:  # an older schema: the environment's cap, as the gate would use
        return SendPolicy(env_cap())


def window_text(iso: str) -> str:
    """``P7D`` → "7 天" / "7 days"."""
    amount, unit = to_amount(iso)
    return f"{amount} {label(unit, 'duration_unit')}"


def rules(policy: SendPolicy, settings: Mapping[str, Any], config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The rules a send node's messages meet, each ``{"kind", "text"}`` in the reader's language: consent, the
    frequency cap and quiet hours — or why they do not apply (a transactional message, a flow that turned the cap
    off)."""
    from engine.durations import format_duration

    out = [{"kind": "consent", "text": _("Not sent to customers who opted out")}]
    if config.get("category") == "transactional":
        out.append({"kind": "exempt", "text": _("Transactional: exempt from the cap and quiet hours")})
        return out
    if policy.cap is None:
        out.append({"kind": "cap-off", "text": _("Frequency cap: off")})
    elif settings.get("frequency_capped", True) is False:
        out.append({"kind": "cap-off", "text": _("Frequency cap: turned off for this flow")})
    else:
        out.append({"kind": "cap", "text": _("Frequency cap: at most %(count)s promotional messages per customer in "
                                             "%(window)s (all flows); more are skipped") % {
            "count": policy.cap.count, "window": window_text(format_duration(policy.cap.window))}})
    own = settings.get("quiet_hours")
    if isinstance(own, Mapping) and own.get("start") and own.get("start") == own.get("end"):
        out.append({"kind": "quiet-off", "text": _("Quiet hours: none for this flow")})
    elif isinstance(own, Mapping) and own.get("start"):
        out.append({"kind": "quiet", "text": _("Quiet hours: %(start)s–%(end)s (this flow's, customer's time zone); "
                                               "messages wait until they end") % {"start": own["start"],
                                                                                  "end": own["end"]}})
    elif policy.quiet:
        out.append({"kind": "quiet", "text": _("Quiet hours: %(start)s–%(end)s (the default, customer's time zone); "
                                               "messages wait until they end") % {"start": policy.quiet[0],
                                                                                  "end": policy.quiet[1]}})
    else:
        out.append({"kind": "quiet-off", "text": _("Quiet hours: none")})
    return out


def canvas_policy(policy: SendPolicy) -> dict[str, Any]:
    """What the canvas needs to label send nodes itself (it knows the flow settings and node configs)."""
    from engine.durations import format_duration

    return {"cap": {"count": policy.cap.count, "window": window_text(format_duration(policy.cap.window))}
            if policy.cap else None,
            "quiet": list(policy.quiet) if policy.quiet else None, "sendTypes": sorted(SEND_TYPES)}
