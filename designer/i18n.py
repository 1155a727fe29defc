"""The designer's language: gettext catalogues (Babel), English source strings, zh-CN by default.

Every user-facing string is written in English in the code and the templates and marked for
translation: ``_("Flows")`` in Python, ``{{ _("Flows") }}`` or ``{% trans %}…{% endtrans %}`` in Jinja,
``ngettext`` for plurals, ``pgettext(context, text)`` where one English word means two things
("Open" the button vs "Open" the ticket status). Placeholders are ``%(name)s``:
``_("There is no flow “%(id)s”.") % {"id": flow_id}`` in Python, ``_("… %(id)s …", id=flow_id)`` in Jinja.
Strings defined at import time (tables of labels) are marked with :func:`N_` / :func:`NC_` and translated
where they are shown.

The Chinese catalogue is ``designer/locale/zh_CN/LC_MESSAGES/messages.po``; ``make i18n`` extracts the
strings (``babel.cfg``), updates the catalogue, compiles it (``messages.mo``, not committed) and checks it.
The designer reads the ``.mo`` when it is at least as new as the ``.po``, else compiles the ``.po`` in memory
the first time the language is used — so a fresh clone needs no build step and no binary is committed.
A string without a translation shows in English; fuzzy entries count as untranslated.

The language is chosen per request (``?lang=`` remembered in a cookie, then the cookie, then
Accept-Language; zh-CN by default) by :class:`LanguageMiddleware`, and kept in a context variable for the
request, so ``_()`` anywhere below a route speaks the caller's language. Outside a request (the CLI, a
message to a customer) say which language you mean: ``with language("zh-CN"): ...``.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Literal

from babel.core import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.text import N_ as N_  # marks for the catalogue: one home in wording, re-exported here
from engine.text import NC_ as NC_
from engine.text import Msg
from wording import MsgError
from wording.stored import literals

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE: Language = "zh-CN"
LANG_COOKIE = "tideflow_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
#: the Babel/CLDR locale of each UI language (numbers, dates, currency, plural rules)
LOCALES: dict[Language, str] = {"zh-CN": "zh_CN", "en": "en"}

_current: ContextVar[Language] = ContextVar("tideflow_language", default=DEFAULT_LANGUAGE)
#: did the request choose a language (?lang=, or the cookie of a choice made in the UI)? The JSON API answers in
#: English unless it did — Accept-Language alone, which every browser and many HTTP libraries send, does not
#: change what programs read; pages follow Accept-Language and default to zh-CN.
_stated: ContextVar[bool] = ContextVar("tideflow_language_stated", default=False)


# --- choosing the language -------------------------------------------------------------------------


def pick_language(request: Request, requested: str | None = None) -> Language:
    """``en`` when asked for (``requested``: a ``lang`` form field or cookie; ``?lang=en``) or preferred by
    Accept-Language; else zh-CN, the default."""
    requested = request.query_params.get("lang") or requested
    if requested:
        return "en" if requested.lower().startswith("en") else "zh-CN"
    best = {"en": 0.0, "zh": 0.0}
    for part in request.headers.get("accept-language", "").split(","):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        family = tag.strip().lower().split("-")[0]
        if family in best:
            best[family] = max(best[family], q)
    return "en" if best["en"] > best["zh"] else "zh-CN"


#: the variable that names the CLI's language outright, before the POSIX locale
LANG_VARIABLE = "TIDEFLOW_LANG"
#: the POSIX locale variables, strongest first (the first one set decides, as for gettext)
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
#: GNU gettext's list of languages in order of preference (``zh_CN:en``), read before the locale
LANGUAGE_LIST_VARIABLE = "LANGUAGE"


def _locale_language(name: str) -> Language | None:
    """The language we have a catalogue for that the locale or language name ``name`` means, or None."""
    tag = name.strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    language, _sep, territory = tag.partition("_")
    if language == "zh" and territory in ("", "cn", "sg", "hans"):
        return "zh-CN"
    return "en" if language == "en" else None


class UnknownLanguage(MsgError):
    """``TIDEFLOW_LANG`` names a language tideflow does not speak."""


def environment_language(env: Mapping[str, str]) -> Language:
    """The language of a command run with environment ``env`` (the ``tideflow`` CLI): ``TIDEFLOW_LANG`` when set
    (``zh-CN`` or ``en``, any case; :class:`UnknownLanguage` otherwise), else the POSIX locale — the first of
    ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set — Chinese for ``zh_CN.UTF-8``, ``zh_CN``, ``zh``,
    ``zh_SG``; else English (``C``, ``POSIX``, ``en_US.UTF-8``, other languages, nothing set): the way git, gh and
    docker follow the locale, and English where the shell says nothing, since scripts read the CLI. GNU
    ``LANGUAGE`` (``zh_CN:en``) comes before the locale's variables, its first entry we have a catalogue for
    winning — but, as in gettext, only when the locale is not ``C``/``POSIX``/unset (there it is ignored)."""
    named = env.get(LANG_VARIABLE, "").strip()
    if named:
        for lang in LANGUAGES:
            if named.lower() == lang.lower():
                return lang
        raise UnknownLanguage(
            Msg("%(variable)s=%(value)s is not a language tideflow speaks; use one of: %(allowed)s",
                variable=LANG_VARIABLE, value=named, allowed=", ".join(LANGUAGES)),
            Msg("set it to one of those, or unset it to follow the locale (LANG)"), field=LANG_VARIABLE)
    locale_name = next((env[name] for name in LOCALE_VARIABLES if env.get(name)), "")
    if locale_name.split(".")[0] not in ("", "C", "POSIX"):  # as GNU gettext: LANGUAGE only beside a real locale
        for entry in env.get(LANGUAGE_LIST_VARIABLE, "").split(":"):
            listed = _locale_language(entry)
            if listed is not None:  # the first entry we have a catalogue for wins
                return listed
    return _locale_language(locale_name) or "en"


def request_language(request: Request) -> Language:
    """The language of a request: ``?lang=``, then the remembered choice (cookie), then Accept-Language."""
    return pick_language(request, request.cookies.get(LANG_COOKIE))


class LanguageMiddleware:
    """Sets the request's language for everything below it (routes, exception handlers, templates)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = _current.set(request_language(request))
        stated = _stated.set(bool(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)))
        try:
            await self.app(scope, receive, send)
        finally:
            _stated.reset(stated)
            _current.reset(token)


