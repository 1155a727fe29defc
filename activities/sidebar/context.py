"""What the sidebar page asks for, put together: the current chat's customer, their picture, the scripts
(suggested first, then the library, each rendered for this customer) — and one script's use.

The page learns who it is beside from the JS-SDK (``getCurExternalContact`` → ``userId``, the customer's
external_userid; ``getCurExternalChat`` → ``chatId`` of a customer group). A contact Tideflow has not
seen yet becomes a customer the first time a staff member opens the sidebar next to them (identity
``wecom_external_userid``), the way an event about them would.

Scripts and suggestion rules are evaluated by pure functions (:func:`activities.sidebar.scripts.previews`,
:func:`activities.sidebar.scripts.render_message`, :func:`activities.sidebar.suggestions.suggest`) called
through ``run``: the web app passes its evaluation pool (``designer.evaluation.isolated``, engine/isolation.py),
so a costly script or condition is stopped in a worker process that is killed past its deadline and never
stalls the web process; without one they run here (tests, scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from activities.sidebar import library
from activities.sidebar.library import LibraryError
from activities.sidebar.picture import ArchiveAccess, picture
from activities.sidebar.scripts import previews
from activities.sidebar.suggestions import Reason, Situation, Suggestions, suggest
from engine.customers import IdentityError, customer_view, resolve
from engine.db import models
from engine.db.sidebar_models import Script, ScriptImage
from engine.isolation import EvaluationTimeout, IsolationError
from engine.pii import mask_text
from engine.text import Msg

EXTERNAL_USERID = "wecom_external_userid"
#: resolves the WeCom media id of an image (uploads it when needed)
MediaFor = Callable[[ScriptImage], str]
#: runs a pure function ``run(fn, *args)`` where the caller wants it (the web app: its evaluation pool)
Evaluate = library.Evaluate
here = library.here


def customer_for_contact(db: Session, external_userid: str) -> str:
    """The customer behind a WeCom external contact (created on first sight)."""
    try:
        return resolve(db, {EXTERNAL_USERID: external_userid})
    except IdentityError as exc:
        raise LibraryError(exc.message, Msg("pass the userId getCurExternalContact returned"),
                           "external_userid") from None


def template_context(user: models.User, situation: Situation | None) -> dict[str, Any]:
    """What script templates see: ``customer`` (as journeys see them) and ``vars.staff`` (who sends)."""
    return {"customer": dict(situation.customer) if situation else {},
            "vars": {"staff": user.display_name or user.username}}


def _item(script: Script, shown: tuple[str, str | None], reasons: list[Reason], categories: dict[int, str]
          ) -> dict[str, Any]:
    published = script.published or {}
    item: dict[str, Any] = {"id": script.id, "kind": published.get("kind"), "title": published.get("title"),
                            "version": published.get("version"), "team": script.team,
                            "category": categories.get(script.category_id or 0, ""),
                            "requires_approval": script.requires_approval, "reasons": reasons}
    item["preview"] = shown[0]
    if shown[1] is not None:
        item["problem"] = shown[1]
    if published.get("kind") == "image":
        item["image_id"] = (published.get("content") or {}).get("image_id")
    return item


#: after a batch of previews overran its deadline, at most this many single scripts may overrun theirs too
#: before the rest are left unpreviewed (each overrun costs the sidebar a whole deadline)
MAX_SLOW_PREVIEWS = 2


def _previews(run: Evaluate, items: list[tuple[int, str, Any]], context: dict[str, Any]
              ) -> dict[int, tuple[str, Any]]:
    """Each script's preview, or why it has none. One pool call for all of them; when that call overruns its
    deadline (a script too slow for it), each script again on its own, so the others are previewed and the
    slow one says its own reason. A busy pool evaluated none of them, which is what each then says."""
    try:
        shown: dict[int, tuple[str, Any]] = run(previews, items, context)
        return shown
    except EvaluationTimeout:
        pass
    except IsolationError as exc:
        reason = Msg("not previewed: %(reason)s", reason=str(exc))
        return {script_id: ("", reason) for script_id, _kind, _content in items}
    shown, slow = {}, 0
    for item in items:
        if slow >= MAX_SLOW_PREVIEWS:
            shown[item[0]] = ("", Msg("not previewed: %(n)s other scripts took too long to preview", n=slow))
            continue
        try:
            shown.update(run(previews, [item], context))
        except IsolationError as exc:
            slow += isinstance(exc, EvaluationTimeout)
            shown[item[0]] = ("", Msg("not previewed: %(reason)s", reason=str(exc)))
    return shown


def scripts_for(db: Session, user: models.User, situation: Situation | None, query: str = "",
                category_id: int | None = None, limit: int = 50, run: Evaluate = here) -> dict[str, Any]:
    """Suggested scripts (with why) and the library's matches for ``query``, rendered for this customer
    (rules and templates evaluated through ``run``; when that fails — the pool busy, or stopped past its
    deadline — the scripts are listed without previews and the reason is said, never a broken sidebar)."""
    usable = library.usable_scripts(db, user)
    by_id = {s.id: s for s in usable}
    categories = {c.id: c.name for c in library.categories(db, library.visible_teams(db, user))}
    context = template_context(user, situation)
    found = Suggestions([], [])
    if situation is not None:
        try:
            found = run(suggest, library.rules_for(db, user), situation, list(by_id))
        except IsolationError as exc:
            found = Suggestions([], [Msg("the suggestion rules could not be evaluated: %(reason)s", reason=str(exc))])
    top = [(by_id[s.script_id], s.reasons) for s in found.scripts[:10]]
    matches = library.find(db, user, query, category_id, limit)
    wanted = {s.id: s for s in [*(script for script, _ in top), *matches]}
    items = [(s.id, str((s.published or {}).get("kind")), (s.published or {}).get("content") or {})
             for s in wanted.values()]
    shown = _previews(run, items, context) if items else {}
    return {"suggested": [_item(script, shown[script.id], reasons, categories) for script, reasons in top],
            "scripts": [_item(s, shown[s.id], [], categories) for s in matches],
            "categories": [{"id": i, "name": n} for i, n in categories.items()], "problems": found.problems}


def sidebar_for_customer(db: Session, user: models.User, customer_id: str, now: datetime, query: str = "",
                         category_id: int | None = None, archive: ArchiveAccess | None = None,
                         run: Evaluate = here) -> dict[str, Any]:
    shown, situation = picture(db, user, customer_id, now, archive=archive)
    return {"customer": shown, "latest_message": mask_text(situation.latest_message),
            **scripts_for(db, user, situation, query, category_id, run=run)}


def use_script(db: Session, user: models.User, script_id: int, now: datetime, *, customer_id: str | None,
               chat_id: str | None, media_for: MediaFor | None = None, run: Evaluate = here) -> dict[str, Any]:
    """Render a published script for this chat, record the use, and hand back the sendChatMessage
    parameters with the use id the page reports the client's answer under."""
    script = library.usable_script(db, user, script_id)
    situation = picture(db, user, customer_id, now)[1] if customer_id else None
    media_id: str | None = None
    published = script.published or {}
    if published.get("kind") == "image":
        image = db.get(ScriptImage, int((published.get("content") or {}).get("image_id") or 0))
        if image is None:
            raise LibraryError(Msg("script %(script_id)s's image is gone", script_id=script_id),
                               Msg("fix the script in the library"), "image_id")
        if media_for is None:
            raise LibraryError(Msg("images are sent through WeCom: configure the sidebar's WeCom app"),
                               Msg("set agent_id and app_secret on the WeCom connector"), "image_id", 409)
        media_id = media_for(image)
    message = library.render_published(script, template_context(user, situation), media_id, run=run)
    if situation is not None and situation.customer.get("pii_masked") and customer_id:
        # the viewer sees this customer's personal data masked (engine/read_policy.py): a script that fills
        # some in would send the masked text — or, rendered in clear, show the viewer what they may not read
        clear = Situation(customer=customer_view(db, customer_id, now), latest_message="")
        if library.render_published(script, template_context(user, clear), media_id, run=run) != message:
            raise LibraryError(Msg("script %(script_id)s fills in the customer's personal data, which your role "
                                   "(%(role)s) sees masked for this customer", script_id=script_id, role=user.role),
                               Msg("use a script without personal fields, or let a colleague who works this "
                                   "customer's tickets send it"), "script_id", 403)
    use = library.record_use(db, user, script, message, now, customer_id=customer_id, chat_id=chat_id)
    return {"use_id": use.id, "script_id": script.id, "version": use.version, "message": message}
