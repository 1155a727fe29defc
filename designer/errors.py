"""One shape for every error the API returns: what is wrong, where, and how to fix it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError


class ApiError(Exception):
    """Raise from a route: becomes ``{"detail": {"message", "field", "fix", ...}}`` with ``status``."""

    def __init__(self, status: int, message: str, fix: str = "", field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "fix": fix, "field": field, **extra}
        #: "come back later" answers (429, 503) say when: clients and platforms retry on Retry-After
        self.headers: dict[str, str] = {"Retry-After": "5"} if status in (429, 503) else {}


def validation_problems(errors: list[Any], prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        field = prefix + ".".join(loc) if loc else (prefix.rstrip(".") or "body")
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "missing":
            fix = f"add '{loc[-1] if loc else field}'"
        elif e.get("type") == "extra_forbidden":
            msg, fix = "unknown field", "remove it or check its spelling"
        else:
            fix = f"send a valid value for '{field}'"
        out.append({"field": field, "message": msg, "fix": fix})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.body}, status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(list(exc.errors()))
        first = problems[0] if problems else {"message": "invalid request", "field": None, "fix": ""}
        return JSONResponse({"detail": {**first, "problems": problems}}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _model_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        problems = validation_problems(list(exc.errors()))
        return JSONResponse({"detail": {**problems[0], "problems": problems}}, status_code=422)

    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # e.g. an id of 2**70 in the path: SQLite and PostgreSQL integers stop at 2**63 - 1
        return JSONResponse({"detail": {"message": "a number in the request is too large",
                                        "fix": "use ids and amounts within the 64-bit integer range", "field": None}},
                            status_code=422)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"detail": {"message": "the database is not reachable right now; nothing was stored",
                                        "fix": "retry after a few seconds", "field": None}},
                            status_code=503, headers={"Retry-After": "5"})
