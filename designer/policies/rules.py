"""The send rules that apply to a send node, in words: the workspace's policy (:func:`engine.policies.
current_policy`) with the flow's settings and the node's message category. Shown in the send node's
property form and, compactly, on the canvas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from designer.i18n import Text
from designer.policies import text as _text  # noqa: F401  (the rules' strings join the catalogue)
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


def window_text(t: Text, iso: str) -> str:
    amount, unit = to_amount(iso)
    return f"{amount} {t['editor.unit.' + unit]}"


def rules(policy: SendPolicy, settings: Mapping[str, Any], config: Mapping[str, Any], t: Text) -> list[dict[str, str]]:
    """The rules a send node's messages meet, each ``{"kind", "text"}``: consent, the frequency cap and
    quiet hours — or why they do not apply (a transactional message, a flow that turned the cap off)."""
    from engine.durations import format_duration

    out = [{"kind": "consent", "text": t["pol.rule.consent"]}]
    if config.get("category") == "transactional":
        out.append({"kind": "exempt", "text": t["pol.rule.transactional"]})
        return out
    if policy.cap is None:
        out.append({"kind": "cap-off", "text": t["pol.rule.no_cap"]})
    elif settings.get("frequency_capped", True) is False:
        out.append({"kind": "cap-off", "text": t["pol.rule.flow_uncapped"]})
    else:
        out.append({"kind": "cap", "text": t["pol.rule.cap"].format(
            count=policy.cap.count, window=window_text(t, format_duration(policy.cap.window)))})
    own = settings.get("quiet_hours")
    if isinstance(own, Mapping) and own.get("start") and own.get("start") == own.get("end"):
        out.append({"kind": "quiet-off", "text": t["pol.rule.flow_no_quiet"]})
    elif isinstance(own, Mapping) and own.get("start"):
        out.append({"kind": "quiet", "text": t["pol.rule.quiet_flow"].format(start=own["start"], end=own["end"])})
    elif policy.quiet:
        out.append({"kind": "quiet", "text": t["pol.rule.quiet_default"].format(start=policy.quiet[0],
                                                                               end=policy.quiet[1])})
    else:
        out.append({"kind": "quiet-off", "text": t["pol.rule.no_quiet"]})
    return out


def canvas_policy(policy: SendPolicy, t: Text) -> dict[str, Any]:
    """What the canvas needs to label send nodes itself (it knows the flow settings and node configs)."""
    from engine.durations import format_duration

    return {"cap": {"count": policy.cap.count, "window": window_text(t, format_duration(policy.cap.window))}
            if policy.cap else None,
            "quiet": list(policy.quiet) if policy.quiet else None, "sendTypes": sorted(SEND_TYPES)}
