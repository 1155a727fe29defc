"""One shape for every error the API returns: what is wrong, where, and how to fix it.

``message`` and ``fix`` are English unless the request chose a language (``?lang=``, or the designer's
language cookie): then they come in that language wherever the catalogue has them (:func:`localized`).
They must be :class:`engine.text.Msg` (``Msg("there is no flow '%(id)s'", id=...)``, mypy checks it) so
their template can be translated; a platform's or a parser's own words go in as a value
(``Msg("WeCom refused the call: %(detail)s", detail=errmsg)``) and stay verbatim. ``field`` and ``code``
are for programs and never change.
"""

from __future__ import annotations

from typing import Any, TypedDict

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from designer import i18n
from engine.nodes.base import Problem
from engine.text import NO_FIX, Msg, MsgError
from engine.validate import pydantic_message


class ProblemDict(TypedDict):
    """One problem of a refused request, as the API shows it."""

    field: str
    message: Msg
    fix: Msg


class ApiError(Exception):
    """Raise from a route: becomes ``{"detail": {"message", "field", "fix", ...}}`` with ``status``."""

    def __init__(self, status: int, message: Msg, fix: Msg = NO_FIX, field: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "fix": fix, "field": field, **extra}
        #: "come back later" answers (429, 503) say when: clients and platforms retry on Retry-After
        self.headers: dict[str, str] = {"Retry-After": "5"} if status in (429, 503) else {}

    @classmethod
    def of(cls, exc: MsgError, field: str | None = None, status: int | None = None, **extra: Any) -> ApiError:
        """The API's answer to a domain refusal: its message, fix, field (unless ``field`` is given) and status."""
        return cls(status or exc.status, exc.message, exc.fix, field or exc.field, **extra)

    @classmethod
    def invalid(cls, problems: list[ProblemDict], status: int = 422) -> ApiError:
        """A request with ``problems`` (:func:`validation_problems`): the first one leads, all are listed."""
        first = problems[0]
        return cls(status, first["message"], first["fix"], first["field"], problems=problems)


def detail(message: Msg, fix: Msg = NO_FIX, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The ``detail`` of an ``HTTPException`` people read (login, roles, CSRF, tokens): the same shape as an
    :class:`ApiError`'s body, translated the same way (:func:`http_error`)."""
    return {"message": message, "fix": fix, **({"field": field} if field is not None else {}), **extra}


async def http_error(request: Request, exc: HTTPException) -> Response:
    """An ``HTTPException``'s answer: a :func:`detail` dict in the API's language, anything else as FastAPI
    answers it."""
    if isinstance(exc.detail, dict):
        return JSONResponse({"detail": localized(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
    return await http_exception_handler(request, exc)


def validation_problems(errors: list[Any], prefix: str = "") -> list[ProblemDict]:
    out: list[ProblemDict] = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        field = prefix + ".".join(loc) if loc else (prefix.rstrip(".") or "body")
        msg = pydantic_message(e)
        if e.get("type") == "missing":
            msg, fix = Msg("is required"), Msg("add '%(field)s'", field=loc[-1] if loc else field)
        elif e.get("type") == "extra_forbidden":
            msg, fix = Msg("unknown field"), Msg("remove it or check its spelling")
        else:
            fix = Msg("send a valid value for '%(field)s'", field=field)
        out.append({"field": field, "message": msg, "fix": fix})
    return out


def validation_text(exc: ValidationError, limit: int = 500) -> tuple[str, str]:
    """A form that a service's model refused, for a page in the reader's language: every problem with its
    field (``field: message``, joined by ``; ``, at most ``limit`` characters) and how to fix the first."""
    problems = validation_problems(list(exc.errors(include_input=False)))
    said = [i18n.translate(p["message"]) if p["field"] in ("", "body")
            else f"{p['field']}: {i18n.translate(p['message'])}" for p in problems]
    return "; ".join(said)[:limit], i18n.translate(problems[0]["fix"]) if problems else ""


def localized(body: dict[str, Any], lang: i18n.Language | None = None) -> dict[str, Any]:
    """``body`` with its ``message``, ``fix`` (and its problems') in ``lang`` (default: the API's language)."""
    lang = lang or i18n.api_language()
    out = dict(body)
    for key in ("message", "fix"):
        if isinstance(out.get(key), str):
            out[key] = i18n.translate(out[key], lang)
    if isinstance(out.get("problems"), list):
        out["problems"] = [localized(p, lang) if isinstance(p, dict) else p for p in out["problems"]]
    return out


def problem_dicts(problems: list[Problem], lang: i18n.Language | None = None) -> list[dict[str, Any]]:
    """A flow's problems as the API shows them (the canvas shows these too), in ``lang``."""
    return [localized(p.as_dict(), lang) for p in problems]


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]  # Starlette types it loosely

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": localized(exc.body)}, status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(list(exc.errors()))
        first = problems[0] if problems else {"message": Msg("invalid request"), "field": None, "fix": ""}
        return JSONResponse({"detail": localized({**first, "problems": problems})}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        problems = validation_problems(list(exc.errors()))
        return JSONResponse({"detail": localized({**problems[0], "problems": problems})}, status_code=422)

    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # e.g. an id of 2**70 in the path: SQLite and PostgreSQL integers stop at 2**63 - 1
        return JSONResponse({"detail": localized({
            "message": Msg("a number in the request is too large"),
            "fix": Msg("use ids and amounts within the 64-bit integer range"), "field": None})}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"detail": localized({
            "message": Msg("the database is not reachable right now; nothing was stored"),
            "fix": Msg("retry after a few seconds"), "field": None})}, status_code=503, headers={"Retry-After": "5"})
