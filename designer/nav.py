"""The main navigation: one registry of the designer's top-level screens, read by the layout (``base.html``).

Each :class:`NavEntry` names its destination, its label (English, marked with ``N_`` for the catalogue and
translated where it is drawn) and whether it is *primary*. It does not say who may open it: the roles come
from the role guard of the route itself (``page_user(...)`` / ``require(...)`` on the ``GET`` route, read with
:func:`designer.auth.get_route_roles`), so the menu can never offer a link that answers 403, nor hide one the
role may open. An entry may name several destinations for one area (``Workforce`` is the staff overview for
ops, the mass sends for marketers): a person sees the first one their role may open.

Where the links go: a person whose links all fit (:data:`INLINE_MAX`) sees them all in the bar; someone with
more (admins) sees the primary ones in the bar and the others under "More" (a ``<details>`` menu: keyboard
accessible and working without script; ``static/nav.js``, a file as the Content-Security-Policy wants, only
closes it on Escape or a click elsewhere). A new screen goes here: add an entry, and its
label to the catalogue (``make i18n``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from designer.auth import get_route_roles
from designer.i18n import N_
from engine.auth import has_role
from engine.db.models import User

#: at most this many links in the bar before the non-primary ones move under "More". Measured at 1280 px wide
#: with the user's name and the language switch on the right: ops' 10 links end at x≈850 in English (the name
#: starts at ≈1020); the admin's 16 overflow by ≈40 px in zh-CN and ≈460 px in English, their 9 primary ones and
#: "More" fit in both (tests/e2e/test_browser_nav.py)
INLINE_MAX = 10


@dataclass(frozen=True)
class NavEntry:
    """One link of the main menu: the first of ``paths`` the person may open (``GET`` routes with a role guard)."""

    paths: tuple[str, ...]
    label: str
    primary: bool = True
    #: the path prefix that marks the entry current (``aria-current``); the first path when not given
    area: str = ""

    @property
    def prefix(self) -> str:
        return self.area or self.paths[0]


#: the main menu, in its order
ENTRIES: tuple[NavEntry, ...] = (
    NavEntry(("/",), N_("Overview")),
    NavEntry(("/dashboard",), N_("Dashboard")),
    NavEntry(("/flows",), N_("Flows")),
    NavEntry(("/customers",), N_("Customers")),
    NavEntry(("/journeys",), N_("Journeys")),
    NavEntry(("/growth/channels", "/growth/review"), N_("Growth"), area="/growth"),
    NavEntry(("/decisions",), N_("Decisions")),
    NavEntry(("/tickets",), N_("Tickets")),
    NavEntry(("/settlement",), N_("Settlement")),
    NavEntry(("/library",), N_("Scripts"), primary=False),
    NavEntry(("/workforce", "/workforce/mass-sends"), N_("Workforce"), primary=False, area="/workforce"),
    NavEntry(("/audit",), N_("Audit log"), primary=False),
    NavEntry(("/settings/connectors",), N_("Connectors"), primary=False),
    NavEntry(("/settings/messaging",), N_("Sending rules"), primary=False),
    NavEntry(("/settings/users",), N_("Users"), primary=False),
    NavEntry(("/quarantine",), N_("Quarantine"), primary=False),
)


@dataclass(frozen=True)
class Link:
    href: str
    label: str  # English, as in the registry: the template translates it
    area: str

    def current(self, path: str) -> bool:
        return path == self.href or (self.area != "/" and (path == self.area or path.startswith(self.area + "/")))


@dataclass(frozen=True)
class Menu:
    """What one person sees: the links in the bar and those under "More" (empty when everything fits)."""

    inline: list[Link]
    more: list[Link] = field(default_factory=list)

    @property
    def links(self) -> list[Link]:
        return self.inline + self.more

    def current_in_more(self, path: str) -> bool:
        """The screen at ``path`` is one of those under "More" (the summary is marked, as the link would be)."""
        return any(link.current(path) for link in self.more)


class NavError(RuntimeError):
    """A registry entry points at no guarded ``GET`` route of the app (a typo, or a route that moved)."""


@dataclass(frozen=True)
class Resolved:
    """The registry bound to one app: for every entry, each destination with the roles its guard admits."""

    entries: tuple[tuple[NavEntry, tuple[tuple[str, tuple[str, ...]], ...]], ...]

    def menu(self, user: User) -> Menu:
        shown: list[tuple[NavEntry, Link]] = []
        for entry, destinations in self.entries:
            for path, roles in destinations:
                if has_role(user, *roles):
                    shown.append((entry, Link(path, entry.label, entry.prefix)))
                    break
        if len(shown) <= INLINE_MAX:
            return Menu([link for _, link in shown])
        return Menu([link for entry, link in shown if entry.primary],
                    [link for entry, link in shown if not entry.primary])


def resolve(app: FastAPI, entries: tuple[NavEntry, ...] = ENTRIES) -> Resolved:
    """Read each destination's roles from its route's guard; :class:`NavError` when one has none."""
    out = []
    for entry in entries:
        destinations = []
        for path in entry.paths:
            roles = get_route_roles(app, path)
            if roles is None:
                raise NavError(f"the menu entry {entry.label!r} points at {path}, which is no GET route with a "
                               "role guard (page_user/require) in this app")
            destinations.append((path, roles))
        out.append((entry, tuple(destinations)))
    return Resolved(tuple(out))


def menu(request: Request, user: User | None) -> Menu:
    """The menu of ``user`` on the app serving ``request`` (the registry is resolved once per app)."""
    if user is None:
        return Menu([])
    state = request.app.state
    resolved = getattr(state, "nav", None)
    if not isinstance(resolved, Resolved):
        resolved = state.nav = resolve(request.app)
    return resolved.menu(user)
