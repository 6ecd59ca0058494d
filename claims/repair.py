"""Single-character (and lost decimal point) repair of misread amounts, accepted only when the bill's own checks
prove it.

Why so strict: a wrong amount that looks right is worse than a flagged one. A repair is a guess, so it
is accepted only when the checks leave no choice:

1. Failing (or unverifiable) checks are grouped into components that share fields. For every numeric
   field in a component, every candidate reading is tried: each digit replaced by the nine others, each
   look-alike (O→0, l/I→1, S→5, B→8, 。→. …) mapped; for the total in words each character replaced by
   each financial digit and each look-alike (参→叁, 佰←伯 …).
2. A candidate *satisfies* when every check its field takes part in passes and every check of the
   component passes, with nothing else changed.
3. The repair is accepted only when exactly ONE (field, value) in the whole component satisfies, and the
   repaired value is corroborated: two passing checks involve its field (two independent computations
   agree), or its one check has every other field vouched for by a passing check that does not involve
   it. So words against figures alone never repairs either side; a digit of an item of a category grid
   (whose only check is the sum, shared with every other unvouched item) is never changed, because with
   two misreads one compensating single-digit change would look unique; quantities and unit prices (one
   check, with rounding slack) are never repaired. Folding look-alikes alone (1O2.50 → 102.50) picks no
   digit, so one passing check that pins the field is enough for it. A lost decimal point (660356 for
   6603.56) moves a value by 99/100 of itself, to the cent, which no second misread mimics: for it a sum of
   unpinned items is enough when the sum's total is pinned by a check without the item.
4. A field a passing check pins is no suspect: failing checks that share only such a field are separate
   components (a payment split that fails on its own does not block the items' sum).

The repaired field keeps what was printed in ``raw``; its ``note`` says it was repaired and why.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from core.records import BillField, Claim, FieldKind, Finding

from .checks import (
    Check,
    LinearCheck,
    _residual,
    apply_report,
    build_checks,
    field_values,
    get_field,
    run_checks,
    set_field,
)
from .numerals import AmountError, NumeralError, parse_amount, parse_financial

__all__ = ["Repair", "candidates", "repair_claim", "verify_claim", "zero_unread_payments"]

FIGURE_LOOKALIKES = {"O": "0", "o": "0", "D": "0", "Q": "0", "〇": "0", "l": "1", "I": "1", "|": "1", "i": "1",
                     "Z": "2", "z": "2", "S": "5", "s": "5", "G": "6", "b": "6", "B": "8", "g": "9", "q": "9",
                     "。": ".", "，": ".", ",": ".", "·": "."}
WORD_LOOKALIKES = {"参": "叁", "叄": "叁", "武": "贰", "肄": "肆", "染": "柒", "玫": "玖", "伯": "佰", "任": "仟",
                   "恰": "拾", "抬": "拾", "园": "圆", "无": "元", "政": "玖", "集": "柒"}
_DIGITS = "0123456789"
_CENT = Decimal("0.01")
_WORD_DIGITS = "零壹贰叁肆伍陆柒捌玖"


@dataclass(frozen=True)
class Repair:
    path: str
    read: str  # what OCR read
    text: str  # the repaired reading
    value: Decimal
    how: str  # "1 digit" or "look-alike O→0"
    checks: tuple[str, ...]  # the rules that prove it

    @property
    def note(self) -> str:
        return (f"repaired: {self.how}, unique candidate satisfying all checks "
                f"(read {self.read!r} as {self.text!r}; {', '.join(self.checks)})")


def candidates(text: str, *, words: bool = False) -> dict[str, str]:
    """Every reading of ``text`` one character away (plus look-alikes folded), → how it differs."""
    out: dict[str, str] = {}
    if words:
        for i, ch in enumerate(text):
            for new in _WORD_DIGITS + WORD_LOOKALIKES.get(ch, ""):
                if new != ch:
                    out.setdefault(text[:i] + new + text[i + 1:], f"1 character {ch}→{new}")
        return out
    folded = "".join(FIGURE_LOOKALIKES.get(ch, ch) for ch in text)
    bases = {text: ""}
    if folded != text:
        looks = sorted({f"{a}→{FIGURE_LOOKALIKES[a]}" for a in text if a in FIGURE_LOOKALIKES})
        bases[folded] = "look-alike " + " ".join(looks)
        out[folded] = bases[folded]
    for base, prefix in bases.items():
        for i, ch in enumerate(base):
            d = unicodedata.normalize("NFKC", ch)
            if d in _DIGITS:
                subs = {n: f"1 digit {ch}→{n}" for n in _DIGITS if n != d}
            elif ch in FIGURE_LOOKALIKES:
                subs = {FIGURE_LOOKALIKES[ch]: f"look-alike {ch}→{FIGURE_LOOKALIKES[ch]}"}
            else:
                continue
            for new, how in subs.items():
                out.setdefault(base[:i] + new + base[i + 1:], f"{prefix} and {how}" if prefix else how)
    out.update({t: how for t, how in _point_candidates(folded).items() if t not in out})
    out.pop(text, None)
    return out


LOST_POINT = "a lost decimal point"


def _point_candidates(figures: str) -> dict[str, str]:
    """Readings of an amount whose decimal point the OCR lost (660356 for 6603.56; under a stamp, or a faint
    dot-matrix dot), perhaps with a digit of the cents read twice (172255 for 172.25). Only there: dropping
    any other digit changes the value by a round amount, or by a cent or two, which one more misread
    elsewhere can mimic (measured in tests/test_claims_checks.py)."""
    if not (figures.isascii() and figures.isdigit() and len(figures) >= 3):
        return {}
    out = {figures[:-k] + "." + figures[-k:]: LOST_POINT for k in (2, 1)}
    for i in range(max(1, len(figures) - 2), len(figures)):
        rest = figures[:i] + figures[i + 1:]
        if figures[i] == figures[i - 1] and len(rest) >= 3:
            out.setdefault(rest[:-2] + "." + rest[-2:], f"{LOST_POINT} and a {figures[i]} read twice")
    return out


def _reading(field: BillField) -> str:
    if field.raw:
        return field.raw
    if isinstance(field.value, Decimal):
        return f"{field.value}"
    return field.value if isinstance(field.value, str) else ""


def _parse(text: str, words: bool) -> Decimal | None:
    try:
        return parse_financial(text) if words else parse_amount(text)
    except (AmountError, NumeralError):
        return None


def _components(checks: list[Check], pinned: set[str]) -> list[list[Check]]:
    """Failing checks grouped by the suspect fields they share. A field a passing check pins is no suspect,
    so two checks that share only it fail for reasons of their own (a total proved by its words links
    neither the items' sum nor the payment split to the other)."""
    groups: list[tuple[set[str], list[Check]]] = []
    for c in checks:
        fields, members = set(c.fields) - pinned, [c]
        for g in [g for g in groups if g[0] & fields]:
            groups.remove(g)
            fields |= g[0]
            members += g[1]
        groups.append((fields, members))
    return [m for _, m in groups]


def _corroborated(path: str, passing: list[Check], values, how: str) -> bool:
    """Two passing checks pin ``path`` (two independent computations agree), or one does and every
    other field it involves is pinned by a passing check that does not involve ``path``. Folding
    look-alikes (O→0) chooses no digit, so one pinning check is enough for it. A lost decimal point
    moves a value by 9/10 or 99/100 of itself, to the cent: no other misread mimics that, so a sum of
    unpinned items is enough when its total is pinned without ``path``."""
    mine = [c for c in passing if path in c.vouches(values)]
    if how.startswith("look-alike") and "digit" not in how:
        return bool(mine)
    vouched = {p for c in passing if path not in c.fields for p in c.vouches(values)}
    if how.startswith(LOST_POINT):
        return any({p for p in c.fields if not p.startswith("items[")} - {path} <= vouched for c in mine)
    if len(mine) != 1:
        return len(mine) >= 2
    return set(mine[0].fields) - {path} <= vouched


def repair_claim(claim: Claim) -> tuple[Claim, tuple[Repair, ...]]:
    """Apply every single-character repair the checks prove; return the claim and what was repaired."""
    checks = list(build_checks(claim))
    values = field_values(claim)
    failing = [c for c in checks if c.evaluate(values) is not True]
    pinned = {p for c in checks if c.evaluate(values) is True for p in c.vouches(values)}
    by_field: dict[str, list[Check]] = defaultdict(list)
    for c in checks:
        for p in c.fields:
            by_field[p].append(c)
    repairs: list[Repair] = []
    for component in _components(failing, pinned):
        hits: dict[tuple[str, Decimal], Repair | None] = {}
        for path in dict.fromkeys(p for c in component for p in c.fields):
            field = get_field(claim, path)
            read = _reading(field)
            words = path == "total_words"
            involved = list(dict.fromkeys([*by_field[path], *component]))
            for text, how in candidates(read, words=words).items():
                value = _parse(text, words)
                if value is None or value == values[path] or (path, value) in hits:
                    continue
                trial = {**values, path: value}
                if all(c.evaluate(trial) is True for c in involved):
                    passing = [c for c in checks if c.evaluate(trial) is True]
                    if _corroborated(path, passing, trial, how):
                        rules = tuple(c.rule for c in by_field[path])
                        hits[(path, value)] = Repair(path, read, text, value, how, rules)
                    else:
                        hits[(path, value)] = None  # satisfies, but nothing corroborates: blocks others too
        if len(hits) == 1:
            (repair,) = hits.values()
            if repair is not None:
                repairs.append(repair)
    for r in repairs:
        f = get_field(claim, r.path)
        kind = FieldKind.amount if f.kind is FieldKind.text else f.kind
        value = r.value.quantize(_CENT) if r.value == r.value.quantize(_CENT) else r.value  # 6393.170: to the cent
        claim = set_field(claim, r.path, f.model_copy(update={"value": value, "kind": kind,
                                                              "needs_review": False, "note": r.note}))
    return claim, tuple(repairs)


def zero_unread_payments(claim: Claim) -> tuple[Claim, tuple[str, ...]]:
    """A payment whose label was read with no readable figure beside it (a lone 0 the detector missed, or the
    next label taken for its value) is 0 when a payment identity already holds without it: payments are never
    negative, so what the identity leaves for the unread terms of one sign is exactly 0 each. Its flag is kept:
    the 0 is inferred, not read. Returns the claim and the paths set to 0."""
    values = field_values(claim)
    zeroed: dict[str, str] = {}
    for check in build_checks(claim):
        if not isinstance(check, LinearCheck) or not check.rule.startswith("payment."):
            continue
        for alt in check.alternatives:
            unread = [(p, s) for p, s in alt if values[p] is None]
            if (unread and all(p.startswith("payments.") for p, _ in unread) and len({s for _, s in unread}) == 1
                    and _residual(alt, values | {p: Decimal(0) for p, _ in unread}) == 0):
                zeroed.update({p: check.rule for p, _ in unread})
                values.update({p: Decimal(0) for p, _ in unread})
                break
    for path, rule in zeroed.items():
        f = get_field(claim, path)
        note = f"nothing readable beside its label (read {f.raw!r}); {rule} holds without it, so it is 0"
        claim = set_field(claim, path, f.model_copy(update={"value": Decimal("0.00"), "kind": FieldKind.amount,
                                                            "note": "; ".join(x for x in (f.note, note) if x)}))
    return claim, tuple(zeroed)


def verify_claim(claim: Claim, *, repair: bool = True, review_unverified: bool = True) -> Claim:
    """Repair what the checks prove, run the checks, mark fields for review and record the findings."""
    repairs: tuple[Repair, ...] = ()
    zeroed: tuple[str, ...] = ()
    if repair:
        claim, zeroed = zero_unread_payments(claim)
        claim, repairs = repair_claim(claim)
    report = run_checks(claim)
    claim = apply_report(claim, report, review_unverified=review_unverified)
    extra = tuple(Finding(rule="repair.single_character", severity="info", detail=f"{r.path}: {r.note}")
                  for r in repairs)
    extra += tuple(Finding(rule="repair.unread_payment_zero", severity="info", detail=f"{p}: {get_field(claim, p).note}")
                   for p in zeroed)
    return claim.model_copy(update={"findings": claim.findings + extra})
