"""A patient's EMR view, timeline and own facts (clinicians: identifiers included, every read in the access log)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import Clinician, Svc, offload
from api.problems import problem_responses
from api.schemas import PID_PATTERN, ConceptType, EmrOut, FactsOut, TimelineOut
from core.predicates import CMEIE_PREDICATES
from core.records import Assertion

router = APIRouter(prefix="/patients", tags=["patients"], responses=problem_responses(401, 403, 404, 422, 429, 503))
Pid = Annotated[str, Path(pattern=PID_PATTERN)]
Predicate = Literal[tuple(sorted(set(CMEIE_PREDICATES.values())))]  # type: ignore[valid-type]


@router.get("/{pid}/emr", response_model=EmrOut)
async def emr(*, pid: Pid, type: Annotated[list[ConceptType] | None, Query(max_length=20)] = None,
              assertion: Annotated[list[Assertion] | None, Query(max_length=10)] = None,
              since: date | None = None, until: date | None = None, _: Clinician, svc: Svc):
    return await svc.patients.emr_async(pid, type, [a.value for a in assertion] if assertion else None, since, until)


@router.get("/{pid}/timeline", response_model=TimelineOut)
@offload
def timeline(*, pid: Pid, _: Clinician, svc: Svc):
    return svc.patients.timeline(pid)


@router.get("/{pid}/facts", response_model=FactsOut)
@offload
def facts(*, pid: Pid, type: Annotated[list[Predicate] | None, Query(max_length=20)] = None,
          include_non_affirmed: bool = False, since: date | None = None, until: date | None = None,
          _: Clinician, svc: Svc):
    """This patient's own facts: the relation statements of the patient's documents (by default only those whose
    two arguments are both affirmed), each with its sentence, document, encounter and date, and beside it
    ``knowledge_evidence``, the concept-level count over all documents (knowledge, not this patient's).
    ``include_non_affirmed=true`` adds statements with a negated, possible, historical or family argument
    (``affirmed`` false, both arguments' assertions shown)."""
    return svc.patients.facts(pid, type, include_non_affirmed, since, until)
