"""The chat sidebar's pages: ``/sidebar`` (the H5 page WeCom opens beside a chat), its WeCom sign-in
(``/sidebar/oauth``) and ``/sidebar/view`` (the body for one chat, server-rendered for the page's script).

Sign-in: without a session, ``/sidebar`` sends the browser through WeCom's OAuth with a ``state`` that is
also kept in a cookie (SameSite=Lax, path /sidebar), so only a sign-in this browser started is accepted;
``/sidebar/oauth`` exchanges the code for the member's UserID and opens the linked user's session. Every
refusal is a page saying why and what to do — never a loop back to WeCom.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from activities.sidebar import staff
from activities.sidebar.wecom import NotConfigured, sidebar_app
from connectors.wecom.api_errors import ApiError as WeComError
from connectors.wecom.jsapi import check_code, oauth_url
from designer import auth, i18n
from designer.auth import SESSION_COOKIE, current_user, get_db_url, public, require
from designer.display import label
from designer.i18n import _, translate
from designer.pages import render, templates
from designer.permissions import CUSTOMER_READERS
from designer.sidebar import labels as _labels  # noqa: F401  (its status labels)
from designer.sidebar.api import ContextIn, context
from engine import auth as engine_auth
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import message_of

router = APIRouter(include_in_schema=False)
DbUrl = Annotated[str, Depends(get_db_url)]
Staff = Annotated[User, Depends(require(*CUSTOMER_READERS))]
STATE_COOKIE = "tideflow_sidebar_state"
JS_TEXT = ("connecting", "noChat", "configFailed", "sending", "sent", "sendFailed", "cancelled", "failed",
           "signedOut", "done", "done_tag", "done_untag", "done_enroll", "done_coupon", "done_ticket",
           "couponRefused", "notEntered", "notInWeCom", "notRecorded",
           "notRecordedSent")


def _refused(request: Request, status: int, message: str, fix: str = "", retry: bool = False) -> HTMLResponse:
    lang = i18n.current_language()
    response = templates.TemplateResponse(request, "sidebar/refused.html",
                                          {"lang": lang, "message": message, "fix": fix, "retry": retry},
                                          status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _user_or_none(request: Request, db_url: str) -> User | None:
    try:
        return await current_user(request, db_url)
    except HTTPException:  # not signed in, or the session expired
        return None


@router.get("/sidebar", response_class=HTMLResponse, dependencies=[Depends(public)])
async def sidebar_page(request: Request, db_url: DbUrl) -> Response:
    """The page; signs the member in through WeCom first (public: it guards itself)."""
    _lang = i18n.current_language()
    try:
        sidebar = await run_in_threadpool(_app, db_url)
    except NotConfigured:
        return _refused(request, 503, _("The sidebar is not set up: no WeCom connector has an AgentId."),
                        _("Ask an admin to fill in the AgentId and the app Secret of the WeCom connector."))
    user = await _user_or_none(request, db_url)
    if user is None:
        state = secrets.token_urlsafe(24).replace("-", "").replace("_", "")[:32]
        back = f"{str(request.base_url).rstrip('/')}/sidebar/oauth"
        if request.query_params.get("lang") in ("en", "zh-CN"):  # the language chosen survives the sign-in
            back += f"?lang={request.query_params['lang']}"
        target = oauth_url(sidebar.corp_id, back, state=state, agent_id=sidebar.agent_id, base=sidebar.oauth_base)
        redirect = RedirectResponse(target, status_code=303)
        redirect.set_cookie(STATE_COOKIE, state, max_age=600, path="/sidebar", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return redirect
    if not engine_auth.has_role(user, *CUSTOMER_READERS):
        return _refused(request, 403,
                        _("The sidebar needs the marketer, ops or agent role; your role is “%(role)s”.")
                        % {"role": label(user.role, "role")},
                        _("Ask an admin to give your account one of these roles."))
    js = {key: label(key, "sb.js") for key in JS_TEXT}
    response = render(request, user, "sidebar/sidebar.html", corp_id=sidebar.corp_id, agent_id=sidebar.agent_id,
                      js_text=js)
    response.headers["Cache-Control"] = "no-store"
    return response


def _app(db_url: str) -> Any:
    with session_factory(db_url)() as db:
        return sidebar_app(db)


@router.get("/sidebar/oauth", response_class=HTMLResponse, dependencies=[Depends(public)])
def sidebar_oauth(request: Request, db_url: DbUrl, code: str = "", state: str = "") -> Response:
    """WeCom sends the member back here with ``code`` and ``state`` (public: WeCom's redirect)."""
    _lang = i18n.current_language()
    expected = request.cookies.get(STATE_COOKIE, "")
    if not state or not expected or not hmac.compare_digest(state.encode(), expected.encode()):
        return _refused(request, 403, _("This sign-in was not started from this browser, so it was refused."),
                        _("Open the sidebar again from the WeCom chat toolbar."), retry=True)
    try:
        check_code(code)
    except ValueError:
        return _refused(request, 400, _("WeCom sent no sign-in code."),
                        _("Open the sidebar again from the WeCom chat toolbar."), retry=True)
    try:
        sidebar = _app(db_url)
        visitor = sidebar.app.visitor(code)
    except NotConfigured:
        return _refused(request, 503, _("The sidebar is not set up: no WeCom connector has an AgentId."),
                        _("Ask an admin to fill in the AgentId and the app Secret of the WeCom connector."))
    except WeComError as exc:
        if exc.errcode == 40029:
            return _refused(request, 403, _("The sign-in code was used or expired (5 minutes)."),
                            _("Open the sidebar again from the WeCom chat toolbar."), retry=True)
        why = translate(message_of(exc))
        return _refused(request, 503 if exc.retryable else 502, _("WeCom sign-in failed: %(why)s") % {"why": why},
                        _("Open the sidebar again from the WeCom chat toolbar."), retry=exc.retryable)
    try:
        with transaction(db_url) as db:
            _user, session_token, _csrf = staff.sign_in(db, sidebar.connector_id, visitor.userid, auth._now())
    except staff.SignInRefused as exc:
        return _refused(request, 403, translate(exc.message), translate(exc.fix))
    lang = request.query_params.get("lang")
    response = RedirectResponse(f"/sidebar?lang={lang}" if lang in ("en", "zh-CN") else "/sidebar", status_code=303)
    response.set_cookie(SESSION_COOKIE, session_token, max_age=int(engine_auth.SESSION_LIFETIME.total_seconds()),
                        path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")
    response.delete_cookie(STATE_COOKIE, path="/sidebar")
    return response


@router.post("/sidebar/view", response_class=HTMLResponse)
def sidebar_view(request: Request, body: ContextIn, user: Staff, db_url: DbUrl) -> HTMLResponse:
    """The body for one chat (the same data as ``POST /api/sidebar/context``), as HTML."""
    data = context(body, user, db_url)
    return render(request, user, "sidebar/view.html", q=body.q, category_id=body.category_id, **data)
