"""Admins manage API keys over HTTP too (the same store as ``medkg users``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import UserError
from api.deps import Admin, Svc, offload
from api.problems import ApiProblem, problem_responses
from api.schemas import NewKeyOut, UserIn, UserOut

router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401, 403, 422, 429))


@router.get("", response_model=list[UserOut])
@offload
def list_users(_: Admin, svc: Svc):
    return svc.users.list()


@router.post("", response_model=NewKeyOut, status_code=201, responses=problem_responses(409))
@offload
def add_user(body: UserIn, _: Admin, svc: Svc):
    try:
        key = svc.users.add(body.name, body.role)
    except UserError as exc:
        raise ApiProblem(409, "user-exists", str(exc)) from None
    return {"name": body.name, "role": body.role, "api_key": key}


@router.delete("/{name}", status_code=204, responses=problem_responses(404))
@offload
def revoke_user(name: Annotated[str, Path(min_length=1, max_length=100)], _: Admin, svc: Svc):
    if not svc.users.revoke(name):
        raise ApiProblem(404, "user-not-found", "no active key for that user")
