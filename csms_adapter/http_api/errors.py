"""Every 4xx of the API has one shape, ``{"detail": [{"field": ..., "reason": ...}]}``, so a fleet system's log
says which field was wrong and why without parsing prose. Validation errors of FastAPI/pydantic are mapped to
it here, once."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from csms_adapter.http_api.schemas import Problem, ProblemReport

_LOCATIONS = ("body", "query", "path", "header")


class ApiError(Exception):
    """A refused request: ``status`` (4xx), the field it is about ("" for none) and the reason."""

    def __init__(self, status: int, field: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field
        self.reason = reason
        self.headers = headers


def _report(status: int, problems: list[Problem], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ProblemReport(detail=problems).model_dump(), status_code=status, headers=headers)


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts)


def _reason(message: str) -> str:
    # pydantic prefixes the messages of our own validators; the prefix says nothing to an operator.
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [Problem(field=_field(tuple(e.get("loc", ()))), reason=_reason(str(e.get("msg", "invalid"))))
                for e in exc.errors()]
    return _report(422, problems)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _report(exc.status, [Problem(field=exc.field, reason=exc.reason)], exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return _report(exc.status_code, [Problem(field="", reason=str(exc.detail))], headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
