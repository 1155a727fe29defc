"""Authentication for the designer: who is calling, may they, and the login / token routes.

How a request is authenticated (see :func:`current_user`):

- ``Authorization: Bearer tf_...`` — an API token (scripts, CI, other systems). Such requests
  are exempt from CSRF checks: a browser never attaches the header on its own.
- the ``tideflow_session`` cookie — a browser session opened at ``POST /login``. Unsafe methods
  (POST, PUT, PATCH, DELETE) must echo the session's CSRF token in the ``X-CSRF-Token`` header or a
  ``csrf_token`` form field. Pages get it with :func:`csrf_token`; scripts from ``GET /api/me``.

Every route declares how it is guarded, so a test can walk the route table
(:func:`unguarded_routes`): ``Depends(current_user)``, ``Depends(require("marketer", ...))``, or
``dependencies=[Depends(public)]`` for routes that are deliberately open (login page, signed
webhooks, health).

The login form itself is protected against login CSRF with a double-submit cookie:
``GET /login`` sets ``tideflow_login_csrf`` (HttpOnly, SameSite=Lax, path /login) and puts the
same value in a hidden field; ``POST /login`` needs both to match. A cross-site form cannot read
the cookie, and a SameSite=Lax cookie is not sent with a cross-site POST at all.
"""

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from designer import i18n
from designer.errors import detail
from designer.i18n import _, pick_language
from engine import auth
from engine.db.models import ApiToken, User
from engine.db.session import session_factory, transaction
from engine.settings import get_settings
from engine.text import Msg

SESSION_COOKIE = "tideflow_session"
LOGIN_CSRF_COOKIE = "tideflow_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_FIX = Msg("log in or send Authorization: Bearer <token>")
NOT_LOGGED_IN = Msg("you are not logged in")
AUTH_MARKER = "__tideflow_auth__"

router = APIRouter()

_F = TypeVar("_F", bound=Callable[..., Any])


def _mark(fn: _F, **extra: Any) -> _F:
    """Tag a dependency as an authentication guard, for :func:`unguarded_routes`."""
    fn.__dict__[AUTH_MARKER] = True
    fn.__dict__.update({f"__tideflow_{k}__": v for k, v in extra.items()})
    return fn


def mark_guard(fn: _F, roles: tuple[str, ...]) -> _F:
    """Tag a role guard built elsewhere (the pages' :func:`designer.pages.page_user`) like :func:`require`'s,
    so :func:`guard_roles` reads the roles a route needs from the route itself (the navigation does)."""
    return _mark(fn, roles=roles)


def guard_roles(dependant: Dependant) -> tuple[str, ...] | None:
    """The roles the role guard among ``dependant``'s dependencies admits (admin always passes); ``()`` for
    any logged-in user; ``None`` when no role guard is there (a public route, or one that checks in its body)."""
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "__tideflow_roles__", None)
        if roles is not None:
            return tuple(roles)
        inner = guard_roles(dep)
        if inner is not None:
            return inner
    return None


# --- request context ---------------------------------------------------------------------------


def get_db_url(request: Request) -> str:
    """The database URL of this app: ``app.state.database_url``, else the settings' one."""
    url = getattr(request.app.state, "database_url", None)
    return url if isinstance(url, str) and url else get_settings().resolved_database_url()


@dataclass(frozen=True)
class Authenticated:
    """Who made this request and how; kept on ``request.state.tideflow_auth``."""

    user: User
    method: Literal["session", "token"]
    csrf_token: str | None = None  # the session's CSRF token; None for API tokens
    #: an API token's scope (engine.auth.TOKEN_SCOPES); sessions may do all their role may
    scope: str = "full"


def csrf_token(request: Request) -> str | None:
    """The CSRF token a page should embed (forms: ``csrf_token`` field; htmx: ``X-CSRF-Token`` header)."""
    found = getattr(request.state, "tideflow_auth", None)
    return found.csrf_token if isinstance(found, Authenticated) else None


class LoginRequired(HTTPException):
    """A page needs a logged-in user; :func:`install` turns this into a 303 to ``/login?next=...``.

    It is a 401 ``HTTPException``, so an app that forgot ``install`` still answers 401, not 500.
    """

    def __init__(self, next_path: str, message: Msg = NOT_LOGGED_IN) -> None:
        super().__init__(status_code=401, detail=detail(message, LOGIN_FIX))
        self.next_path = next_path


