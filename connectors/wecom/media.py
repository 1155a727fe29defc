"""WeCom media (素材): images uploaded before they are sent, their media ids cached and refreshed.

A customer message's image attachment (``add_msg_template``, ``send_welcome_msg``, group mass sends) names
the image by ``image.media_id`` — or by ``image.pic_url``, but only a URL that WeCom's own 上传图片 API
returned ("仅可使用上传图片接口得到的链接"): an arbitrary https URL is refused. So an image URL from a flow
is fetched and uploaded first:

* ``media/upload?type=image`` (上传临时素材, developer.work.weixin.qq.com/document/path/90253): multipart
  field ``media``; JPG/PNG up to 10 MB; answers ``{"type", "media_id", "created_at"}``. **A temporary media
  id is valid for 3 days**; :class:`WeComMedia` caches it per (corp, image URL) and uploads again when less
  than :data:`REFRESH_BEFORE` of that is left, so a message never names an expired id.
* ``media/uploadimg`` (上传图片, document/path/90256): JPG/PNG, 5 B–2 MB; answers a permanent ``url`` usable
  as ``pic_url``. Cached for as long as the process lives.

Fetching an image is outbound HTTP made for a flow (mass sends, channel welcomes, messages with images: the
URL is typed by a marketer or comes from a flow), so it goes through the project's SSRF guard,
``engine/outbound.py`` (resolve once, refuse loopback, private, link-local, metadata and other non-public
addresses, connect to the checked address, check every redirect hop, ignore proxy variables). Connectors
may not import the engine, so the guard is handed in: the activities layer installs the client factory
with :func:`install_fetcher` when it is imported (``activities/outbound_images.py``), and until one is
installed an image URL is refused, never fetched unguarded. The connector's ``image_hosts`` are passed to
the factory as hosts admitted on purpose, on top of the operator's ``TIDEFLOW_OUTBOUND_ALLOW``. Redirects
are not followed; the image is read with a size cap and a timeout and must be a JPG or PNG (checked by
its bytes, not its name).

Other engineers reuse :class:`WeComMedia` for group mass sends: ``media.image_media_id(url)`` gives an id
ready for ``{"msgtype": "image", "image": {"media_id": ...}}``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from connectors.wecom.api_errors import WeComRejected, WeComRetryable
from connectors.wecom.client import WeComClient
from connectors.wecom.transport import errcode_of
from wording import Msg, message_of

#: how long WeCom keeps a temporary media id (document/path/90253: "媒体文件在后台保存时间为3天")
TEMPORARY_MEDIA_SECONDS: Final = 3 * 24 * 3600
#: upload again when less than this is left of the 3 days (a message may wait in a queue meanwhile)
REFRESH_BEFORE: Final = 12 * 3600
#: media/upload: 图片（image）10MB，支持JPG,PNG格式
MAX_IMAGE_BYTES: Final = 10 * 1024 * 1024
#: media/uploadimg: 图片文件大小应在 5B ~ 2MB
MAX_UPLOADIMG_BYTES: Final = 2 * 1024 * 1024
FETCH_TIMEOUT: Final = 10.0
_SIGNATURES: Final = ((b"\x89PNG\r\n\x1a\n", "image/png", "png"), (b"\xff\xd8\xff", "image/jpeg", "jpg"))


@dataclass(frozen=True)
class Image:
    content: bytes
    content_type: str
    filename: str


#: makes the client images are fetched with, given the hosts admitted on purpose (a connector's ``image_hosts``)
FetchClient = Callable[[Sequence[str]], httpx.Client]


@dataclass
class _Fetcher:
    make: FetchClient | None = None
    #: what the client raises for an address it refuses (not an ``httpx.HTTPError``: never worth a retry)
    refused: tuple[type[Exception], ...] = ()


_fetcher = _Fetcher()


def install_fetcher(make: FetchClient, refused: tuple[type[Exception], ...]) -> None:
    """Fetch image URLs with clients from ``make`` (the engine's SSRF guard); ``refused`` are the exceptions it
    raises for a forbidden address, turned into :class:`WeComRejected` naming the reason."""
    _fetcher.make, _fetcher.refused = make, refused


def fetch_image(url: str, *, allowed_hosts: Iterable[str] = (), max_bytes: int = MAX_IMAGE_BYTES,
                http: httpx.Client | None = None, timeout: float = FETCH_TIMEOUT) -> Image:
    """The image at ``url``, fetched through the installed guard (public addresses, or ``allowed_hosts``), at
    most ``max_bytes``, a JPG or PNG. ``http``: a client the caller made (and guarded) itself."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WeComRejected(Msg("image URL %(value)s is not an http(s) URL", value=repr(url[:80])))
    own = http is None
    if http is None:
        if _fetcher.make is None:
            raise WeComRejected(Msg("image URLs cannot be fetched in this process: the outbound guard "
                                    "(engine/outbound.py) was not installed (import activities first)"))
        http = _fetcher.make(tuple(allowed_hosts))
    client = http
    try:
        with client.stream("GET", url, timeout=timeout) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise WeComRetryable(Msg("image URL answered HTTP %(status_code)s; retry later",
                                         status_code=response.status_code))
            if response.status_code != 200:
                raise WeComRejected(Msg("image URL answered HTTP %(status_code)s (redirects are not followed)",
                                        status_code=response.status_code))
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise WeComRejected(Msg("the image is %(declared)s bytes; WeCom takes at most %(max_bytes)s",
                                        declared=declared, max_bytes=max_bytes))
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise WeComRejected(Msg("the image is more than %(max_bytes)s bytes; WeCom takes at most "
                                            "%(max_bytes)s", max_bytes=max_bytes))
                chunks.append(chunk)
    except _fetcher.refused as exc:
        raise WeComRejected(Msg("image URL refused: %(exc)s; images come from public hosts, or add the host to the "
                                "connector's image hosts (image_hosts)", exc=message_of(exc))) from None
    except httpx.TimeoutException:
        raise WeComRetryable(Msg("the image URL did not answer within %(timeout)ss", timeout=format(timeout,
                                                                                                    'g'))) from None
    except httpx.HTTPError as exc:
        raise WeComRetryable(Msg("cannot fetch the image (%(name)s)", name=type(exc).__name__)) from None
    finally:
        if own:
            client.close()
    content = b"".join(chunks)
    for magic, content_type, suffix in _SIGNATURES:
        if content.startswith(magic):
            name = (urlsplit(url).path.rsplit("/", 1)[-1] or "image").rsplit(".", 1)[0][:60] or "image"
            return Image(content, content_type, f"{name}.{suffix}")
    raise WeComRejected(Msg("the image is not a JPG or PNG (WeCom takes only these)"))


class WeComMedia:
    """Uploads for one corp, cached: temporary media ids (refreshed before their 3 days end) and permanent
    image URLs. Thread-safe; one per :class:`WeComClient` is enough."""

    def __init__(self, client: WeComClient, *, allowed_hosts: Sequence[str] = (),
                 clock: Callable[[], float] = time.time, http: httpx.Client | None = None) -> None:
        self.client = client
        self.allowed_hosts = tuple(allowed_hosts)
        self.clock = clock
        self._http = http
        self._ids: dict[str, tuple[str, float]] = {}  # image URL → (media_id, created_at)
        self._urls: dict[str, str] = {}  # image URL → WeCom's permanent pic_url
        self._lock = threading.Lock()
        self.uploads = 0

    # -- the two APIs ---------------------------------------------------------------------------------
    def _post_file(self, path: str, api: str, image: Image, params: dict[str, str]) -> dict[str, Any]:
        """A multipart upload with the corp's token (fetched again once if WeCom calls it invalid)."""
        for attempt in range(2):
            token = self.client.tokens.get()
            if not self.client.limiter.acquire(timeout=self.client.max_wait):
                raise WeComRetryable(Msg("WeCom %(api)s: the client-side rate limit would delay this upload; retry "
                                         "later", api=api),
                                     api=api)
            try:  # the client's own connection pool, as every WeCom call (transport.PlatformClient)
                response = self.client._http.post(
                    f"{self.client.api_base}{path}", params={**params, "access_token": token},
                    files={"media": (image.filename, image.content, image.content_type)}, timeout=self.client.timeout)
            except httpx.HTTPError as exc:
                raise WeComRetryable(Msg("WeCom %(api)s: transport error (%(name)s)", api=api,
                                         name=type(exc).__name__), api=api) from None
            if response.status_code >= 500 or response.status_code == 429:
                raise WeComRetryable(Msg("WeCom %(api)s: HTTP %(status_code)s; retry later", api=api,
                                         status_code=response.status_code), api=api)
            try:
                data = response.json()
            except ValueError:
                raise WeComRetryable(Msg("WeCom %(api)s: the answer is not JSON", api=api), api=api) from None
            if not isinstance(data, dict):
                raise WeComRejected(Msg("WeCom %(api)s: the answer is not a JSON object", api=api), api=api)
            code = errcode_of(data)
            if code in self.client.token_errcodes and attempt == 0:
                self.client.token_rejected(token)
                continue
            if code != 0:
                raise self.client.error_for(api, code, str(data.get("errmsg") or ""))
            return data
        raise AssertionError("unreachable")

    def upload(self, image: Image) -> tuple[str, float]:
        """``media/upload?type=image``: (media_id, created_at unix seconds)."""
        data = self._post_file("/cgi-bin/media/upload", "media/upload", image, {"type": "image"})
        media_id = str(data.get("media_id") or "")
        if not media_id:
            raise WeComRejected(Msg("WeCom media/upload: the answer has no media_id"), api="media/upload")
        self.uploads += 1
        created = float(data.get("created_at") or self.clock())
        return media_id, created

    def upload_image(self, image: Image) -> str:
        """``media/uploadimg``: a permanent URL WeCom accepts as ``pic_url``."""
        data = self._post_file("/cgi-bin/media/uploadimg", "media/uploadimg", image, {})
        url = str(data.get("url") or "")
        if not url:
            raise WeComRejected(Msg("WeCom media/uploadimg: the answer has no url"), api="media/uploadimg")
        self.uploads += 1
        return url

    # -- cached ---------------------------------------------------------------------------------------
    def image_media_id(self, url: str) -> str:
        """A temporary media id for the image at ``url``: the cached one while more than
        :data:`REFRESH_BEFORE` of its 3 days is left, else a fresh upload."""
        with self._lock:
            cached = self._ids.get(url)
        if cached is not None and cached[1] + TEMPORARY_MEDIA_SECONDS - REFRESH_BEFORE > self.clock():
            return cached[0]
        media_id, created = self.upload(fetch_image(url, allowed_hosts=self.allowed_hosts, http=self._http))
        with self._lock:
            self._ids[url] = (media_id, created)
        return media_id

    def image_pic_url(self, url: str) -> str:
        """WeCom's permanent copy of the image at ``url`` (``media/uploadimg``), cached."""
        with self._lock:
            cached = self._urls.get(url)
        if cached is not None:
            return cached
        uploaded = self.upload_image(fetch_image(url, allowed_hosts=self.allowed_hosts,
                                                 max_bytes=MAX_UPLOADIMG_BYTES, http=self._http))
        with self._lock:
            self._urls[url] = uploaded
        return uploaded

    def with_media_ids(self, attachments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``attachments`` with every ``image.pic_url`` replaced by an uploaded ``image.media_id``."""
        out: list[dict[str, Any]] = []
        for attachment in attachments:
            image = attachment.get("image") if attachment.get("msgtype") == "image" else None
            if isinstance(image, dict) and image.get("pic_url") and not image.get("media_id"):
                out.append({"msgtype": "image", "image": {"media_id": self.image_media_id(str(image["pic_url"]))}})
            else:
                out.append(attachment)
        return out


_MEDIA: dict[int, WeComMedia] = {}
_MEDIA_LOCK = threading.Lock()


def media_for(client: WeComClient, allowed_hosts: Sequence[str] = ()) -> WeComMedia:
    """The :class:`WeComMedia` of a (shared) client, so its cache lives as long as the client."""
    with _MEDIA_LOCK:
        media = _MEDIA.get(id(client))
        if media is None or media.client is not client or media.allowed_hosts != tuple(allowed_hosts):
            media = _MEDIA[id(client)] = WeComMedia(client, allowed_hosts=allowed_hosts)
        return media
