"""GET /v1/jobs/{job_id}: a bill job's state, progress, counts and dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Clerk, Svc, offload
from api.problems import problem_responses
from api.schemas import JOB_ID_PATTERN, JobOut

router = APIRouter(tags=["bills"], responses=problem_responses(401, 403, 404, 422, 429))


@router.get("/jobs/{job_id}", response_model=JobOut)
@offload
def get_job(job_id: Annotated[str, Path(pattern=JOB_ID_PATTERN)], _: Clerk, svc: Svc):
    return svc.jobs.get(job_id)
