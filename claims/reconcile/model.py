"""The plain inputs of reconciliation: HIS charges, the visit's context, the tolerances.

A ``Charge`` is one line of the hospital's own charge record (HIS, DFT^P03 or a charges file) for an
encounter; a ``VisitContext`` is what the graph knows of the patient and the visit (sex, birth date, insurance
type, institution level, inpatient or outpatient, the stay's dates, the patient's diagnoses each with its
assertion and evidence). Both are frozen records with JSON round trips, so the graph side, the CLI and the
benchmark build them the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.records import Assertion, Record

__all__ = ["Charge", "Diagnosis", "Tolerance", "VisitContext"]


class Charge(Record):
    """One HIS charge line of an encounter. ``amount`` is what was charged; ``category`` the 费用项目 when the
    HIS sends it (else the class dictionaries map the code to one)."""

    charge_id: str
    encounter_id: str
    code: str = ""
    name: str = ""
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    amount: Decimal
    day: date | None = None
    category: str | None = None
    unit: str | None = None

    def evidence(self) -> dict:
        return {"charge_id": self.charge_id, "encounter_id": self.encounter_id, "code": self.code,
                "name": self.name, "quantity": str(self.quantity),
                "unit_price": None if self.unit_price is None else str(self.unit_price),
                "amount": str(self.amount), "day": None if self.day is None else self.day.isoformat(),
                "category": self.category}


class Diagnosis(Record):
    """A disease mentioned in the patient's record: the concept, what the text says of it (``assertion``),
    and where (document, sentence index, the sentence)."""

    name: str
    key: str = ""
    assertion: Assertion = Assertion.affirmed
    doc_id: str | None = None
    sentence: int | None = None
    evidence: str = ""
    label: str = "Disease"

    def cite(self) -> dict:
        return {"concept": self.name, "key": self.key or self.name, "label": self.label,
                "assertion": self.assertion.value, "doc_id": self.doc_id, "sentence": self.sentence,
                "evidence": self.evidence}


class VisitContext(Record):
    """What is known of the patient and the visit; ``None`` where unknown. ``records`` says whether the
    patient has any clinical record in the graph (no record: a disease restriction cannot be shown met)."""

    patient_id: str | None = None
    encounter_id: str | None = None
    sex: str | None = None  # 男 / 女
    birth_date: date | None = None
    age_years: float | None = None  # when no birth date is known (a bill's printed age)
    insurance_type: str | None = None
    institution_level: int | None = None
    setting: str | None = None  # inpatient / outpatient
    admitted: date | None = None
    discharged: date | None = None
    department: str | None = None
    diagnoses: tuple[Diagnosis, ...] = ()
    records: int = 0  # clinical documents of the patient in the graph

    def age_at(self, day: date | None) -> float | None:
        """Age in years at ``day`` (the date of service); the printed age when no birth date is known."""
        if self.birth_date is not None and day is not None:
            return (day - self.birth_date).days / 365.25
        return self.age_years

    def service_day(self) -> date | None:
        return self.admitted or self.discharged

    def days(self, charges=()) -> int | None:
        """Days of the stay, both ends counted (a daily limit may be charged on the day of admission and of
        discharge); an outpatient visit is one day; from the charges' dates when the stay's are unknown."""
        if self.admitted and self.discharged:
            return max(1, (self.discharged - self.admitted).days + 1)
        if self.setting == "outpatient":
            return 1
        days = sorted({c.day for c in charges if c.day is not None})
        return (days[-1] - days[0]).days + 1 if days else None


@dataclass(frozen=True)
class Tolerance:
    """How far a bill may differ from the charges before it is a finding (``core.settings``, MEDKG_RECONCILE_*)."""

    amount: Decimal = Decimal("0.01")
    relative: Decimal = Decimal(0)
    quantity: Decimal = Decimal(0)
    name_threshold: float = 85.0
    near_duplicate: float = 0.9
    mapping_threshold: float = 80.0

    @classmethod
    def from_settings(cls, settings=None) -> Tolerance:
        if settings is None:
            from core.settings import get_settings

            settings = get_settings()
        return cls(Decimal(str(settings.reconcile_amount_tolerance)), Decimal(str(settings.reconcile_relative_tolerance)),
                   Decimal(str(settings.reconcile_quantity_tolerance)), settings.reconcile_name_threshold,
                   settings.reconcile_near_duplicate, settings.reconcile_mapping_threshold)

    def money_differs(self, billed: Decimal, charged: Decimal) -> bool:
        return abs(billed - charged) > self.amount + self.relative * abs(charged)

    def quantity_differs(self, billed: Decimal, charged: Decimal) -> bool:
        return abs(billed - charged) > self.quantity


def periods(days: int, period_days: int) -> int:
    return max(1, math.ceil(days / period_days))