def current_language() -> Language:
    """The language of the pages of this request (zh-CN unless the request prefers English)."""
    return _current.get()


def api_language() -> Language:
    """The language of the JSON API's messages in this request: the chosen one (``?lang=``, the cookie), else
    English (the API's own)."""
    return _current.get() if _stated.get() else "en"


@contextmanager
def language(lang: Language) -> Iterator[None]:
    """Speak ``lang`` inside the block (e.g. a message that goes to a customer, whoever sends it)."""
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def locale() -> Locale:
    """The Babel locale of the current language (for numbers, dates and currency)."""
    return _locale(current_language())


@cache
def _locale(lang: Language) -> Locale:
    return Locale.parse(LOCALES[lang])


# --- the catalogues --------------------------------------------------------------------------------


def po_path(lang: Language = "zh-CN") -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: Language) -> _gettext.NullTranslations:
    """The catalogue of ``lang``: English is the source language (no catalogue); others are read from
    their ``.po`` and compiled in memory, leaving out fuzzy entries."""
    path = po_path(lang)
    if lang == "en" or not path.is_file():
        return _gettext.NullTranslations()
    mo = path.with_suffix(".mo")
    if mo.is_file() and mo.stat().st_mtime >= path.stat().st_mtime:  # compiled by make i18n and still current
        with mo.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=LOCALES[lang], domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


@cache
def catalogue_texts(lang: Language) -> tuple[tuple[str, str], ...]:
    """Every sentence of the catalogue, as (its English template, its text in ``lang``): what a search by the
    reader's words looks through (the ``.po`` lists every msgid; English is the msgid itself, an untranslated or
    fuzzy entry says its English, as :func:`translate` does). Plural and contextual entries are no templates."""
    path = po_path("zh-CN")
    if not path.is_file():
        return ()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=LOCALES["zh-CN"], domain=DOMAIN)
    return tuple((m.id, m.string if lang != "en" and isinstance(m.string, str) and m.string and not m.fuzzy
                  else m.id) for m in catalog if isinstance(m.id, str) and m.id and m.context is None)


@cache
def _sayings(lang: Language) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(template, the words it says whatever its values — in English and in ``lang`` —, casefolded)."""
    return tuple((template, tuple(part.casefold() for text in {template, said} for part in literals(text) if part))
                 for template, said in catalogue_texts(lang))


def templates_saying(words: str, lang: Language) -> list[str]:
    """The catalogue's templates whose every sentence holds ``words`` (ignoring case) in English or in ``lang``:
    the words lie within one stretch of the template's own text, between its placeholders."""
    folded = words.casefold()
    return [template for template, parts in _sayings(lang) if any(folded in part for part in parts)] if folded else []


def gettext(message: str) -> str:
    return translations(current_language()).gettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations(current_language()).pgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return translations(current_language()).npgettext(context, singular, plural, n)


def translate(text: str, lang: Language | None = None) -> str:
    """``text`` in ``lang`` (default: the page's language). A :class:`~engine.text.Msg` is translated from its
    template, its values filled in (translated too when they are ``Msg``); a plain string is looked up as a
    msgid; whatever the catalogue does not know stays English."""
    if not text:
        return text
    catalogue = translations(lang or current_language())
    if isinstance(text, Msg):
        values = {k: translate(v, lang) if isinstance(v, Msg) else v for k, v in text.values.items()}
        translated = catalogue.gettext(text.template)
        if not values:
            return translated
        try:
            return translated % values
        except (KeyError, ValueError, TypeError):  # a broken translation must not hide the message
            return str(text)
    return catalogue.gettext(text)


def error_text(exc: BaseException) -> str:
    """What went wrong, for a page: the exception's message (a ``Msg`` if it was raised with one) translated."""
    first = exc.args[0] if exc.args else ""
    return translate(first) if isinstance(first, str) and first else str(exc)


def listing(items: list[str]) -> str:
    """Items joined the way the language lists them (``a、b、c`` / ``a, b, c``)."""
    return ("、" if current_language() == "zh-CN" else ", ").join(items)


# --- templates -------------------------------------------------------------------------------------


def install(env: Environment) -> None:
    """Give a Jinja environment ``_``, ``gettext``, ``ngettext``, ``pgettext``, ``{% trans %}`` in the
    request's language (new-style: ``_("… %(n)s", n=3)`` formats and escapes its values)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext)
    env.globals["current_language"] = current_language

