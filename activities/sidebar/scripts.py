"""Scripts (话术): what one is, how it becomes a message in the chat, how staff find it. Pure, no I/O.

A script is one of four kinds, each sent with the JS-SDK's ``sendChatMessage`` as WeCom defines it
(@wecom/jssdk types, ``SendChatMessage``):

=============  ==========================================================================================
kind           message
=============  ==========================================================================================
text           ``{"msgtype": "text", "text": {"content"}}`` — the script's text, a template
image          ``{"msgtype": "image", "image": {"mediaid"}}`` — an uploaded image, sent as WeCom media
link           ``{"msgtype": "news", "news": {"link", "title", "desc", "imgUrl"}}`` — an H5 card
miniprogram    ``{"msgtype": "miniprogram", "miniprogram": {"appid", "title", "imgUrl", "page"}}``
=============  ==========================================================================================

Text, titles, descriptions and the link URL are templates of the flows' language (``{{ customer.name }}``),
rendered by :func:`engine.expressions.render` — the same sandbox with the same operation budget, so a
script cannot do in the sidebar what a message template cannot do in a journey. A template is checked
when the script is saved: a typo is a 422 naming the field, not a broken message in a chat — and so is a
template that costs too much on sample data (:func:`check_cost`: the flows' check, the same sample and
bound, :func:`engine.validate.expression_problem`).

Rendering is pure; the web app runs it in its evaluation pool (engine/isolation.py) — :func:`previews` and
:func:`render_message` are what it sends there — so a costly script cannot stall the web process.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine import expressions
from engine import validate as validation
from engine.text import NO_FIX, Msg

KINDS = ("text", "image", "link", "miniprogram")
Kind = Literal["text", "image", "link", "miniprogram"]
KEY = r"^[a-z0-9][a-z0-9_\-]{0,59}$"
#: WeCom text messages carry at most 4000 bytes (the same limit as welcome messages and mass sends)
MAX_TEXT_BYTES = 4000
MAX_KEYWORDS = 20
#: who manages the library, and who reviews scripts that need approval (admin may do both)
MANAGERS = ("marketer", "ops")
REVIEWERS = ("ops",)


class ScriptProblem(ValueError):
    """A script that cannot be saved or rendered; ``field`` names where (``text``, ``link.url`` …)."""

    def __init__(self, message: Msg, field: str | None = None, fix: Msg = NO_FIX) -> None:
        super().__init__(message)
        self.message, self.field, self.fix = message, field, fix

    def __reduce__(self) -> tuple[Any, ...]:  # it comes back from the evaluation pool with its field (a Msg pickles)
        return (ScriptProblem, (self.message, self.field, self.fix))


def _template(value: str, field: str) -> str:
    try:
        expressions.check(value, "template")
    except expressions.ExpressionError as exc:
        raise ValueError(Msg("%(field)s: %(exc)s", field=field, exc=exc)) from None
    return value


def _http_url(value: str, field: str, *, template: bool = False) -> str:
    value = value.strip()
    if template and "{" in value:
        _template(value, field)
        head = value.split("{", 1)[0]
        if not head.startswith(("https://", "http://")) or not urlsplit(head).hostname:
            raise ValueError(Msg("%(field)s must start with http:// or https:// and a host before any "
                                 "variable",
                                 field=field))
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(Msg("%(field)s must be an http(s) URL without user info, e.g. "
                             "https://shop.example.com/p/1",
                             field=field))
    return value


class LinkCard(BaseModel):
    """An H5 card (``news``). ``url``, ``title`` and ``desc`` may use variables."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2048, examples=["https://shop.example.com/promo?c={{ customer.id }}"])
    title: str = Field(min_length=1, max_length=128, examples=["{{ customer.name }}，您的专属福利"])
    desc: str = Field(default="", max_length=512)
    image_url: str = Field(default="", max_length=2048, description="cover image (http/https)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value, "link.url", template=True)

    @field_validator("title", "desc")
    @classmethod
    def _templates(cls, value: str, info: Any) -> str:
        return _template(value, f"link.{info.field_name}")

    @field_validator("image_url")
    @classmethod
    def _image(cls, value: str) -> str:
        return _http_url(value, "link.image_url") if value else value


class MiniprogramCard(BaseModel):
    """A mini-program card. The mini program must be bound to the corp (WeCom admin › 小程序)."""

    model_config = ConfigDict(extra="forbid")
    appid: str = Field(pattern=r"^wx[0-9a-f]{16}$", examples=["wx8bd80126147df384"])
    title: str = Field(min_length=1, max_length=128)
    image_url: str = Field(max_length=2048, description="cover image; WeCom requires http:// or https://")
    page: str = Field(min_length=6, max_length=512, examples=["pages/index/index.html?from=sidebar"],
                      description="the path to open; WeCom requires the .html suffix")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _template(value, "miniprogram.title")

    @field_validator("image_url")
    @classmethod
    def _image(cls, value: str) -> str:
        return _http_url(value, "miniprogram.image_url")

    @field_validator("page")
    @classmethod
    def _page(cls, value: str) -> str:
        if not value.split("?", 1)[0].endswith(".html") or value.startswith(("http:", "https:", "//")):
            raise ValueError(Msg("miniprogram.page must be a path inside the mini program ending in "
                                 ".html, e.g. pages/index/index.html"))
        return value


class ScriptSpec(BaseModel):
    """A script as ops and marketers write it in the web app."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind = "text"
    title: str = Field(min_length=1, max_length=120, examples=["收益率风险提示（合规）"])
    category_id: int | None = Field(default=None, description="a category of the same team (or of every team)")
    team: str = Field(default="", max_length=60, description="the agent group it belongs to; '' = every team")
    text: str = Field(default="", max_length=expressions.MAX_SOURCE,
                      examples=["{{ customer.name }}您好，理财产品的历史收益率不代表未来表现……"])
    link: LinkCard | None = None
    miniprogram: MiniprogramCard | None = None
    image_id: int | None = Field(default=None, description="an image uploaded with POST /api/sidebar/images")
    keywords: list[str] = Field(default_factory=list, max_length=MAX_KEYWORDS,
                                description="words staff search for (the title and text are searched too)")
    requires_approval: bool = Field(default=False, description="staff may use it only once a reviewer approved "
                                                               "this version (compliance)")

    @field_validator("team")
    @classmethod
    def _team(cls, value: str) -> str:
        if value and not re.match(KEY, value):
            raise ValueError(Msg("team must be an agent group key (a-z, 0-9, _ or -) or empty for every "
                                 "team"))
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _template(value, "text") if value else value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        return clean_keywords(value)

    @model_validator(mode="after")
    def _content_fits_kind(self) -> ScriptSpec:
        needs = {"text": ("text", bool(self.text.strip())), "link": ("link", self.link is not None),
                 "miniprogram": ("miniprogram", self.miniprogram is not None),
                 "image": ("image_id", self.image_id is not None)}
        field, present = needs[self.kind]
        if not present:
            raise ValueError(Msg("a %(kind)s script needs %(field)s",
                                 kind=self.kind, field=field))
        return self

    def content(self) -> dict[str, Any]:
        """What is stored (and, once published, used): only the parts of this kind."""
        if self.kind == "text":
            return {"text": self.text}
        if self.kind == "link":
            assert self.link is not None
            return {"link": self.link.model_dump()}
        if self.kind == "miniprogram":
            assert self.miniprogram is not None
            return {"miniprogram": self.miniprogram.model_dump()}
        return {"image_id": self.image_id}


# -- cost on sample data --------------------------------------------------------------------------------


def template_fields(kind: str, content: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The templates of a script's content, each with the field it is in (``text``, ``link.title`` …)."""
    if kind == "text":
        found = [("text", str(content.get("text", "")))]
    elif kind == "link":
        link = dict(content.get("link") or {})
        found = [(f"link.{k}", str(link.get(k, ""))) for k in ("url", "title", "desc")]
    elif kind == "miniprogram":
        found = [("miniprogram.title", str(dict(content.get("miniprogram") or {}).get("title", "")))]
    else:
        found = []
    return [(field, source) for field, source in found if source.strip()]


def cost_sources(spec: ScriptSpec) -> list[tuple[str, str]]:
    """``(source, kind)`` of every template of ``spec``: what the web app has measured in its evaluation pool
    before it saves (``engine.expressions.measure_sample_costs``)."""
    return [(source, "template") for _field, source in template_fields(spec.kind, spec.content())]


def check_cost(spec: ScriptSpec) -> None:
    """:class:`ScriptProblem` naming the field when a template of ``spec`` costs more on sample data than a
    flow's template may (the check flow validation makes; the script's templates count together as a flow's do)."""
    spent = expressions.Budget(expressions.VALIDATION_FLOW_STEPS)
    for field, source in template_fields(spec.kind, spec.content()):
        problem = validation.expression_problem(source, "template", spent)
        if problem is not None:
            message, fix, _code = problem
            raise ScriptProblem(message, field, fix)


# -- rendering ------------------------------------------------------------------------------------------


def _render(source: str, context: Mapping[str, Any], field: str) -> str:
    try:
        return expressions.render(source, context)
    except expressions.ExpressionError as exc:
        raise ScriptProblem(Msg("%(field)s: %(exc)s", field=field, exc=exc), field) from None


def render_message(kind: str, content: Mapping[str, Any], context: Mapping[str, Any],
                   media_id: str | None = None) -> dict[str, Any]:
    """The ``sendChatMessage`` parameters of a published script for one customer.

    ``context`` is what templates see (``customer``, ``vars``). An image script needs the WeCom
    ``media_id`` of its image. Raises :class:`ScriptProblem` when a template fails or the result breaks
    a WeCom limit (text over 4000 bytes, a link that is no longer an http(s) URL).
    """
    if kind == "text":
        text = _render(str(content.get("text", "")), context, "text")
        size = len(text.encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise ScriptProblem(Msg("text: the rendered text is %(size)s bytes; WeCom sends at most "
                                    "%(limit)s",
                                    size=size, limit=MAX_TEXT_BYTES),
                                "text")
        if not text.strip():
            raise ScriptProblem(Msg("text: the rendered text is empty for this customer"), "text")
        return {"msgtype": "text", "text": {"content": text}}
    if kind == "link":
        link = dict(content.get("link") or {})
        url = _render(str(link.get("url", "")), context, "link.url").strip()
        try:
            _http_url(url, "link.url")
        except ValueError as exc:
            raise ScriptProblem(Msg("%(exc)s (after filling in the variables: '%(value)s')",
                                    exc=exc, value=url[:80]), "link.url") from None
        return {"msgtype": "news", "news": {"link": url, "title": _render(str(link.get("title", "")), context,
                                                                             "link.title"),
                                            "desc": _render(str(link.get("desc", "")), context, "link.desc"),
                                            "imgUrl": str(link.get("image_url", ""))}}
    if kind == "miniprogram":
        card = dict(content.get("miniprogram") or {})
        return {"msgtype": "miniprogram", "miniprogram": {
            "appid": str(card.get("appid", "")), "title": _render(str(card.get("title", "")), context,
                                                                  "miniprogram.title"),
            "imgUrl": str(card.get("image_url", "")), "page": str(card.get("page", ""))}}
    if kind == "image":
        if not media_id:
            raise ScriptProblem(Msg("image: the image has no WeCom media id yet"), "image_id")
        return {"msgtype": "image", "image": {"mediaid": media_id}}
    raise ScriptProblem(Msg("unknown script kind '%(kind)s'; the kinds are %(value)s",
                            kind=kind, value=', '.join(KINDS)), "kind")


def previews(items: Sequence[tuple[int, str, Mapping[str, Any]]], context: Mapping[str, Any]
             ) -> dict[int, tuple[str, str | None]]:
    """``{script id: (one-line preview, problem or None)}`` of published scripts ``(id, kind, content)`` for one
    customer: what the sidebar lists. Pure — the web app runs it in its evaluation pool."""
    out: dict[int, tuple[str, str | None]] = {}
    for script_id, kind, content in items:
        if kind == "image":
            out[script_id] = ("", None)
            continue
        try:
            out[script_id] = (preview_text(render_message(kind, content, context, media_id=None)), None)
        except ScriptProblem as exc:
            out[script_id] = ("", str(exc))
    return out


def preview_text(message: Mapping[str, Any]) -> str:
    """One line for the sidebar list: the text, or the card's title."""
    kind = message.get("msgtype")
    body = message.get(str(kind)) or {}
    if kind == "text":
        return str(body.get("content", ""))
    if kind in ("news", "miniprogram"):
        return str(body.get("title", ""))
    return ""


# -- search ---------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """Search form: NFKC (full-width → half-width), lower case, spaces squeezed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def clean_keywords(words: Iterable[str]) -> list[str]:
    """``words`` as a script or a suggestion rule keeps them: each in :func:`normalise`'s form, 1–40
    characters, each once, in the order given."""
    out: list[str] = []
    for word in words:
        cleaned = normalise(word)
        if not cleaned or len(cleaned) > 40:
            raise ValueError(Msg("keyword '%(word)s' must be 1–40 characters", word=word))
        if cleaned not in out:
            out.append(cleaned)
    return out


@dataclass(frozen=True)
class Searchable:
    id: int
    title: str
    text: str
    keywords: Sequence[str] = ()
    category: str = ""
    uses: int = 0


def search(items: Iterable[Searchable], query: str, limit: int = 50) -> list[int]:
    """Ids of the items matching every word of ``query`` (in title, keywords, text or category), best first:
    title hits weigh most, then keywords, then text; ties by how often staff used them."""
    words = normalise(query).split()[:10]
    scored: list[tuple[int, int, int]] = []
    for item in items:
        title, text, category = normalise(item.title), normalise(item.text), normalise(item.category)
        keywords = [normalise(k) for k in item.keywords]
        score = 0
        for word in words:
            hit = (4 if word in title else 0) + (3 if any(word in k for k in keywords) else 0) + \
                  (1 if word in text else 0) + (1 if word in category else 0)
            if not hit:
                break
            score += hit
        else:
            scored.append((score, item.uses, item.id))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    return [item_id for _, _, item_id in scored[:limit]]


# -- review ---------------------------------------------------------------------------------------------


def review_refusal(reviewer_role: str, reviewer: str, author: str) -> Msg | None:
    """Why ``reviewer`` may not approve or reject a version ``author`` wrote, or None when they may:
    reviewers are ops (or admin), and never the person who wrote the version (four eyes)."""
    if reviewer_role not in (*REVIEWERS, "admin"):
        return Msg("reviewing scripts needs the role %(roles)s (or admin); you are %(role)s",
                   roles=" or ".join(REVIEWERS), role=reviewer_role)
    if reviewer == author:
        return Msg("you wrote this version: another reviewer must approve it (four-eyes rule)")
    return None
