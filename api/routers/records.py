"""POST /v1/records: one clinical text -> NER, assertions, relations -> the graph (synchronous)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Integration, Svc, offload
from api.problems import problem_responses
from api.schemas import RecordIn, RecordOut

router = APIRouter(tags=["records"], responses=problem_responses(401, 403, 422, 429, 503))


@router.post("/records", response_model=RecordOut, status_code=201)
@offload
def post_record(body: RecordIn, _: Integration, svc: Svc):
    return svc.records.post(body)
