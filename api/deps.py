"""FastAPI dependencies: the caller (API key or bearer JWT) with a role check and the rate limit, and the
services the app built at start-up (``app.state.services``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, Role
from api.problems import ApiProblem
from api.ratelimit import TokenBuckets

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (medkg users add)")
bearer = HTTPBearer(auto_error=False, description="an OAuth2 access token (JWT) from the identity provider")


def services(request: Request):
    return request.app.state.services


def current_principal(request: Request, key: Annotated[str | None, Depends(api_key_header)],
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
    buckets: TokenBuckets = svc.buckets
    wait = buckets.take(principal.key_id)
    if wait:
        raise ApiProblem(429, "rate-limited", "too many requests for this key",
                         headers={"Retry-After": buckets.retry_after(wait)})
    return principal


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only ``roles``."""
    allowed = frozenset(roles)

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
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
