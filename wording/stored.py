"""A :class:`~wording.Msg` saved in a text column and read back as one, so a reason written down when it happened
(a connector's last sync error, a quarantined delivery's reason, a journey's failure) is shown later in the
language of whoever reads it, not in the English of the moment it was saved.

The stored form is :data:`PREFIX` followed by compact JSON of the template and its values —
``tideflow-msg:{"t":"WeCom refused the call: %(detail)s","v":{"detail":"invalid corpid"}}`` — a nested ``Msg``
value is an object of its own. A :func:`~wording.verbatim` text (words that are not ours) is stored as the plain
text it is, and so was every reason saved before this form existed: plain text reads back as itself, shown
verbatim in every language. No schema change: the columns stay text.

Reading never fails: stored text that is too long, not JSON, of the wrong shape, nested too deep, or whose template
does not fill with its values reads back verbatim (a page shows what is there, it does not answer 500). Limits are
kept by clipping the *values* (a long platform message), never the encoded text, so what is saved always decodes.

    row.last_error = stored(Msg("the shop refused the login: %(detail)s", detail=errmsg), MAX_REASON)
    stored_english(row.last_error)      # the JSON API: the plain English sentence, as before
    read_stored(row.last_error)         # a Msg again: designer.i18n.translate shows it in the reader's language
"""

from __future__ import annotations

import json
import re
from typing import Any, overload

from wording import Msg, verbatim

#: what marks a stored Msg (legacy reasons and verbatim texts never start with it)
PREFIX = "tideflow-msg:"
#: stored text longer than this is not decoded (shown as it is): no reason is that long, and a hostile or corrupt
#: row must not cost much to show
MAX_STORED = 64 * 1024
#: how deep Msg values may nest (``joined`` nests a balanced tree: 16 levels are 65,536 lines)
MAX_DEPTH = 16
#: the longest English a decoded Msg may make (a template that repeats a long value is refused, not rendered)
MAX_RENDERED = 2 * MAX_STORED
#: what replaces the end of a clipped value
ELLIPSIS = "…"
#: how long a reason saved when it happened may be, in characters of the saved text (the encoded form): a connector's
#: last sync error, an unmapped message's reason, a quarantined entry's error, a channel's staff-sync refusal, a
#: journey's failure, a mass send task's refusal. The columns are text (no migration follows it); the bound keeps
#: a row, a log line and a page's cell reasonable when a platform answers with pages of words — :func:`stored`
#: clips the values to fit.
MAX_REASON = 2000

#: one conversion of a template: ``%%`` or ``%(name)s`` with at most a small width or precision (``%(n).2f``);
#: anything else (``%s``, ``%(x)999999999s``) is not a template we write
_CONVERSION = re.compile(r"%(?:%|\((\w{1,64})\)[#0 +-]?\d{0,3}(?:\.\d{1,3})?[sdifr])")
_VERBATIM = "%(detail)s"

Value = str | int | float | bool | None | dict[str, Any]


def stored(text: str, limit: int | None = None) -> str:
    """``text`` (a :class:`Msg`, or a plain ``str`` taken as verbatim words) as it is saved: at most ``limit``
    characters that :func:`read_stored` turns back into the same sentence (values clipped to fit, each ending
    in ``…``). Falls back to the plain English, clipped, when even empty values cannot fit or the Msg cannot be
    kept (a value of a type JSON does not hold that its template formats otherwise)."""
    plain = str(text)
    message = text if isinstance(text, Msg) else verbatim(text)
    if _is_verbatim(message) and not plain.startswith(PREFIX):
        return _clip(plain, limit)
    form = _form(message, 0)
    if form is not None:
        encoded = _fitted(form, limit)
        if encoded is not None:
            return encoded
    while plain.startswith(PREFIX):  # never let a plain fallback pass for the stored form
        plain = plain[len(PREFIX):]
    return _clip(plain, limit)


@overload
def read_stored(text: str) -> Msg: ...
@overload
def read_stored(text: None) -> None: ...
def read_stored(text: str | None) -> Msg | None:
    """The :class:`Msg` that :func:`stored` saved as ``text``; any other text (a legacy English reason, a
    platform's words, something broken or hostile) as a verbatim Msg of itself. Never raises."""
    if text is None:
        return None
    if isinstance(text, Msg):
        return text
    message = stored_msg(text)
    return verbatim(text) if message is None else message


def stored_msg(text: str) -> Msg | None:
    """The :class:`Msg` ``text`` holds in the stored form; None when it is plain text — a reason saved before the
    form, a platform's words, something broken or hostile. For code that sorts reasons by what they are (their
    template and values) and reads the words only of plain text. Never raises."""
    if not text.startswith(PREFIX) or len(text) > MAX_STORED:
        return None
    try:
        return _build(_decode(text), 0)
    except Exception:  # broken, hostile or from a future form: not one of ours
        return None


