"""Errors of the WeCom (企业微信) and WeChat server APIs, split the one way a caller needs: retry or not.

Both platforms answer HTTP 200 with ``{"errcode": …, "errmsg": …}``; ``errcode`` 0 is success. A
caller (the ``action.send_message`` activity) needs to know one thing: is it worth trying the same
request again? Every error therefore carries ``retryable``:

* :class:`ApiRetryable` — the platform is busy (``-1``), a frequency / concurrency limit was hit
  (``45009``, ``45011``, ``45033``), the network failed, a 5xx came back, or the client-side rate
  limiter would have had to wait too long. Try again later with the same idempotency key.
  ``outcome_unknown`` is True when the request may have reached the platform (a read timeout).
* :class:`ApiRejected` — anything else: a wrong secret, a missing permission, a customer who is no
  longer a contact, a welcome code already used. Trying again sends the same answer back.

Messages name the API and the errcode, and say what to check; they never contain a secret, an
access token or the full request URL (which carries the token).
"""

from __future__ import annotations

from typing import ClassVar

from wording import N_, Msg


class ApiError(Exception):
    """An error answer (or no answer) from a WeCom / WeChat server API."""

    #: whether the same request may succeed when tried again later
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, api: str = "", errcode: int | None = None, errmsg: str = "",
                 retry_after: float | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.api = api
        self.errcode = errcode
        self.errmsg = errmsg
        #: a hint in seconds (frequency limits), or None
        self.retry_after = retry_after
        #: True when the request may have been carried out although no answer arrived
        self.outcome_unknown = outcome_unknown


class ApiRetryable(ApiError):
    """Try again later: busy, rate-limited, a network failure or a 5xx."""

    retryable = True


class ApiRejected(ApiError):
    """Do not try again: the platform refused this request for a reason a retry does not change."""


class WeComRetryable(ApiRetryable):
    """A WeCom API call that may succeed when tried again later."""


class WeComRejected(ApiRejected):
    """A WeCom API call the platform refused for good."""


class WeComCredentialsRejected(WeComRejected):
    """gettoken refused the CorpID / secret, or the secret's app may not call this API."""


class WelcomeCodeUnusable(WeComRejected):
    """The welcome_code is used, expired (valid 20 s after the callback) or was taken by another app."""


#: WeCom errcodes that are worth retrying, with a hint for how long to wait
WECOM_RETRYABLE: dict[int, tuple[str, float | None]] = {
    -1: (N_("system busy (系统繁忙)"), 1.0),
    45009: (N_("API frequency limit reached (接口调用超过限制)"), 60.0),
    45033: (N_("API concurrency limit reached (接口并发调用超过限制)"), 1.0),
}
#: errcodes meaning "this access_token is no good": fetch a new one and try once more
WECOM_TOKEN_ERRCODES = frozenset({40014, 42001, 41001})
#: errcodes about the credentials or the app's permissions, with what to check
WECOM_HINTS: dict[int, str] = {
    40001: N_("the secret is wrong: copy the 客户联系 Secret (客户联系 › API › Secret) or the self-built app's "
              "Secret again"),
    40013: N_("the CorpID is wrong: see 我的企业 › 企业信息 › 企业ID"),
    40091: N_("the secret belongs to another corp or app: copy it again"),
    48002: N_("this secret's app may not call the API: add the app to 客户联系 › API › 可调用应用 and give it the "
              "客户联系 permission"),
    60020: N_("this server's IP is not a trusted IP of the app: add it under 应用管理 › 企业可信IP"),
    41051: N_("the welcome_code was already used — by this app, another app of the corp, or because the customer "
              "and the staff member have started chatting"),
}
WECOM_CREDENTIAL_ERRCODES = frozenset({40001, 40013, 40091, 48002, 60020})


def wecom_error(api: str, errcode: int, errmsg: str) -> ApiError:
    """The exception for a WeCom ``errcode`` (never 0) answered by ``api``."""
    said = Msg("WeCom %(api)s answered errcode %(errcode)s", api=api, errcode=errcode)
    detail = f" ({errmsg})" if errmsg else ""  # the platform's own words, as they are
    if errcode in WECOM_RETRYABLE:
        what, after = WECOM_RETRYABLE[errcode]
        return WeComRetryable(Msg("%(said)s: %(what)s; retry later%(detail)s", said=said, what=Msg(what),
                                  detail=detail),
                              api=api, errcode=errcode, errmsg=errmsg,
                              retry_after=after)
    hint = Msg(WECOM_HINTS.get(errcode, N_("see developer.work.weixin.qq.com/devtool/query for this errcode")))
    if api == "send_welcome_msg" and (errcode == 41051 or "welcome" in errmsg.lower()):
        return WelcomeCodeUnusable(Msg("%(said)s: %(hint)s%(detail)s", said=said, hint=hint, detail=detail), api=api,
                                   errcode=errcode, errmsg=errmsg)
    cls = WeComCredentialsRejected if errcode in WECOM_CREDENTIAL_ERRCODES else WeComRejected
    return cls(Msg("%(said)s: %(hint)s%(detail)s", said=said, hint=hint, detail=detail), api=api, errcode=errcode,
               errmsg=errmsg)
