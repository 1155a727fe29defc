"""Images that connectors fetch by URL on behalf of flows (WeCom mass sends, channel welcomes, messages with
images) go through the engine's SSRF guard (engine/outbound.py).

Connectors may not import the engine, so the guard is handed to them here, once, when the activities
package is imported (every process that sends — the worker, the web app, the CLI — imports it before it
sends): :func:`connectors.wecom.media.install_fetcher` gets a factory of guarded ``httpx`` clients. The
operator's allowlist (``TIDEFLOW_OUTBOUND_ALLOW``) applies, plus the hosts the connector admits on purpose
(its ``image_hosts``: an intranet CDN), in the same syntax (host names, ``.suffixes``, networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from connectors.wecom import media
from engine.outbound import Allowlist, OutboundGuard, OutboundRefused, guarded_client
from engine.settings import get_settings

USER_AGENT = "Tideflow"


def image_client(allowed_hosts: Sequence[str] = ()) -> httpx.Client:
    """A guarded client for fetching images: the operator's allowlist and ``allowed_hosts``, no redirects."""
    allow = Allowlist.parse(",".join([get_settings().outbound_allow, *allowed_hosts]))
    return guarded_client(OutboundGuard(allow), timeout=media.FETCH_TIMEOUT, follow_redirects=False,
                          headers={"User-Agent": USER_AGENT})


def install() -> None:
    media.install_fetcher(image_client, (OutboundRefused,))