class RoleRequired(HTTPException):
    """403: the user lacks every one of ``roles``. API clients get the JSON ``detail``; a browser asking for a
    page gets the HTML page that says which role it needs (``designer.pages.install``)."""

    def __init__(self, user: User, roles: tuple[str, ...], detail: dict[str, Any]) -> None:
        super().__init__(status_code=403, detail=detail)
        self.user, self.roles = user, roles


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or "authorization" in request.headers


def wants_html(request: Request) -> bool:
    """A browser asking for a page: not the API, no token, and ``text/html`` in Accept (curl, scripts and
    ``fetch`` send ``*/*`` or ``application/json`` and keep getting JSON)."""
    if _wants_json(request):
        return False
    accept = request.headers.get("accept", "").lower()
    return "text/html" in accept or "application/xhtml+xml" in accept


def _local_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _unauthenticated(request: Request, message: Msg) -> HTTPException:
    if _wants_json(request):
        return HTTPException(status_code=401, detail=detail(message, LOGIN_FIX),
                             headers={"WWW-Authenticate": "Bearer"})
    return LoginRequired(_local_path(request), message)


def _now() -> datetime:
    return datetime.now(UTC)


def _token_user(db_url: str, plaintext: str) -> tuple[User, str] | None:
    return auth.token_user(db_url, plaintext, _now())


def _session_lookup(db_url: str, token: str) -> tuple[User, str] | None:
    with session_factory(db_url)() as db:  # read-only: no write lock per request
        found = auth.session_user(db, token, _now())
        return (found[0], found[1].csrf_token) if found else None


async def _authenticate(request: Request, db_url: str) -> Authenticated | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthenticated(request, Msg("the Authorization header must be 'Bearer <token>'"))
        # most requests find their token's lookup cached: answered here, without a hop to the thread pool
        found_token = auth.cached_token_user(credentials.strip(), _now()) or await run_in_threadpool(
            _token_user, db_url, credentials.strip())
        if found_token is None:
            raise _unauthenticated(request, Msg("the API token is unknown, revoked, or its user is disabled"))
        return Authenticated(found_token[0], "token", scope=found_token[1])
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = await run_in_threadpool(_session_lookup, db_url, cookie)
        if found is None:
            raise _unauthenticated(request, Msg("your session has expired; log in again"))
        return Authenticated(found[0], "session", found[1])
    return None


