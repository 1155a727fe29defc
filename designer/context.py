"""What a route reaches of the running app besides its user and database (:func:`designer.auth.get_db_url`):
the event router, which holds the Temporal client."""

from __future__ import annotations

from fastapi import Request

from engine.router import Router


def engine_router(request: Request) -> Router | None:
    """The app's event router (it holds the Temporal client and task queue); None while Temporal is not
    reachable — events are stored then and routed later, and a page says the engine is down."""
    router: Router | None = getattr(request.app.state, "router", None)
    return router
