"""Claims reconciliation (issue 21): a bill against the hospital's charges, the catalogue's rules and the
patient's record, as pure functions over plain inputs.

``reconcile(claim, ...)`` runs every rule and returns a :class:`Reconciliation`: ``findings`` (each a
``core.records.Finding`` with a rule id, a severity, one Chinese sentence a clerk can act on in ``message``
and the structured ``evidence``) and ``passed`` (restrictions that held, with what satisfied them: the
affirmed diagnosis, its document and sentence). Rule ids: :mod:`.billing` (bill vs charges, category totals,
duplicates) and :mod:`.restrict` (catalogue restrictions with the patient's context, limits against the stay).
The graph side (reading the inputs for a claim id, writing findings) is ``graph.reconcile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.records import Claim, Finding, HeaderKey

from .billing import ChargeIndex, charge_findings, claim_kind, duplicate_findings, setting_of
from .model import Charge, Diagnosis, Tolerance, VisitContext
from .restrict import disease_terms, item_rule_findings, map_disease
from .rulebook import RuleBook, canonical_category

__all__ = ["RULE_KINDS", "Charge", "Diagnosis", "Reconciliation", "RuleBook", "Tolerance", "VisitContext",
           "canonical_category", "disease_terms", "map_disease", "reconcile"]

RULE_KINDS: tuple[str, ...] = (
    "recon.billed_not_charged", "recon.charged_not_billed", "recon.quantity_mismatch", "recon.unit_price_mismatch",
    "recon.amount_mismatch", "recon.category_total", "recon.duplicate.same_file", "recon.duplicate.near_bill",
    "recon.duplicate.items_in_stay", "recon.restriction.sex", "recon.restriction.age", "recon.restriction.insurance",
    "recon.restriction.level", "recon.restriction.setting", "recon.restriction.specialty",
    "recon.restriction.disease", "recon.restriction.unverified", "recon.limit.quantity", "recon.limit.frequency",
    "recon.limit.course", "recon.limit.total", "recon.rule.uninterpretable",
)


@dataclass(frozen=True)
class Reconciliation:
    claim_id: str
    findings: tuple[Finding, ...]
    passed: tuple[dict, ...] = ()
    context: VisitContext | None = None
    charges: int = 0
    kind: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"claim_id": self.claim_id, "kind": self.kind, "charges": self.charges,
                "context": self.context.model_dump(mode="json") if self.context else None,
                "findings": [f.model_dump(mode="json") for f in self.findings], "passed": list(self.passed)}


def _service_day(claim: Claim, ctx: VisitContext, charges: Sequence[Charge]):
    days = sorted(c.day for c in charges if c.day is not None)
    if ctx.admitted:
        return ctx.admitted
    if days:
        return days[0]
    for key in (HeaderKey.admitted, HeaderKey.issue_date):
        f = claim.header.get(key.value)
        if f is not None and hasattr(f.value, "isoformat"):
            return f.value
    return None


def reconcile(claim: Claim, *, claim_id: str | None = None, charges: Sequence[Charge] = (),
              context: VisitContext | None = None, rulebook: RuleBook | None = None,
              others: Sequence[tuple[str, Claim]] = (), tolerance: Tolerance | None = None) -> Reconciliation:
    """Every reconciliation rule for one claim.

    ``charges``: the encounter's HIS charges; ``context``: the visit and the patient's diagnoses (when None,
    only what the bill prints); ``rulebook``: the bureau's restriction rules and dictionaries (None: no
    restriction or category-mapping rules run); ``others``: the stay's other claims as ``(claim_id, Claim)``
    (duplicates, items billed twice); ``tolerance``: defaults from ``core.settings``.
    """
    claim_id = claim_id or f"{claim.doc_id}:{claim.page}"  # graph.rows.claim_id_of's form
    tol = tolerance or Tolerance.from_settings()
    ctx = context or VisitContext()
    if ctx.setting is None and setting_of(claim):
        ctx = ctx.model_copy(update={"setting": setting_of(claim)})
    if ctx.insurance_type is None and (f := claim.header.get(HeaderKey.insurance_type.value)) is not None and f.value:
        ctx = ctx.model_copy(update={"insurance_type": str(f.value)})
    findings: list[Finding] = []
    dupes, named = duplicate_findings(claim_id, claim, others, tol)
    findings += dupes
    index = ChargeIndex(charges, tol.name_threshold) if charges else None
    findings += charge_findings(claim_id, claim, charges, rulebook, tol, others, named, index)
    passed: list[dict] = []
    if rulebook is not None:
        f, passed = item_rule_findings(claim_id, claim, ctx, rulebook, tol, index, _service_day(claim, ctx, charges))
        findings += f
    return Reconciliation(claim_id, tuple(findings), tuple(passed), ctx, len(charges), claim_kind(claim))
