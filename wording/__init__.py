"""Text that people read, written in English where it arises and translated where it is shown.

The bottom layer (``wording`` imports nothing of ours, and every package may import it: ``decisions``,
``connectors``, ``engine`` and up), so an error raised anywhere can be a :class:`Msg`.

The engine, the domains and the API speak English: a problem, an error, a reason is a sentence with
values in it. :class:`Msg` is such a sentence that remembers how it was made — its English template
(``"unknown node type '%(type)s'"``) and its values — so the designer can show it in the reader's
language (``designer.i18n.translate``) while everything else (logs, JSON, tests, ``str()``) sees the
plain English string it is. Templates are gettext msgids: ``%(name)s`` placeholders, extracted into the
catalogue by ``make i18n`` (``Msg`` is an extraction keyword), never translated here.

    raise ApiError(404, Msg("there is no flow '%(id)s'", id=flow_id), Msg("GET /api/flows lists them"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class Msg(str):
    """An English sentence (a ``str``) that keeps its template and values for translation."""

    template: str
    values: Mapping[str, Any]

    def __new__(cls, template: str, /, **values: Any) -> Msg:
        made = super().__new__(cls, template % values if values else template)
        made.template, made.values = template, values
        return made


def N_(message: str) -> str:
    """Mark an English string for the catalogue without translating it (it is translated where shown)."""
    return message


def NC_(context: str, message: str) -> str:
    """:func:`N_` with a gettext context: one English text that means two things gets one per meaning; translated
    where shown with ``pgettext(context, message)`` (a table of labels below the designer, e.g. why a handover
    item cannot move)."""
    return message


#: the fix of an error that has none to offer (an empty ``Msg``: shown as nothing in either language; not
#: written ``Msg("")``, which the catalogue would extract as the reserved empty msgid)
_NOTHING = ""
NO_FIX = Msg(_NOTHING)


class MsgError(ValueError):
    """A refusal people read: what is wrong (``message``), how to put it right (``fix``), which ``field``, and
    the HTTP ``status`` the API answers with. ``str()`` is the English message; the designer translates both.

    Domain errors (tickets, settlement, growth, …) subclass it, so the API and the pages turn any of them into an
    answer the same way (``designer.errors.from_error``)."""

    def __init__(self, message: Msg, fix: Msg = NO_FIX, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.fix, self.field, self.status = message, fix, field, status


def message_of(exc: BaseException) -> Msg:
    """What went wrong in ``exc`` as a :class:`Msg`: its own when it was raised with one (or is a
    :class:`MsgError`), else its English text as the verbatim detail of a translatable sentence (a library's
    or a platform's words are shown as they are, never translated)."""
    if isinstance(exc, MsgError):
        return exc.message
    first = exc.args[0] if exc.args else None
    if isinstance(first, Msg):
        return first
    return verbatim(str(exc) or type(exc).__name__)


#: how :func:`caught` says an exception: its class's name (``error``) and what it said (``detail``); the second for
#: one whose words are not shown (it said nothing)
CAUGHT = N_("%(error)s: %(detail)s")
CAUGHT_SILENT = N_("%(error)s")


def caught(exc: BaseException, detail: Msg | None = None) -> Msg:
    """``exc`` said as its class and ``detail`` (``"KeyError: no connector 'x'"``), or as its class alone when
    ``detail`` is None. The caller picks the detail — what of the exception is safe to show (masked, or only its
    type when its text may hold secrets). The class is a value of its own, so code that must know what the error
    was reads it from the ``Msg`` (a quarantined entry's kind), never from the words around it."""
    if detail is None:
        return Msg(CAUGHT_SILENT, error=type(exc).__name__)
    return Msg(CAUGHT, error=type(exc).__name__, detail=detail)


def verbatim(text: str) -> Msg:
    """``text`` shown as it is in every language: words that are not ours (a platform's ``errmsg``, a parser's
    detail, a library's exception) — a ``Msg`` only so it can go where one is required."""
    return text if isinstance(text, Msg) else Msg("%(detail)s", detail=text)


def joined(parts: Sequence[str], separator: str = "\n") -> Msg:
    """``parts`` joined by ``separator`` as one :class:`Msg` whose parts are translated one by one (a list of
    problems under one heading). Nested as a balanced tree, so a long list stays shallow."""
    if not parts:
        return Msg(_NOTHING)
    if len(parts) == 1:
        return parts[0] if isinstance(parts[0], Msg) else verbatim(parts[0])
    middle = len(parts) // 2
    return Msg("%(before)s%(separator)s%(after)s", before=joined(parts[:middle], separator), separator=separator,
               after=joined(parts[middle:], separator))