async def _sent_csrf(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is not None:
        return sent
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def _check_csrf(request: Request, expected: str | None) -> None:
    sent = await _sent_csrf(request)
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(status_code=403, detail=detail(
            Msg("this request changes data but carries no valid CSRF token"),
            Msg("send the %(header)s header or a %(field)s form field with the session's CSRF token (GET /api/me "
                "returns it), or authenticate with Authorization: Bearer <token>",
                header=CSRF_HEADER, field=CSRF_FIELD)))


# --- dependencies ------------------------------------------------------------------------------


async def _current(request: Request, db_url: str) -> Authenticated:
    found = getattr(request.state, "tideflow_auth", None)
    if not isinstance(found, Authenticated):
        found = await _authenticate(request, db_url)
        if found is None:
            raise _unauthenticated(request, NOT_LOGGED_IN)
        request.state.tideflow_auth = found
    if found.method == "session" and request.method in UNSAFE_METHODS:
        await _check_csrf(request, found.csrf_token)
    if found.method == "token" and not auth.token_allows(found.scope, request.method, request.url.path):
        raise HTTPException(status_code=403, detail=detail(
            Msg("this API token's scope is '%(scope)s': it may not %(method)s %(path)s",
                scope=found.scope, method=request.method, path=request.url.path),
            Msg("use a token with the scope 'full' (an admin makes one on the users page), or ask for what the "
                "scope allows"), "scope"))
    return found


@_mark
async def current_user(request: Request, db_url: Annotated[str, Depends(get_db_url)]) -> User:
    """The authenticated user (API token or session cookie); CSRF-checked for cookie writes.

    Unauthenticated: 401 JSON under /api (and for any request with an Authorization header),
    :class:`LoginRequired` (→ redirect to the login page) for pages.
    """
    return (await _current(request, db_url)).user


def require(*roles: str) -> Callable[..., Awaitable[User]]:
    """A dependency returning the current user if they have one of ``roles`` (admin always does), else 403.

    ``require()`` with no roles admits any authenticated user. Unknown role names fail at import time.
    """
    for role in roles:
        auth.check_role(role)
    needed = " or ".join(r for r in roles if r != "admin")

    async def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        if not auth.has_role(user, *roles):
            why = (Msg("this needs the role %(roles)s (or admin); you are %(role)s", roles=needed, role=user.role)
                   if needed else Msg("this needs the admin role; you are %(role)s", role=user.role))
            raise RoleRequired(user, roles, detail=detail(
                why, Msg("ask an admin to give your account that role, or use an account that has it")))
        return user

    dependency.__name__ = f"require_{'_'.join(roles) or 'user'}"
    return _mark(dependency, roles=roles)


def public() -> None:
    """Marks a route as deliberately open to everyone: ``dependencies=[Depends(public)]``."""


_mark(public, public=True)


def _has_guard(dependant: Dependant) -> bool:
    return any(getattr(dep.call, AUTH_MARKER, False) or _has_guard(dep) for dep in dependant.dependencies)


def _routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of ``app`` (with ``dependant``, ``path`` and ``methods``), in the app's order."""
    for route in app.routes:
        # routers included with include_router appear as one entry holding their effective routes
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            dependant = getattr(ctx, "dependant", None)
            if dependant is not None and (isinstance(ctx, APIRoute) or hasattr(ctx, "original_route")):
                yield ctx


def get_route_roles(app: FastAPI, path: str) -> tuple[str, ...] | None:
    """The roles the first ``GET path`` route of ``app`` admits (:func:`guard_roles`); None when there is no
    such route or it has no role guard."""
    for ctx in _routes(app):
        if getattr(ctx, "path", None) == path and "GET" in (getattr(ctx, "methods", None) or ()):
            return guard_roles(ctx.dependant)
    return None


def unguarded_routes(app: FastAPI) -> list[str]:
    """``"METHOD /path"`` for every API route with no auth dependency (``current_user``, ``require``,
    ``public``). FastAPI's own /docs and /openapi.json and mounted static files are not API routes."""
    found: list[str] = []
    for ctx in _routes(app):
        if not _has_guard(ctx.dependant):
            path = getattr(ctx, "path", "?")
            found.extend(f"{method} {path}" for method in sorted(getattr(ctx, "methods", None) or ()))
    return found


# --- rate limiting -----------------------------------------------------------------------------


class LoginRateLimiter:
    """At most ``limit`` login attempts per ``window`` seconds per client address (sliding window).

    The window lives in this process's memory: several web processes each keep their own, so the
    effective limit is per process. The per-account lockout in ``engine.auth.login`` is stored in
    the database and is the durable guard; this limiter only slows down one address spraying
    many usernames.
    """

    def __init__(self, limit: int = 10, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record an attempt by ``key``; None when allowed, else the seconds to wait before trying again."""
        now = self.clock()
        with self._lock:
            if len(self._hits) >= self.max_keys:
                self._forget_idle(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.001)
            hits.append(now)
            return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # all busy: a flood of addresses; start afresh
            self._hits.clear()


def _limiter(request: Request) -> LoginRateLimiter:
    limiter = getattr(request.app.state, "tideflow_login_limiter", None)
    if not isinstance(limiter, LoginRateLimiter):
        limiter = request.app.state.tideflow_login_limiter = LoginRateLimiter()
    return limiter


# --- app wiring --------------------------------------------------------------------------------


async def _redirect_to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    location = "/login?next=" + quote(exc.next_path, safe="/")
    response: Response
    if request.headers.get("hx-request"):  # htmx would swap a redirect into a fragment; send it to the page
        response = Response(status_code=401, headers={"HX-Redirect": location})
    else:
        response = RedirectResponse(location, status_code=303)
    if SESSION_COOKIE in request.cookies:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


#: scripts, styles, images, fonts and requests only from this origin; no inline script, no eval, no
#: plugins, no <base>, forms post only here, and no framing. Style *attributes* stay allowed (a few pages
#: draw bars with width: N%); they cannot run code.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
                           "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """Pure ASGI middleware: every response carries a strict Content-Security-Policy, says not to be
    framed (clickjacking of forms), not to sniff content types, and to send no referrer to other sites
    (survey links carry a token in their path). A header the route set itself is kept."""

    HEADERS: tuple[tuple[bytes, bytes], ...] = (
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Register the login redirect for pages, the security headers, and the app's login rate limiter."""
    app.add_exception_handler(LoginRequired, _redirect_to_login)
    app.add_middleware(SecurityHeaders)
    app.state.tideflow_login_limiter = LoginRateLimiter()


def _secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or get_settings().secure_cookies


# --- login page --------------------------------------------------------------------------------

_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True
)
i18n.install(_pages)


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``/`` (never redirect to another host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _login_page(request: Request, lang: i18n.Language, next_path: str, *, status_code: int = 200, error: str = "",
                username: str = "", headers: dict[str, str] | None = None) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (20 <= len(token) <= 100 and token.replace("-", "").replace("_", "").isalnum()):
        token = secrets.token_urlsafe(32)
    other = "zh-CN" if lang == "en" else "en"
    with i18n.language(lang):
        html = _pages.get_template("login.html").render(
            lang=lang, error=error, username=username, next=next_path, csrf_token=token,
            switch_url="/login?" + urlencode({"lang": other, "next": next_path}),
        )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=2 * 3600, path="/login", httponly=True,
                        samesite="lax", secure=_secure_cookies(request))
    return response


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
def login_page(request: Request, db_url: Annotated[str, Depends(get_db_url)],
               next: str = "/") -> Response:
    next_path = safe_next(next)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and _session_lookup(db_url, cookie) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, pick_language(request), next_path)


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(public)])
def login_submit(
    request: Request,
    db_url: Annotated[str, Depends(get_db_url)],
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=auth.MAX_PASSWORD_LENGTH * 4)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
    lang: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Check the credentials; on success set the session cookie and 303 to ``next``.

    401 with the form again on wrong credentials, 429 (Retry-After) when the account is locked
    or this address tried too often, 403 when the form's double-submit token does not match.
    """
    language = pick_language(request, lang)
    with i18n.language(language):
        return _login(request, db_url, language, username, password, csrf_token, next)


def _login(request: Request, db_url: str, language: i18n.Language, username: str, password: str, csrf_token: str,
           next: str) -> Response:
    next_path = safe_next(next)
    client = request.client.host if request.client else "unknown"
    wait = _limiter(request).hit(client)
    if wait is not None:
        seconds = max(1, int(wait + 0.999))
        return _login_page(request, language, next_path, status_code=429, username=username,
                           error=_("Too many attempts. Try again in %(seconds)s seconds.") % {"seconds": seconds},
                           headers={"Retry-After": str(seconds)})
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return _login_page(request, language, next_path, status_code=403, username=username,
                           error=_("The login form expired. Please submit it again."))
    now = _now()
    failure: auth.LoginFailed | auth.LoginLocked | None = None
    session_token = ""
    with transaction(db_url) as db:
        try:
            _user, session_token, _csrf = auth.login(db, username, password, now)
        except (auth.LoginFailed, auth.LoginLocked) as exc:
            failure = exc  # caught inside the transaction, so the failure counter is committed
        else:
            old = request.cookies.get(SESSION_COOKIE)
            if old:
                auth.logout(db, old)
    if isinstance(failure, auth.LoginLocked):
        seconds = failure.retry_after(now)
        return _login_page(request, language, next_path, status_code=429, username=username,
                           error=_("Too many failed logins: the account is locked. Try again in %(minutes)s minutes.")
                           % {"minutes": max(1, (seconds + 59) // 60)},
                           headers={"Retry-After": str(seconds)})
    if failure is not None:
        return _login_page(request, language, next_path, status_code=401, username=username,
                           error=_("Wrong username or password."))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_token, max_age=int(auth.SESSION_LIFETIME.total_seconds()),
                        path="/", httponly=True, samesite="lax", secure=_secure_cookies(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", dependencies=[Depends(public)])
async def logout(request: Request, db_url: Annotated[str, Depends(get_db_url)]) -> Response:
    """End the browser session and go to the login page.

    Public so that an already-expired session can still "log out"; a live session must send its
    CSRF token, so another site cannot log the user out.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = await run_in_threadpool(_session_lookup, db_url, cookie)
        if found is not None:
            await _check_csrf(request, found[1])
            await run_in_threadpool(_end_session, db_url, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _end_session(db_url: str, token: str) -> None:
    with transaction(db_url) as db:
        auth.logout(db, token)


# --- JSON API ----------------------------------------------------------------------------------


class Me(BaseModel):
    id: int
    username: str
    display_name: str | None
    role: str
    auth: Literal["session", "token"]
    csrf_token: str | None = Field(description="send as X-CSRF-Token on writes; null for API tokens")


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=80, description="what the token is for, e.g. 'ci'")
    scope: Literal["full", "read", "events"] = Field(
        default="full", description="full: all your role may; read: only reading; events: sending events and reading")


