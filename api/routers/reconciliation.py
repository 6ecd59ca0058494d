"""A claim's reconciliation against the HIS charges and the bureau's rules (role clerk): the stored findings,
and a run now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import Clerk, Svc, offload
from api.problems import problem_responses
from api.schemas import CLAIM_ID_PATTERN, Model

router = APIRouter(prefix="/claims", tags=["claims"], responses=problem_responses(401, 403, 404, 422, 429, 503))
ClaimId = Annotated[str, Path(pattern=CLAIM_ID_PATTERN, description="<document sha256>:<page>")]


class ReconciliationFinding(Model):
    finding_id: str
    rule: str
    severity: str
    detail: str | None = None
    message: str | None = None
    evidence: dict[str, Any]
    cites: list[dict[str, Any]]


class ReconciliationOut(Model):
    claim_id: str
    reconciled_at: str | None = None  # None: never reconciled
    passed: list[Any]  # restrictions that held, with the diagnosis that met them
    findings: list[ReconciliationFinding]


@router.get("/{claim_id}/reconciliation", response_model=ReconciliationOut)
@offload
def get_reconciliation(*, claim_id: ClaimId, _: Clerk, svc: Svc):
    return svc.reconcile.view(claim_id)


@router.post("/{claim_id}/reconciliation", response_model=ReconciliationOut, responses=problem_responses(409))
@offload
def run_reconciliation(*, claim_id: ClaimId, _: Clerk, svc: Svc):
    return svc.reconcile.run(claim_id)
