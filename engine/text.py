"""Text that people read, written in English where it arises and translated where it is shown.

The engine, the domains and the API speak English: a problem, an error, a reason is a sentence with
values in it. :class:`Msg` is such a sentence that remembers how it was made — its English template
(``"unknown node type '%(type)s'"``) and its values — so the designer can show it in the reader's
language (``designer.i18n.translate``) while everything else (logs, JSON, tests, ``str()``) sees the
plain English string it is. Templates are gettext msgids: ``%(name)s`` placeholders, extracted into the
catalogue by ``make i18n`` (``Msg`` is an extraction keyword), never translated here.

    raise ApiError(404, Msg("there is no flow '%(id)s'", id=flow_id), Msg("GET /api/flows lists them"))
"""

from __future__ import annotations

from collections.abc import Mapping
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
