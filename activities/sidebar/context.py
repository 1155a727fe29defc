"""What the sidebar page asks for, put together: the current chat's customer, their picture, the scripts
(suggested first, then the library, each rendered for this customer) — and one script's use.

The page learns who it is beside from the JS-SDK (``getCurExternalContact`` → ``userId``, the customer's
external_userid; ``getCurExternalChat`` → ``chatId`` of a customer group). A contact Tideflow has not
seen yet becomes a customer the first time a staff member opens the sidebar next to them (identity
``wecom_external_userid``), the way an event about them would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from activities.sidebar import library
from activities.sidebar.library import LibraryError
from activities.sidebar.picture import ArchiveAccess, picture
from activities.sidebar.scripts import ScriptProblem, preview_text, render_message
from activities.sidebar.suggestions import Reason, Situation, suggest
from engine.customers import IdentityError, customer_view, resolve
from engine.db import models
from engine.db.sidebar_models import Script, ScriptImage
from engine.pii import mask_text

EXTERNAL_USERID = "wecom_external_userid"
#: resolves the WeCom media id of an image (uploads it when needed)
MediaFor = Callable[[ScriptImage], str]


def customer_for_contact(db: Session, external_userid: str) -> str:
    """The customer behind a WeCom external contact (created on first sight)."""
    try:
        return resolve(db, {EXTERNAL_USERID: external_userid})
    except IdentityError as exc:
        raise LibraryError(str(exc), "pass the userId getCurExternalContact returned", "external_userid") from None


def template_context(user: models.User, situation: Situation | None) -> dict[str, Any]:
    """What script templates see: ``customer`` (as journeys see them) and ``vars.staff`` (who sends)."""
    return {"customer": dict(situation.customer) if situation else {},
            "vars": {"staff": user.display_name or user.username}}


def _item(script: Script, context: dict[str, Any], reasons: list[Reason], categories: dict[int, str]
          ) -> dict[str, Any]:
    published = script.published or {}
    item: dict[str, Any] = {"id": script.id, "kind": published.get("kind"), "title": published.get("title"),
                            "version": published.get("version"), "team": script.team,
                            "category": categories.get(script.category_id or 0, ""),
                            "requires_approval": script.requires_approval, "reasons": reasons}
    if published.get("kind") == "image":
        item["preview"], item["image_id"] = "", (published.get("content") or {}).get("image_id")
        return item
    try:
        item["preview"] = preview_text(render_message(str(published.get("kind")), published.get("content") or {},
                                                      context, media_id=None))
    except ScriptProblem as exc:
        item["preview"], item["problem"] = "", str(exc)
    return item


def scripts_for(db: Session, user: models.User, situation: Situation | None, query: str = "",
                category_id: int | None = None, limit: int = 50) -> dict[str, Any]:
    """Suggested scripts (with why) and the library's matches for ``query``, rendered for this customer."""
    usable = library.usable_scripts(db, user)
    by_id = {s.id: s for s in usable}
    categories = {c.id: c.name for c in library.categories(db, library.visible_teams(db, user))}
    context = template_context(user, situation)
    suggested: list[dict[str, Any]] = []
    problems: list[str] = []
    if situation is not None:
        found = suggest(library.rules_for(db, user), situation, by_id)
        problems = found.problems
        suggested = [_item(by_id[s.script_id], context, s.reasons, categories) for s in found.scripts[:10]]
    matches = library.find(db, user, query, category_id, limit)
    return {"suggested": suggested, "scripts": [_item(s, context, [], categories) for s in matches],
            "categories": [{"id": i, "name": n} for i, n in categories.items()], "problems": problems}


def sidebar_for_customer(db: Session, user: models.User, customer_id: str, now: datetime, query: str = "",
                         category_id: int | None = None, archive: ArchiveAccess | None = None) -> dict[str, Any]:
    shown, situation = picture(db, user, customer_id, now, archive=archive)
    return {"customer": shown, "latest_message": mask_text(situation.latest_message),
            **scripts_for(db, user, situation, query, category_id)}


def use_script(db: Session, user: models.User, script_id: int, now: datetime, *, customer_id: str | None,
               chat_id: str | None, media_for: MediaFor | None = None) -> dict[str, Any]:
    """Render a published script for this chat, record the use, and hand back the sendChatMessage
    parameters with the use id the page reports the client's answer under."""
    script = library.usable_script(db, user, script_id)
    situation = picture(db, user, customer_id, now)[1] if customer_id else None
    media_id: str | None = None
    published = script.published or {}
    if published.get("kind") == "image":
        image = db.get(ScriptImage, int((published.get("content") or {}).get("image_id") or 0))
        if image is None:
            raise LibraryError(f"script {script_id}'s image is gone", "fix the script in the library", "image_id")
        if media_for is None:
            raise LibraryError("images are sent through WeCom: configure the sidebar's WeCom app",
                               "set agent_id and app_secret on the WeCom connector", "image_id", 409)
        media_id = media_for(image)
    message = library.render_published(script, template_context(user, situation), media_id)
    if situation is not None and situation.customer.get("pii_masked") and customer_id:
        # the viewer sees this customer's personal data masked (engine/read_policy.py): a script that fills
        # some in would send the masked text — or, rendered in clear, show the viewer what they may not read
        clear = Situation(customer=customer_view(db, customer_id, now), latest_message="")
        if library.render_published(script, template_context(user, clear), media_id) != message:
            raise LibraryError(f"script {script_id} fills in the customer's personal data, which your role "
                               f"({user.role}) sees masked for this customer",
                               "use a script without personal fields, or let a colleague who works this "
                               "customer's tickets send it", "script_id", 403)
    use = library.record_use(db, user, script, message, now, customer_id=customer_id, chat_id=chat_id)
    return {"use_id": use.id, "script_id": script.id, "version": use.version, "message": message}
