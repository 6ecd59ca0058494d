"""Claims: list, read, page images, corrections under ETags, history, approve and reject."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from api.deps import Clerk, Svc, offload
from api.problems import problem_responses
from api.schemas import CLAIM_ID_PATTERN, ClaimOut, ClaimPage, ClaimPatch, Decision, HistoryEntry, ReviewStatus
from core.records import DocumentType

router = APIRouter(prefix="/claims", tags=["claims"], responses=problem_responses(401, 403, 404, 422, 429, 503))
ClaimId = Annotated[str, Path(pattern=CLAIM_ID_PATTERN, description="<document sha256>:<page>")]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=200, description="the claim's ETag")]


def _with_etag(response: Response, claim: dict) -> dict:
    response.headers["ETag"] = claim["etag"]
    return claim


@router.get("", response_model=ClaimPage)
@offload
def list_claims(*, status: ReviewStatus | None = None, needs_review: bool | None = None,
                hospital: Annotated[str | None, Query(max_length=200)] = None, doc_type: DocumentType | None = None,
                since: date | None = None, until: date | None = None,
                cursor: Annotated[str | None, Query(max_length=500)] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50, _: Clerk, svc: Svc):
    return svc.claims.list(status=status, needs_review=needs_review, hospital=hospital,
                           doc_type=doc_type.value if doc_type else None, since=since, until=until,
                           cursor=cursor, limit=limit)


@router.get("/{claim_id}", response_model=ClaimOut)
@offload
def get_claim(*, claim_id: ClaimId, response: Response, _: Clerk, svc: Svc):
    return _with_etag(response, svc.claims.get(claim_id))


@router.get("/{claim_id}/pages/{n}", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the page image, PNG"}})
@offload
def get_page(*, claim_id: ClaimId, n: Annotated[int, Path(ge=0, le=10_000)], _: Clerk, svc: Svc):
    return Response(svc.claims.page_png(claim_id, n), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.patch("/{claim_id}", response_model=ClaimOut,
              responses=problem_responses(409, 412, 428))
@offload
def correct_claim(*, claim_id: ClaimId, body: ClaimPatch, response: Response, if_match: IfMatch = None,
                  who: Clerk, svc: Svc):
    claim = svc.claims.correct(claim_id, if_match, [(c.field, c.value) for c in body.changes], body.reason, who)
    return _with_etag(response, claim)


@router.get("/{claim_id}/history", response_model=list[HistoryEntry])
@offload
def claim_history(*, claim_id: ClaimId, _: Clerk, svc: Svc):
    return svc.claims.history(claim_id)


@router.post("/{claim_id}/approve", response_model=ClaimOut, responses=problem_responses(409, 412))
@offload
def approve_claim(*, claim_id: ClaimId, body: Decision, response: Response, if_match: IfMatch = None,
                  who: Clerk, svc: Svc):
    return _with_etag(response, svc.claims.decide(claim_id, "approved", if_match, body.reason, who))


@router.post("/{claim_id}/reject", response_model=ClaimOut, responses=problem_responses(409, 412))
@offload
def reject_claim(*, claim_id: ClaimId, body: Decision, response: Response, if_match: IfMatch = None,
                 who: Clerk, svc: Svc):
    return _with_etag(response, svc.claims.decide(claim_id, "rejected", if_match, body.reason, who))
