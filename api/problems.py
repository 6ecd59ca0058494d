"""RFC 9457 problem details for every error the API answers (``application/problem+json``).

Every problem has ``type``, ``title``, ``status``, ``detail`` and a machine ``code`` (e.g. ``not-found``,
``validation``, ``limit:max_file_bytes``, ``etag-mismatch``, ``graph-unavailable``). Client mistakes are 4xx
with a reason; anything unexpected is a 500 whose body says only that, never a stack trace (the trace goes
to the application log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("medkg.api")

_CODES = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
          405: "method-not-allowed", 406: "not-acceptable", 409: "conflict", 412: "etag-mismatch",
          413: "too-large", 415: "unsupported-media-type", 422: "validation", 428: "precondition-required",
          429: "rate-limited", 500: "internal", 503: "unavailable", 504: "timeout"}
_TITLES = {400: "Bad request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 412: "Precondition failed",
           413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
           428: "Precondition required", 429: "Too many requests", 500: "Internal error",
           503: "Service unavailable", 504: "Request timed out"}


class Problem(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    code: str
    instance: str | None = None
    errors: list[dict] | None = None


class ApiProblem(Exception):
    """Raise anywhere below a route: becomes a problem response."""

    def __init__(self, status: int, code: str | None = None, detail: str = "", *,
                 headers: dict[str, str] | None = None, errors: list[dict] | None = None):
        super().__init__(detail or code)
        self.status, self.code, self.detail = status, code or _CODES.get(status, "error"), detail
        self.headers, self.errors = headers or {}, errors


def problem_response(request: Request | None, status: int, code: str, detail: str = "",
                     headers: dict[str, str] | None = None, errors: list[dict] | None = None) -> JSONResponse:
    body = Problem(type=f"https://medkg.invalid/problems/{code}", title=_TITLES.get(status, "Error"),
                   status=status, detail=detail, code=code,
                   instance=request.url.path if request is not None else None, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers,
                        media_type=MEDIA_TYPE)


def _clean_errors(errors) -> list[dict]:
    """Validation errors without the offending input echoed back (it may be patient data or huge)."""
    return [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem):
        return problem_response(request, exc.status, exc.code, exc.detail, exc.headers, exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else ""
        if detail == _TITLES.get(exc.status_code) or detail in ("Not Found", "Method Not Allowed"):
            detail = ""
        return problem_response(request, exc.status_code, _CODES.get(exc.status_code, "error"), detail,
                                dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return problem_response(request, 422, "validation", "the request does not match the schema",
                                errors=_clean_errors(exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal", "an unexpected error; it has been logged")


# responses every router documents, so the OpenAPI schema lists what clients (and schemathesis) can get
def problem_responses(*statuses: int) -> dict[int, dict]:
    return {s: {"model": Problem, "description": _TITLES.get(s, "Error"),
                "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}} for s in statuses}
