"""One HTTP call to a shop platform's JSON API, its failures split retry / don't.

Every shop client (JD, Taobao, 抖店, Youzan) sends a request and wants the answer as a JSON object;
what goes wrong on the way is the same everywhere: no answer in time or no connection (retry), 429 or
5xx (retry), another non-200 status (a wrong URL: don't retry), a body that is not JSON (a proxy page:
retry) or JSON that is not an object (don't). :func:`json_object` does that once; each client passes
its own exception through ``fail`` and its own wording through :class:`Wording`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import httpx

from wording import N_, Msg


class OwnedHttp:
    """The ``httpx.Client`` a shop API client sends with: the one it was given (the caller closes it) or
    its own, closed by :meth:`close` (or leaving a ``with`` block)."""

    _http: httpx.Client
    _own_http: bool

    def _use_http(self, http: httpx.Client | None, timeout: float, user_agent: str) -> None:
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout, headers={"User-Agent": user_agent})

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Wording:
    """What to say for each failure: ``Msg`` templates (marked for the catalogue) in which ``%(where)s``,
    ``%(setting)s``, ``%(status)s`` and ``%(name)s`` (the exception's type) are filled in."""

    unreachable: str = N_("cannot reach %(where)s (%(name)s)")
    busy: str = N_("HTTP %(status)s; retry later")
    refused: str = N_("HTTP %(status)s from %(where)s: is %(setting)s right?")
    not_json: str = N_("the answer is not JSON")
    not_object: str = N_("the answer is not a JSON object")


#: the wording of the REST-style APIs (抖店, Youzan)
PLAIN_WORDING = Wording()
#: the wording of the router-style gateways (JD JOS, Taobao TOP)
GATEWAY_WORDING = Wording(busy=N_("HTTP %(status)s from %(where)s; retry later"),
                          not_json=N_("the answer is not JSON (a proxy page?)"),
                          not_object=N_("the answer is JSON but not an object"))


def json_object(send: Callable[[], httpx.Response], *, timeout: float, where: str, setting: str,
                fail: Callable[[str, bool], Exception], wording: Wording = PLAIN_WORDING) -> dict[str, Any]:
    """``send()`` and the answer's JSON object.

    ``fail(message, retryable)`` makes the exception to raise (the caller prefixes its platform and API);
    ``where`` names the server (``the gateway``, an API base URL) and ``setting`` the setting that holds it.
    """
    try:
        response = send()
    except httpx.TimeoutException as exc:
        raise fail(Msg("no answer within %(timeout)ss (%(name)s)", timeout=format(timeout, 'g'),
                       name=type(exc).__name__), True) from None
    except httpx.HTTPError as exc:
        raise fail(Msg(wording.unreachable, where=where, name=type(exc).__name__), True) from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise fail(Msg(wording.busy, status=status, where=where), True)
    if status != 200:
        raise fail(Msg(wording.refused, status=status, where=where, setting=setting), False)
    try:
        data = response.json()
    except ValueError:
        raise fail(Msg(wording.not_json), True) from None
    if not isinstance(data, dict):
        raise fail(Msg(wording.not_object), False)
    return data
