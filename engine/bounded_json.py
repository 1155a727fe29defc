"""Parsing JSON that came from outside, within limits: every entrance (``/api/events``, connector pushes
under ``/hooks``, imports, ``/api/decisions``) parses request bodies with :func:`parse`, so no body
can make the parser, the router or the database fail with a 500 or a memory spike.

What is refused, each with a :class:`InputRejected` carrying the HTTP status, the limit's setting and
a message that names the limit and the fix:

- a body larger than ``max_bytes`` (413) — the web middleware already stops reading at that size;
- bytes that are not UTF-8 (400), and text with a lone surrogate, raw or as a ``\\ud800`` escape (400):
  a database cannot store it;
- nesting deeper than ``max_depth`` (400), however deep (a 100,000-deep array is refused without
  recursion);
- a string longer than ``max_string`` characters, and a number with more digits than Python reads (400);
- ``NaN`` / ``Infinity`` (400): not JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engine.settings import get_settings
from engine.text import NO_FIX, Msg, MsgError

_SURROGATE = re.compile("[\ud800-\udfff]")


class InputRejected(MsgError):
    """A body outside the limits: ``status`` to answer, ``setting`` that raises the limit (if any)."""

    def __init__(self, message: Msg, status: int = 400, setting: str | None = None, fix: Msg = NO_FIX,
                 syntax: bool = False) -> None:
        super().__init__(message, fix, None, status)
        self.status = status
        self.setting = setting
        self.fix = fix
        #: the body is simply not JSON (no limit was hit): a caller with its own message for that may use it
        self.syntax = syntax


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_depth: int = 32
    max_string: int = 1_048_576
    #: the setting that raises ``max_bytes`` (named in the 413)
    bytes_setting: str = "TIDEFLOW_MAX_REQUEST_BYTES"

    @classmethod
    def from_settings(cls, max_bytes: int | None = None, bytes_setting: str = "TIDEFLOW_MAX_REQUEST_BYTES"
                      ) -> Limits:
        settings = get_settings()
        return cls(max_bytes=settings.max_request_bytes if max_bytes is None else max_bytes,
                   max_depth=settings.max_json_depth, max_string=settings.max_json_string, bytes_setting=bytes_setting)


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise InputRejected(Msg("the body is larger than the limit of %(max_bytes)s bytes",
                                max_bytes=limits.max_bytes), 413,
                            limits.bytes_setting, Msg("send less at a time (split a batch), or raise %(bytes_setting)s",
                                                      bytes_setting=limits.bytes_setting))


def decode(body: bytes) -> str:
    """The body as text: strict UTF-8 (a BOM is allowed), no lone surrogates."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputRejected(Msg("the body is not UTF-8: byte 0x%(byte)s at position %(start)s cannot "
                                "be decoded",
                                byte=format(body[exc.start], "02x"), start=exc.start),
                            400, None, Msg("send the body encoded as UTF-8")) from None
    return text


def _too_deep(limits: Limits, where: str) -> InputRejected:
    return InputRejected(Msg("the JSON is nested deeper than the limit of %(max_depth)s levels "
                             "(%(where)s)",
                             max_depth=limits.max_depth, where=where), 400,
                         "TIDEFLOW_MAX_JSON_DEPTH", Msg("flatten the document"))


def _no_constant(name: str) -> Any:
    raise InputRejected(Msg("%(name)s is not a JSON value", name=name), 400, None,
                        Msg("send numbers as finite numbers (or null)"))


Path = tuple[Any, str | int] | None  # (parent path, key): built as the walk goes, spelled out only for an error


def _path(path: Path) -> str:
    parts: list[str | int] = []
    while path is not None:
        path, key = path
        parts.append(key)
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(parts)).lstrip(".") \
        or "(the document)"


def check_value(value: Any, limits: Limits) -> None:
    """Depth, string lengths and surrogates of an already parsed value (iteratively)."""
    stack: list[tuple[Any, int, Path]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            _check_string(item, limits, path)
        elif isinstance(item, dict | list):
            if depth >= limits.max_depth:
                raise _too_deep(limits, f"at {_path(path)}")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    _check_string(key, limits, (path, key))
                stack.append((child, depth + 1, (path, key)))


def _check_string(text: str, limits: Limits, path: Path) -> None:
    if len(text) > limits.max_string:
        raise InputRejected(Msg("the string at %(path)s is %(count)s characters long; the limit is "
                                "%(max_string)s",
                                path=_path(path), count=len(text), max_string=limits.max_string),
                            400, "TIDEFLOW_MAX_JSON_STRING",
                            Msg("send shorter text, or a reference to where the long text is kept"))
    if _SURROGATE.search(text):
        raise InputRejected(Msg("the string at %(path)s holds a lone surrogate (e.g. \\ud800): it is "
                                "not valid Unicode",
                                path=_path(path)), 400, None, Msg("send valid Unicode: surrogates only in pairs"))


def parse(body: bytes | str, limits: Limits | None = None) -> Any:
    """Parse a JSON body within ``limits`` (default: the settings'); :class:`InputRejected` otherwise."""
    limits = limits or Limits.from_settings()
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    check_size(len(raw), limits)
    text = decode(raw) if isinstance(body, bytes) else body
    if _SURROGATE.search(text):
        raise InputRejected(Msg("the body holds a lone surrogate: it is not valid Unicode"), 400, None,
                            Msg("send valid Unicode text"))
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except InputRejected:
        raise
    except RecursionError:  # the C parser stops safely at Python's recursion limit (~1,000 levels)
        raise _too_deep(limits, "far deeper") from None
    except json.JSONDecodeError as exc:
        raise InputRejected(Msg("the body is not valid JSON: %(msg)s at line %(lineno)s column "
                                "%(colno)s",
                                msg=exc.msg, lineno=exc.lineno, colno=exc.colno), 400,
                            None, Msg("send a JSON document"), syntax=True) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python reads
        raise InputRejected(Msg("the body cannot be read as JSON: %(detail)s", detail=str(exc)), 400, None,
                            Msg("send a JSON document")) from None
    check_value(value, limits)
    return value
