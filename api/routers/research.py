"""Researchers: cohorts (pseudonymised, k-suppressed) and concept neighbourhoods."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Researcher, Svc, offload
from api.problems import problem_responses
from api.schemas import CohortIn, CohortOut, ConceptOut, ConceptType

router = APIRouter(tags=["research"], responses=problem_responses(401, 403, 422, 429, 503))


@router.post("/cohorts", response_model=CohortOut)
@offload
def cohort(body: CohortIn, _: Researcher, svc: Svc):
    return svc.research.cohort([(c.type, c.name) for c in body.include], [(c.type, c.name) for c in body.exclude],
                               body.since, body.until)


@router.get("/concepts/{type}/{name}", response_model=ConceptOut, responses=problem_responses(404))
@offload
def concept(type: ConceptType, name: Annotated[str, Path(min_length=1, max_length=100)],
            _: Researcher, svc: Svc):
    return svc.research.concept(type, name)
