"""A statement line's description, kept so that it can be read in either language.

A line says how its amount came about (``5% of sales ¥303,557.54 (party_type direct)``). It is written when the
run computes the period and kept for good: in English in ``description`` (what the CSV, the API and the logs
read), and as its :class:`~wording.Msg` — the English template and the values — in the line's ``refs`` under
``"text"``, from which a page draws it in the reader's language. A value that is itself a ``Msg`` (``sales`` or
``the excess over ¥X``, the reasons of a KPI coefficient) is kept as one, so it is translated too; other values
(amounts, rates, party names) are kept as the text they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.text import Msg

#: the key of a line's ``refs`` that holds its description's template and values
KEY = "text"
_DEPTH = 40  # a joined list of reasons nests as a balanced tree: shallow, but bounded all the same


def stored(text: str) -> dict[str, Any] | None:
    """``text`` as JSON (``{"t": template, "v": {name: value}}``, a nested ``Msg`` likewise), or None when it
    is a plain string with nothing to translate."""
    if not isinstance(text, Msg):
        return None
    values = {name: stored(value) if isinstance(value, Msg) else str(value) for name, value in text.values.items()}
    return {"t": text.template, "v": values}


def _message(data: Any, depth: int = 0) -> Msg | None:
    if depth > _DEPTH or not isinstance(data, dict) or not isinstance(data.get("t"), str):
        return None
    values: dict[str, Any] = {}
    for name, value in (data.get("v") or {}).items():
        if isinstance(value, dict):
            inner = _message(value, depth + 1)
            if inner is None:
                return None
            values[str(name)] = inner
        else:
            values[str(name)] = str(value)
    try:
        return Msg(data["t"], **values)
    except (KeyError, TypeError, ValueError):
        return None


def restored(data: Any, english: str) -> str:
    """The description kept as ``data`` (:func:`stored`): a ``Msg`` that reads exactly ``english``; else
    ``english`` itself (a line written before descriptions kept their template, or an entry that does not
    match what was written)."""
    message = _message(data)
    return message if message is not None and str(message) == english else english


def described(line: Mapping[str, Any]) -> str:
    """The description of a line as :func:`~activities.settlement.statements.line_view` answers it (its
    ``refs`` keep the template): a ``Msg`` for a page to translate, else its English."""
    refs = line.get("refs")
    return restored(refs.get(KEY) if isinstance(refs, Mapping) else None, str(line.get("description") or ""))
