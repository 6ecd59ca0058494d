"""A clerk's correction settles the review flags it answers (api.claims_service.correct / recheck): the field the
clerk set is confirmed by a person (needs_review False, note "corrected by <user>") unless a re-run check flags it
again, flags the earlier failing check raised on other fields go once the check passes, the claim's needs_review
column (what the list filters on) follows. The service runs on a real SQLite store; the graph write is recorded
by a stand-in (the API tests cover the graph side)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.auth import Principal, Role
from api.claims_service import ClaimService, recheck
from api.store import Database
from claims.checks import apply_report, get_field, run_checks
from claims.structure import REVIEW_BELOW
from core.records import BillField, Claim, DocumentType, FieldKind, LineItem

CLERK = Principal("clerk-ann", Role.clerk, "k1")


def amount(raw: str, name: str = "amount", confidence: float = 0.97) -> BillField:
    return BillField(name=name, value=Decimal(raw), kind=FieldKind.amount, raw=raw, confidence=confidence,
                     needs_review=confidence < REVIEW_BELOW)  # as claims.structure reads it


def misread_receipt(first: str = "130.00", first_confidence: float = 0.97) -> Claim:
    """Items 180.00 + 102.50 + 45.00 = 327.50, the first read as ``first``: the items-sum check fails."""
    items = tuple(LineItem(line_no=i + 1, name=BillField(name="name", value=f"item{i + 1}", confidence=0.99),
                           amount=amount(a, confidence=first_confidence if i == 0 else 0.97))
                  for i, a in enumerate((first, "102.50", "45.00")))
    claim = Claim(doc_id="d" * 64, doc_type=DocumentType.inpatient_e_receipt, items=items,
                  total_figures=amount("327.50", "total"),
                  total_words=BillField(name="total_words", value=Decimal("327.50"), kind=FieldKind.amount,
                                        raw="叁佰贰拾柒元伍角", confidence=0.97),
                  header={"payer": BillField(name="payer", value="张三", confidence=0.99)})
    return apply_report(claim, run_checks(claim))  # as the pipeline stores it


class RecordingGraph:
    def __init__(self):
        self.written = []

    def write(self, fn):
        class W:
            def write_claim(_, claim):
                self.written.append(claim)

            def write_claims(_, pairs):
                self.written += [c for c, _ in pairs]

        return fn(W())


@pytest.fixture
def service(tmp_path):
    return ClaimService(Database(tmp_path / "api.sqlite3"), None, RecordingGraph())


def _list_ids(service, needs_review: bool) -> list[str]:
    return [c["claim_id"] for c in service.list(needs_review=needs_review)["items"]]


def test_the_misread_receipt_starts_flagged():
    claim = misread_receipt()
    assert not run_checks(claim).all_passed
    assert get_field(claim, "items[0].amount").needs_review and get_field(claim, "total_figures").needs_review


def test_correcting_the_misread_clears_every_flag_the_failing_check_raised(service):
    [cid] = service.store_new([misread_receipt()], "test")
    assert cid in _list_ids(service, True)
    out = service.correct(cid, '"v1"', [("items[0].amount", "180.00")], "read 1 as 3", CLERK)
    first = out["items"][0]["fields"]["amount"]
    assert first["value"] == "180.00" and first["needs_review"] is False and first["note"] == "corrected by clerk-ann"
    assert not [f for f in out["findings"] if f["severity"] in ("error", "warning")], out["findings"]
    assert out["needs_review"] is False and out["total_figures"]["needs_review"] is False
    assert cid in _list_ids(service, False) and cid not in _list_ids(service, True)
    assert service.graph.written[-1].items[0].amount.needs_review is False


def test_a_correction_a_re_run_check_flags_again_stays_flagged(service):
    [cid] = service.store_new([misread_receipt()], "test")
    out = service.correct(cid, '"v1"', [("items[0].amount", "170.00")], "still wrong", CLERK)
    assert out["items"][0]["fields"]["amount"]["needs_review"] is True
    assert out["needs_review"] is True and cid in _list_ids(service, True)
    assert any(f["rule"] == "total.items_sum" and f["severity"] == "error" for f in out["findings"])
    # a second correction fixes it: the first one's field is settled now too
    out = service.correct(cid, '"v2"', [("items[0].amount", "180.00")], "now right", CLERK)
    assert out["needs_review"] is False


def test_a_low_confidence_reading_nobody_corrected_keeps_its_flag(service):
    claim = misread_receipt(first="180.00", first_confidence=0.40)  # the sum passes; the reading itself is doubtful
    [cid] = service.store_new([claim], "test")
    out = service.correct(cid, '"v1"', [("header.payer", "张三")], "name checked", CLERK)
    assert out["header"]["payer"]["needs_review"] is False
    assert out["items"][0]["fields"]["amount"]["needs_review"] is True and out["needs_review"] is True
    # the clerk confirms the doubtful amount as read: settled
    out = service.correct(cid, '"v2"', [("items[0].amount", "180.00")], "checked against the scan", CLERK)
    assert out["items"][0]["fields"]["amount"]["needs_review"] is False and out["needs_review"] is False


def test_a_confirmed_amount_is_not_flagged_as_unverified():
    claim = misread_receipt()
    fixed = claim.model_copy(update={"items": (claim.items[0].model_copy(update={"amount": BillField(
        name="amount", value=Decimal("180.00"), kind=FieldKind.amount, raw="130.00", confidence=1.0,
        needs_review=False, note="corrected by clerk-ann")}), *claim.items[1:])})
    out = recheck(fixed)
    unverified = [f for f in out.findings if f.rule == "amounts.unverified"]
    assert all("items[0].amount" not in f.detail for f in unverified)
    assert not get_field(out, "items[0].amount").needs_review
