"""FastAPI dependencies: the caller (API key or bearer JWT) with a role check and the rate limit, and the
services the app built at start-up (``app.state.services``).

They are ``async def`` on purpose: each is a few microseconds of work (a key lookup in SQLite, a token
bucket, or one Redis round trip when the buckets are shared), and FastAPI runs a plain ``def`` dependency in
the thread pool: a thread hop per dependency per request
cost more than the rest of the request (measured: an EMR view through the app took 2.4x the direct query)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, Role
from api.problems import ApiProblem

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (medkg users add)")
bearer = HTTPBearer(auto_error=False, description="an OAuth2 access token (JWT) from the identity provider")


async def services(request: Request):
    return request.app.state.services


async def current_principal(request: Request, key: Annotated[str | None, Depends(api_key_header)],
                      token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    svc = request.app.state.services
    principal = None
    if key:
        principal = svc.users.verify(key)
    elif token is not None and svc.jwt is not None:
        principal = svc.jwt.verify(token.credentials)
    if principal is None:
        raise ApiProblem(401, "unauthenticated", "send a valid X-API-Key header"
                         + (" or an Authorization: Bearer token" if svc.jwt is not None else ""),
                         headers={"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'})
    request.state.principal = principal
    buckets = svc.buckets  # ratelimit.TokenBuckets (per process) or SharedBuckets (Redis/Valkey)
    wait = await buckets.atake(principal.key_id)
    if wait:
        raise ApiProblem(429, "rate-limited", "too many requests for this key",
                         headers={"Retry-After": buckets.retry_after(wait)})
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only ``roles``."""
    allowed = frozenset(roles)

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ApiProblem(403, "forbidden-role",
                             f"role {principal.role.value} may not do this; it needs {', '.join(sorted(r.value for r in allowed))}")
        return principal

    check.roles = allowed  # read by the route table test and the docs
    return check


CLERK = require(Role.clerk)
CLINICIAN = require(Role.clinician)
RESEARCHER = require(Role.researcher)
INTEGRATION = require(Role.integration)
ADMIN = require(Role.admin)

# route parameters: ``who: Clerk`` admits clerks only and names the caller; ``svc: Svc`` is the services
Clerk = Annotated[Principal, Depends(CLERK)]
Clinician = Annotated[Principal, Depends(CLINICIAN)]
Researcher = Annotated[Principal, Depends(RESEARCHER)]
Integration = Annotated[Principal, Depends(INTEGRATION)]
Admin = Annotated[Principal, Depends(ADMIN)]
Svc = Annotated[object, Depends(services)]


def offload(route):
    """Run a blocking route function (graph queries, SQLite) in the thread pool *once*, as an ``async`` route:
    FastAPI would otherwise run a plain ``def`` route in the pool and then hop again to validate its response.
    The signature FastAPI reads is the wrapped function's (``functools.wraps``)."""

    @functools.wraps(route)
    async def run(*args, **kwargs):
        return await run_in_threadpool(route, *args, **kwargs)

    return run