class TokenInfo(BaseModel):
    id: int
    name: str
    prefix: str
    scope: str
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> Self:
        return cls(id=token.id, name=token.name, prefix=token.prefix, scope=token.scope or "full",
                   created_at=token.created_at, created_by=token.created_by, last_used_at=token.last_used_at,
                   revoked_at=token.revoked_at)


class TokenCreated(BaseModel):
    token: str = Field(description="the secret; shown this once and never again")
    id: int
    prefix: str
    name: str
    scope: str
    created_at: datetime


def _authenticated(request: Request) -> Authenticated:
    found = getattr(request.state, "tideflow_auth", None)
    assert isinstance(found, Authenticated)
    return found


@router.get("/api/me", response_model=Me)
def me(request: Request, user: Annotated[User, Depends(current_user)]) -> Me:
    who = _authenticated(request)
    return Me(id=user.id, username=user.username, display_name=user.display_name, role=user.role,
              auth=who.method, csrf_token=who.csrf_token)


@router.post("/api/auth/tokens", response_model=TokenCreated, status_code=201)
def create_api_token(request: Request, body: TokenCreate, user: Annotated[User, Depends(current_user)],
                     db_url: Annotated[str, Depends(get_db_url)]) -> TokenCreated:
    """Create an API token for yourself. Only from a logged-in browser session, so a leaked token
    cannot mint more tokens that outlive its revocation."""
    if _authenticated(request).method != "session":
        raise HTTPException(status_code=403, detail=detail(
            Msg("API tokens are created from a logged-in browser session, not with another token"),
            Msg("log in to the designer and create the token there")))
    try:
        with transaction(db_url) as db:
            token, plaintext = auth.issue_token(db, user, body.name, body.scope)
    except auth.AuthError as exc:
        raise HTTPException(status_code=422, detail=detail(exc.message, Msg("use a short name of 1–80 characters"),
                                                           "name")) from exc
    return TokenCreated(token=plaintext, id=token.id, prefix=token.prefix, name=token.name, scope=token.scope,
                        created_at=token.created_at)


@router.get("/api/auth/tokens", response_model=list[TokenInfo])
def list_api_tokens(user: Annotated[User, Depends(current_user)],
                    db_url: Annotated[str, Depends(get_db_url)]) -> list[TokenInfo]:
    """Your own API tokens, revoked ones included; never their secrets."""
    with transaction(db_url) as db:
        return [TokenInfo.of(t) for t in auth.list_tokens(db, user)]


@router.delete("/api/auth/tokens/{token_id}", response_model=TokenInfo)
def revoke_api_token(token_id: int, user: Annotated[User, Depends(current_user)],
                     db_url: Annotated[str, Depends(get_db_url)]) -> TokenInfo:
    """Revoke one of your tokens (admins: anyone's). Revoking twice is harmless."""
    try:
        with transaction(db_url) as db:
            return TokenInfo.of(auth.revoke_token(db, token_id, user))
    except auth.TokenNotFound as exc:
        raise HTTPException(status_code=404, detail=detail(
            exc.message, Msg("GET /api/auth/tokens lists the ids of your tokens"))) from exc
