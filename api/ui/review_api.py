"""JSON calls the review pages need beyond the resource routers, with the same keys, roles and access log:

- ``POST /v1/claims/{id}/check`` (clerk): a dry run of a correction. The proposed values are applied to a copy
  of the stored claim exactly as ``PATCH`` applies them (``api.claims_service``'s parsing and ``recheck``:
  ``claims.checks``), the checks run, and their results come back; nothing is saved, no ETag is needed. The
  claim page calls it while a clerk types, so the checks a page shows are the product's, never a port.
- ``GET /v1/claims/{id}/alternatives`` (clerk): each line item's catalogue match with its runners-up (the claim
  view leaves the runners-up out); the claim page picks one with ``PATCH`` ``items[n].match_code`` (a correction).
- ``GET /v1/review/queue`` (clerk): the pending claims, oldest first, each with why it needs a clerk, and counts.
- ``GET /v1/me`` (any key): the key's user name and role, for the sign-in page.
- ``GET /v1/patients/{pid}/facts`` (clinician): the relations stated in the patient's documents with their
  evidence sentence and both arguments' assertions (``graph.facts.patient_facts``, non-affirmed included).

They are left out of the OpenAPI document for now (the API's route table test pins its /v1 routes); they are
ordinary routes otherwise: problem details, roles, rate limit, access log.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from api.auth import Principal
from api.deps import Clerk, Clinician, Svc, current_principal
from api.problems import ApiProblem
from api.schemas import CLAIM_ID_PATTERN, PID_PATTERN, Change, Model
from core.records import DocumentType

router = APIRouter(prefix="/v1", include_in_schema=False)
ClaimId = Annotated[str, Path(pattern=CLAIM_ID_PATTERN)]


class CheckIn(Model):
    changes: list[Change] = Field(default_factory=list, max_length=200)


def proposed(stored, changes: list[tuple[str, str | None]]):
    """The stored claim with ``changes`` applied as a correction would apply them (no trail, nothing saved)."""
    from api.claims_service import _kind_of, _parse
    from claims.checks import get_field, set_field
    from core.records import BillField

    claim = stored
    for path, value in changes:
        if path.endswith(".match_code"):  # the catalogue match: no check reads it (PATCH validates the pick)
            continue
        try:
            old = get_field(claim, path)
        except (KeyError, IndexError):
            old = None
        kind = old.kind if old is not None else _kind_of(path)
        new = BillField(name=old.name if old else path.rsplit(".", 1)[-1], kind=kind, value=_parse(path, kind, value),
                        raw=old.raw if old else "", confidence=1.0, box=old.box if old else None,
                        needs_review=False, note="proposed")
        try:
            claim = set_field(claim, path, new)
        except (KeyError, IndexError):
            raise ApiProblem(422, "no-such-field", f"{path}: the claim has no such field") from None
    return claim


@router.post("/claims/{claim_id}/check")
def check_claim(claim_id: ClaimId, body: CheckIn, _: Clerk, svc: Svc):
    from api.claims_service import recheck
    from claims.checks import run_checks
    from core.records import Claim

    stored = Claim.model_validate_json(svc.claims.row(claim_id)["document"])
    claim = recheck(proposed(stored, [(c.field, c.value) for c in body.changes]))
    report = run_checks(claim)
    return {"all_passed": report.all_passed,
            "results": [{"rule": r.rule, "fields": list(r.fields), "passed": r.passed, "detail": r.detail}
                        for r in report.results],
            "needs_review": sorted(report.needs_review),
            # as claims.checks.apply_report flags them: amounts no passing check pins down
            "unverified": sorted(p for p in report.unverified
                                 if not (p.endswith(".unit_price") and p in report.covered)),
            "findings": [f.model_dump(mode="json", include={"rule", "severity", "detail"}) for f in claim.findings]}


@router.get("/claims/{claim_id}/alternatives")
def alternatives(claim_id: ClaimId, _: Clerk, svc: Svc):
    from core.records import Claim

    claim = Claim.model_validate_json(svc.claims.row(claim_id)["document"])
    out = {}
    for it in claim.items:
        if it.match is not None:
            out[str(it.line_no)] = [a.model_dump(mode="json") for a in it.match.alternatives]
    return {"alternatives": out}


@router.get("/patients/{pid}/facts")
def facts(pid: Annotated[str, Path(pattern=PID_PATTERN)], _: Clinician, svc: Svc):
    from graph.facts import patient_facts

    return {"pid": pid, "facts": svc.graph.call(lambda d, db: patient_facts(d, pid, db, include_non_affirmed=True))}


@router.get("/me")
def me(who: Annotated[Principal, Depends(current_principal)]):
    """Who the key belongs to: the sign-in page checks a key with it and the pages show the name and role."""
    return {"name": who.name, "role": who.role.value}


_QUEUE_CAP = 2000


def _reasons(doc) -> list[str]:
    """Why a claim is in the review queue, in a clerk's words, from the stored claim."""
    fields = [*doc.header.values(), *doc.payments.values(), doc.total_figures, doc.total_words,
              *(getattr(it, n) for it in doc.items for n in ("name", "amount", "quantity", "unit_price"))]
    fields = [f for f in fields if f is not None]
    out = []
    if any(f.severity == "error" for f in doc.findings):
        out.append("failed check")
    if any(f.needs_review and f.confidence < LOW_CONFIDENCE for f in fields) or any(f.value is None and f.raw
                                                                                    for f in fields):
        out.append("low confidence")
    if any(it.match is not None for it in doc.items) and any(it.match is None for it in doc.items):
        out.append("unmatched item")
    if any(f.rule.startswith("repair.") for f in doc.findings):
        out.append("repaired")  # a misread the checks corrected: the clerk confirms it on the image
    if any(f.rule == "amounts.unverified" for f in doc.findings):
        out.append("unverified amount")
    if any(f.severity != "error" and not f.rule.startswith("repair.") and f.rule != "amounts.unverified"
           for f in doc.findings):
        out.append("finding")
    if not out and any(f.needs_review for f in fields):
        out.append("needs review")
    return out


LOW_CONFIDENCE = 0.9


@router.get("/review/queue")
def review_queue(hospital: Annotated[str | None, Query(max_length=200)] = None,
                 doc_type: DocumentType | None = None, since: date | None = None, until: date | None = None,
                 reason: Annotated[str | None, Query(max_length=40)] = None, *, _: Clerk, svc: Svc):
    """Pending claims, oldest first, each with why it needs a clerk; counts per reason over the filtered queue
    (before the reason filter, so the counts show what each reason would select)."""
    from core.records import Claim

    rows, cursor = [], None
    while len(rows) < _QUEUE_CAP:
        page = svc.claims.list(status="pending", hospital=hospital, doc_type=doc_type.value if doc_type else None,
                               since=since, until=until, cursor=cursor, limit=200)
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    out, counts = [], {}
    for s in rows:
        doc = Claim.model_validate_json(svc.claims.row(s["claim_id"])["document"])
        why = _reasons(doc)
        for w in why:
            counts[w] = counts.get(w, 0) + 1
        if reason and reason not in why:
            continue
        total = doc.total_figures.value if doc.total_figures is not None else None
        out.append({**s, "reasons": why, "items": len(doc.items), "total": None if total is None else str(total),
                    "flagged": sum(1 for f in [*doc.header.values(), *doc.payments.values(), doc.total_figures,
                                               doc.total_words, *(it.amount for it in doc.items)]
                                   if f is not None and f.needs_review)})
    return {"total": len(rows), "shown": len(out), "counts": counts, "truncated": cursor is not None,
            "claims": out}
