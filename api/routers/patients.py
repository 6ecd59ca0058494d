"""A patient's EMR view and timeline (clinicians: identifiers included, every read in the access log)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Clinician, Svc, offload
from api.problems import problem_responses
from api.schemas import PID_PATTERN, ConceptType, EmrOut, TimelineOut
from core.records import Assertion

router = APIRouter(prefix="/patients", tags=["patients"], responses=problem_responses(401, 403, 404, 422, 429, 503))
Pid = Annotated[str, Path(pattern=PID_PATTERN)]


@router.get("/{pid}/emr", response_model=EmrOut)
async def emr(*, pid: Pid, type: Annotated[list[ConceptType] | None, Query(max_length=20)] = None,
              assertion: Annotated[list[Assertion] | None, Query(max_length=10)] = None,
              since: date | None = None, until: date | None = None, _: Clinician, svc: Svc):
    return await svc.patients.emr_async(pid, type, [a.value for a in assertion] if assertion else None, since, until)


@router.get("/{pid}/timeline", response_model=TimelineOut)
@offload
def timeline(*, pid: Pid, _: Clinician, svc: Svc):
    return svc.patients.timeline(pid)