@overload
def stored_english(text: str) -> str: ...
@overload
def stored_english(text: None) -> None: ...
def stored_english(text: str | None) -> str | None:
    """The plain English sentence of a stored text: what the JSON API and logs show (as before the stored form)."""
    return None if text is None else str(read_stored(text))


# -- the form ---------------------------------------------------------------------------------------------


def template_mark(template: str) -> str:
    """Text that the stored form of every :class:`Msg` with this ``template`` holds, whether it is the saved Msg or
    a value nested in one: a search finds the reasons of a template in SQL (a ``LIKE``) without reading them back.
    Inside a stored value the quotes are escaped, so a value's text never forms it; a value that *is* the
    template's text, under a placeholder named ``t``, does — and its sentence then says the template's words too."""
    return '"t":' + json.dumps(template, ensure_ascii=False)


def literals(template: str) -> list[str]:
    """The words a template says whatever its values: the text between its placeholders (``%%`` as ``%``). Words
    found within one of them are in every sentence the template makes. A text that is not a template we write
    (``%s``, a bare ``%``) is taken as words throughout."""
    try:
        _placeholders(template)
    except ValueError:
        return [template]
    return [part.replace("%%", "%") for part in re.split(r"%\(\w{1,64}\)[#0 +-]?\d{0,3}(?:\.\d{1,3})?[sdifr]",
                                                         template)]


def _is_verbatim(message: Msg) -> bool:
    values = getattr(message, "values", {})
    return getattr(message, "template", None) == _VERBATIM and list(values) == ["detail"] \
        and isinstance(values["detail"], str) and not isinstance(values["detail"], Msg)


def _form(message: Msg, depth: int) -> dict[str, Any] | None:
    """The JSON-able form of ``message`` (``{"t": template, "v": {name: value}}``), or None when it cannot be kept."""
    if depth > MAX_DEPTH:
        return None
    values: dict[str, Value] = {}
    for name, value in message.values.items():
        if isinstance(value, Msg):
            inner = _form(value, depth + 1)
            if inner is None:
                return None
            values[name] = inner
        elif value is None or isinstance(value, str | int | float | bool):
            values[name] = str(value) if isinstance(value, str) else value
        else:  # a Decimal, a date …: kept as its text, which %(x)s shows the same (checked below)
            values[name] = str(value)
    return {"t": message.template, "v": values}


def _encode(form: dict[str, Any]) -> str:
    return PREFIX + json.dumps(form, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _fitted(form: dict[str, Any], limit: int | None) -> str | None:
    """The encoded form within ``limit``, clipping the longest value until it fits; None when it cannot fit or
    does not read back as a Msg (so the caller keeps the plain English)."""
    try:
        encoded = _encode(form)
        while limit is not None and len(encoded) > limit:
            leaves = list(_leaves(form))
            if not leaves:
                return None
            holder, name = max(leaves, key=lambda leaf: len(leaf[0][leaf[1]]))
            longest: str = holder[name]
            if len(longest) <= len(ELLIPSIS):
                return None
            excess = len(encoded) - limit
            holder[name] = longest[:max(0, len(longest) - excess - len(ELLIPSIS))] + ELLIPSIS
            encoded = _encode(form)
        _build(_decode(encoded), 0)  # what is saved must read back
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return encoded


def _decode(text: str) -> Any:
    return json.loads(text[len(PREFIX):], parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a value we store")


def _leaves(form: dict[str, Any]) -> Any:
    """(the dict holding it, its key) of every text value in ``form``, nested ones too."""
    for name, value in form["v"].items():
        if isinstance(value, dict):
            yield from _leaves(value)
        elif isinstance(value, str) and value:
            yield form["v"], name


def _build(form: Any, depth: int) -> Msg:
    """The Msg of a decoded form; ValueError when it is not one this module writes."""
    if depth > MAX_DEPTH or not isinstance(form, dict) or set(form) != {"t", "v"}:
        raise ValueError("not a stored Msg")
    template, raw = form["t"], form["v"]
    if not isinstance(template, str) or not isinstance(raw, dict):
        raise ValueError("not a stored Msg")
    names = _placeholders(template) if raw else []  # Msg fills no template without values ("50% off" is fine)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            values[name] = _build(value, depth + 1)
        elif value is None or isinstance(value, str | int | float | bool):
            values[name] = value
        else:
            raise ValueError("not a stored Msg")
    rendered = len(template) + sum(len(str(values[name])) for name in names if name in values)
    if rendered > MAX_RENDERED:
        raise ValueError("too long to show")
    return Msg(template, **values)  # a placeholder without its value raises KeyError: shown verbatim


def _placeholders(template: str) -> list[str]:
    """The names a template fills, each time it fills them; ValueError on a conversion we never write."""
    names: list[str] = []
    for part in re.split(r"(%(?:%|\([^)]*\)[^a-zA-Z%]*[a-zA-Z]?|.?))", template):
        if not part.startswith("%"):
            continue
        match = _CONVERSION.fullmatch(part)
        if match is None:
            raise ValueError("not a template")
        if match.group(1):
            names.append(match.group(1))
    return names


def _clip(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit]
