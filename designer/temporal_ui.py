"""The embedded Temporal UI behind the admin login: ``/admin/temporal/…`` is proxied to the dev server's
UI, which listens on 127.0.0.1 only (tideflow/stack.py), and only when ``TIDEFLOW_TEMPORAL_UI`` is on.

Only reads pass (GET/HEAD): the UI lists and shows workflows; writes (terminate, signal, reset) go
through Tideflow's own guarded API or the Temporal CLI, so a session cookie can never be used to drive
Temporal. Anything else answers 405; the UI switched off answers 404.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Request, Response

from designer.pages import ADMIN, PageRoute, page_user
from engine.db.models import User
from engine.settings import Settings

PREFIX = "/admin/temporal"
#: the UI is a single-page app with inline scripts: its own, looser policy, on this admin-only path
UI_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
             "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
#: response headers passed back from the UI
PASSED = ("content-type", "cache-control", "etag", "last-modified", "location")

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Admin = Annotated[User, Depends(page_user(*ADMIN))]


def ui_base(settings: Settings) -> str:
    port = int(settings.temporal_address.rsplit(":", 1)[1]) + 1000
    return f"http://127.0.0.1:{port}"


@router.api_route(PREFIX + "/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def temporal_ui(request: Request, path: str, user: Admin) -> Response:
    settings: Settings = request.app.state.settings
    if not settings.temporal_ui:
        return Response("the Temporal UI is off (TIDEFLOW_TEMPORAL_UI)", status_code=404, media_type="text/plain")
    if request.method not in ("GET", "HEAD"):
        return Response("read-only: change workflows through Tideflow or the Temporal CLI", status_code=405,
                        media_type="text/plain", headers={"Allow": "GET, HEAD"})
    target = f"{ui_base(settings)}{PREFIX}/{path}"
    async with httpx.AsyncClient(timeout=30, trust_env=False, follow_redirects=False) as client:
        try:
            upstream = await client.request(request.method, target, params=request.query_params,
                                            headers={"accept": request.headers.get("accept", "*/*")})
        except httpx.HTTPError:
            return Response("the Temporal UI is not answering", status_code=502, media_type="text/plain")
    headers = {k: v for k, v in upstream.headers.items() if k.lower() in PASSED}
    if headers.get("location", "").startswith(ui_base(settings)):
        headers["location"] = headers["location"][len(ui_base(settings)):]
    headers["content-security-policy"] = UI_POLICY
    return Response(upstream.content, status_code=upstream.status_code, headers=headers)
