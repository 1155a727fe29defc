"""Log hygiene: no secret and no unmasked personal data in any log record, whoever logs it.

:func:`install` replaces the process's log record factory, so every record — ours, uvicorn's,
httpx's, SQLAlchemy's, Temporal's — is cleaned once, when it is made, before any handler or
formatter sees it (handlers set up later by an operator included):

- the message is rendered (``msg % args``) and masked: mobile numbers and bank cards as in
  :func:`engine.pii.mask_text`, e-mail addresses as ``l***@example.org``, and credentials —
  API tokens (``tf_…``), ``Bearer …`` / ``Basic …`` values and ``password=``, ``secret=``,
  ``token=``, ``access_token=``, ``api_key=``, ``aes_key=``, ``signature=`` … values — as ``****``;
- an exception's traceback text is rendered and masked the same way;
- SQLAlchemy's DEBUG result-row records are dropped to a placeholder (rows hold whatever the tables
  hold). Statement parameters are hidden at the source: engines are made with
  ``hide_parameters=True`` (engine/db/session.py).

The app (designer.app.create_app) and the worker (engine.worker.build_worker) install it; it is
idempotent. Tested by tests/security/test_security_logs.py, which runs the app with every logger
at DEBUG and searches the records.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any, Final

from engine.pii import mask_text

_EMAIL: Final = re.compile(r"(?<![\w.+-])([\w+-])[\w.+-]*@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})")
_API_TOKEN: Final = re.compile(r"\btf_[A-Za-z0-9_-]{12,}")
_AUTH_VALUE: Final = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_SECRET_PAIR: Final = re.compile(
    r"(?i)\b((?:[a-z_-]*[_-])?(?:password|passwd|secret|token|api[_-]?key|aes_?key|access_?key|signature|"
    r"msg_signature|sign|credential)s?)"
    r"((?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?)"
    r"([^\s\"'\\&,;)}\]]{4,})"
)
_ROW_PLACEHOLDER: Final = "Row [hidden: rows may hold personal data]"
_MARK: Final = "_tideflow_clean"


def mask_email(text: str) -> str:
    """``li.lei@example.org`` → ``l***@example.org``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text) if "@" in text else text


def mask_secrets(text: str) -> str:
    """Blank out credential-looking values: API tokens, Authorization values, ``secret=value`` pairs."""
    text = _API_TOKEN.sub("tf_****", text)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}****", text)
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}****", text)


def clean(text: str) -> str:
    """What a log line may show: secrets blanked, phones, cards and e-mail addresses masked."""
    return mask_email(mask_text(mask_secrets(text)))


def _clean_record(record: logging.LogRecord) -> logging.LogRecord:
    if record.name.startswith("sqlalchemy.engine") and record.msg == "Row %r":
        record.msg, record.args = _ROW_PLACEHOLDER, None
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler to report, as logging does
        return record
    cleaned = clean(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = clean("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = clean(record.stack_info)
    return record


def install() -> None:
    """Clean every log record made from now on in this process (idempotent)."""
    current = logging.getLogRecordFactory()
    if getattr(current, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _clean_record(current(*args, **kwargs))

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)
