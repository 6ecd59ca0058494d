"""Bills into claims on the REAL development set: OCR + structuring + checks on the 20 real scans and photos
of ``../shared/data/bills/real`` (read in place, never copied), scored against our own transcriptions
(``benchmarks/real_bills/transcriptions.json``, keyed by NAME, the image's stem) and the shared human field labels
(``labels/NAME.json``). Prints one JSON
object and saves it to ``benchmarks/results/bills_real.json``.

    .venv/bin/python benchmarks/bills_real.py [--detail] [--cached] [--only NAME ...] [--register FILE]
                                              [--capture HOW ...]

``--register FILE`` adds a bureau's hospital register (``claims.hospitals``, as ``MEDKG_HOSPITAL_REGISTER`` does)
and saves to ``benchmarks/results/bills_real_register.json`` instead: the headline figures are without one.
``benchmarks/real_bills/register.csv`` is such a register: 81 real hospitals (every hospital of the 20 bills and
the hospitals around them: their cities' and universities' other hospitals) among 1,866 generated names in
families a character or two apart (``ocr.synth`` places × kinds of hospital).

``--capture HOW ...`` reads the *tuning* part again as captured other ways (``benchmarks/captures.py``: grey scan,
small crop, strong JPEG, tinted paper, faded print, turned a little, phone photo, a reimbursement stamp,
identifiers painted white), beside as scanned, and saves to ``benchmarks/results/bills_real_captures.json``: how
the untouched part's captures may break a reading, found without looking at it.

The split (``benchmarks/real_bills/README.md``): a bill is in the *untouched* part when the first hex digit of
``md5(NAME)`` is a-f, else in the *tuning* part. The tuning part is reported per bill and overall; the untouched
part only in aggregate, unless ``--detail`` (never used while developing).

What is counted, per receipt on an image (an image may hold several; claims are paired with transcribed
receipts one to one, by the most items in common, then by equal totals):

- Line items: a predicted item is right when its name and its amount both equal those of a transcribed item
  not yet matched: names NFKC without white space (``claims.evaluate.norm_text``), amounts as ``Decimal``.
  Precision / recall / F1 over all items of the part; items of claims paired with no receipt count as
  predicted (wrong) items.
- Header fields, against the shared human labels (MeDocVL keys, mapped in ``LABEL_HEADER``; where our own
  transcription of the image gives the same field and disagrees, the image wins, as the README says; a
  label ``(masked)`` is not counted): a field the label gives a value counts once, right when the claim's value equals it (text NFKC without spaces, dates
  as dates, amounts as ``Decimal``, 住院天数 as a number). A label ``无`` (absent on the form) is not counted;
  a claim that nonetheless gives a value there is reported as ``spurious_fields`` (not in the accuracy). The
  three bills without labels count no header fields.
- Payment fields: the labels' payment keys (``LABEL_PAYMENTS``) where the bill has labels, else our own
  transcription's ``payments``; counted as header fields are.
- Totals: the total in figures is *right* (claim's value equals the transcription), *flagged* (wrong or
  missing, and the field or the claim says ``needs_review`` / has a blocking finding) or *wrong* (a confident
  wrong or missing total: must be 0).
- Wrong amounts not flagged: an item amount no transcribed item has, a total or a payment whose value
  differs from the transcription, with ``needs_review`` False. Must be 0.
- OCR character accuracy on the transcribed ``lines``: each printed line is aligned to the best-matching
  stretch of one OCR line (``rapidfuzz`` partial alignment) and its edit distance counted; accuracy is
  1 - errors / characters.

OCR pages may be cached (``--cached``) under ``~/.cache/medkg/bills_real`` keyed by the image's sha256 and the
OCR configuration, the models' weights included; the default run reads every image afresh (a real end-to-end run)
and refreshes the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, this folder would shadow the `ocr` package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import hashlib
import json
import os
import platform
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from benchmarks.captures import CAPTURES, known
from benchmarks.captures import capture as recapture
from claims.evaluate import checks_pass, norm_text
from claims.numerals import NumeralError, parse_financial
from core.records import BillField, Claim, FieldKind, Page

ROOT = Path(os.environ.get("MEDKG_BILLS_REAL_ROOT", Path(__file__).resolve().parents[1]))
# our transcriptions, one file keyed by NAME (the image's stem): no tracked file is named like a shared image or label
TRANSCRIPTIONS = ROOT / "benchmarks" / "real_bills" / "transcriptions.json"
REAL_DIR = ROOT.parent / "shared" / "data" / "bills" / "real"
RESULT = ROOT / "benchmarks" / "results" / "bills_real.json"
CAPTURE_RESULT = RESULT.with_name("bills_real_captures.json")
CAPTURES_CODE = hashlib.sha256(Path(__file__).with_name("captures.py").read_bytes()).hexdigest()[:16]
CACHE_DIR = Path(os.environ.get("MEDKG_BILLS_REAL_CACHE", Path.home() / ".cache" / "medkg" / "bills_real"))

_D, _A, _T, _N = FieldKind.date, FieldKind.amount, FieldKind.text, FieldKind.number
# MeDocVL label → (where in the claim, key, kind). Keys with no place in a Claim (标题, 省市, 税或非税, 分类自付 …)
# are not counted; they are listed under "unmapped_label_keys" once.
LABEL_HEADER: dict[str, tuple[str, str, FieldKind]] = {
    "票据代码": ("header", "bill_code", _T),
    "发票号": ("header", "bill_no", _T),
    "校验码": ("header", "check_code", _T),
    "开票日期": ("header", "issue_date", _D),
    "交款人": ("header", "payer", _T),
    "就诊时间": ("header", "visit_date", _D),
    "住院号": ("header", "inpatient_no", _T),
    "入院时间": ("header", "admitted", _D),
    "出院日期": ("header", "discharged", _D),
    "住院天数": ("header", "stay_days", _N),
    "医院名称": ("header", "hospital", _T),
    "医保类型": ("header", "insurance_type", _T),
    "合计金额小写": ("total", "total_figures", _A),
    "大写金额": ("total", "total_words", _A),
}
LABEL_PAYMENTS: dict[str, str] = {
    "医保统筹基金支付": "fund",
    "个人自付": "self_pay",
    "个人自费": "self_expense",
    "其他支付": "other_fund",
    "个人账户支付": "account",
    "个人现金支付": "cash",
    "大病保险支付": "critical_illness",
}
ABSENT = "无"


def transcriptions(names: list[str] | None = None) -> dict[str, dict]:
    """Our transcription of each real bill by NAME, in name order (only ``names`` when given)."""
    every = json.loads(TRANSCRIPTIONS.read_text(encoding="utf-8"))
    return {name: every[name] for name in sorted(every) if not names or name in names}


def part_of(name: str) -> str:
    """The split, fixed once (benchmarks/real_bills/README.md): md5(NAME)'s first hex digit a-f → untouched."""
    return "untouched" if hashlib.md5(name.encode()).hexdigest()[0] in "abcdef" else "tuning"


# ---------------------------------------------------------------------------------------------------------
# Values


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    text = "".join(unicodedata.normalize("NFKC", str(value)).split()).replace(",", "").lstrip("¥$:").rstrip("元")
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return None


def _words(value: str) -> Decimal | None:
    try:
        return parse_financial(value)
    except (NumeralError, ValueError):
        return _decimal(value)


def _date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", str(value))
    digits = "".join(ch for ch in text if ch.isdigit())
    parts = "".join(ch if ch.isdigit() else " " for ch in text).split()
    try:
        if len(parts) >= 3:
            return date(*map(int, parts[:3]))
        if len(digits) == 8:
            return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    return None


def _number(value: object) -> Decimal | None:
    text = unicodedata.normalize("NFKC", str(value))
    num = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    return _decimal(num) if num else None


def normal(kind: FieldKind, value: object, *, words: bool = False) -> object:
    if value is None:
        return None
    if kind is _D:
        return _date(value)
    if kind is _A:
        return _words(str(value)) if words and not isinstance(value, Decimal) else _decimal(value)
    if kind is _N:
        return _number(value)
    return norm_text(value) or None


def flagged(f: BillField | None, claim: Claim) -> bool:
    """The field, or the claim as a whole, asks for a reviewer."""
    return (f is not None and f.needs_review) or not checks_pass(claim)


# ---------------------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Score:
    items_tp: int = 0
    items_pred: int = 0
    items_true: int = 0
    header_ok: int = 0
    header_n: int = 0
    payment_ok: int = 0
    payment_n: int = 0
    totals: Counter = field(default_factory=Counter)  # right / flagged / wrong
    wrong_unflagged: list[str] = field(default_factory=list)
    wrong_flagged: int = 0
    ocr_errors: int = 0
    ocr_chars: int = 0
    field_errors: list[str] = field(default_factory=list)
    spurious_fields: list[str] = field(default_factory=list)
    missed_items: list[str] = field(default_factory=list)
    extra_items: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("items_tp", "items_pred", "items_true", "header_ok", "header_n", "payment_ok", "payment_n",
                     "wrong_flagged", "ocr_errors", "ocr_chars"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.totals.update(other.totals)
        for name in ("wrong_unflagged", "field_errors", "spurious_fields"):
            getattr(self, name).extend(getattr(other, name))

    def summary(self, detail: bool = True) -> dict:
        p = self.items_tp / self.items_pred if self.items_pred else float(self.items_true == 0)
        r = self.items_tp / self.items_true if self.items_true else 1.0
        out = {
            "item_precision": round(p, 4), "item_recall": round(r, 4),
            "item_f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "items": {"correct": self.items_tp, "predicted": self.items_pred, "expected": self.items_true},
            "header_accuracy": round(self.header_ok / self.header_n, 4) if self.header_n else None,
            "header_fields": self.header_n,
            "payment_accuracy": round(self.payment_ok / self.payment_n, 4) if self.payment_n else None,
            "payment_fields": self.payment_n,
            "totals": {k: self.totals.get(k, 0) for k in ("right", "flagged", "wrong")},
            "wrong_amounts_not_flagged": len(self.wrong_unflagged),
            "wrong_amounts_flagged": self.wrong_flagged,
            "ocr_char_accuracy": round(1 - self.ocr_errors / self.ocr_chars, 4) if self.ocr_chars else None,
            "ocr_chars": self.ocr_chars,
        }
        if detail:
            out |= {"field_errors": self.field_errors, "spurious_fields": self.spurious_fields,
                    "wrong_amounts_not_flagged_where": self.wrong_unflagged,
                    "missed_items": self.missed_items, "extra_items": self.extra_items}
        else:
            out["field_errors"] = dict(Counter(e.split(":")[0] for e in self.field_errors).most_common())
        return out


def _claim_field(claim: Claim, where: str, key: str) -> BillField | None:
    if where == "total":
        return getattr(claim, key)
    return (claim.payments if where == "payments" else claim.header).get(key)


def _item_pairs(items) -> Counter:
    return Counter((norm_text(i["name"]), _decimal(i["amount"])) for i in items)


def _pred_pairs(claim: Claim) -> Counter:
    return Counter((norm_text(i.name.value or ""), normal(_A, i.amount.value)) for i in claim.items)


def pair_claims(claims: list[Claim], receipts: list[dict]) -> list[tuple[dict | None, Claim | None]]:
    """Claims paired with transcribed receipts one to one: most items in common first, then equal totals."""
    scores = []
    for ci, c in enumerate(claims):
        pred = _pred_pairs(c)
        got_total = normal(_A, c.total_figures.value) if c.total_figures else None
        for ri, r in enumerate(receipts):
            common = sum((pred & _item_pairs(r["items"])).values())
            same_total = got_total is not None and got_total == _decimal(r.get("total_figures"))
            scores.append((common, same_total, -abs(ci - ri), ci, ri))
    pairs, used_c, used_r = [], set(), set()
    for common, same_total, _, ci, ri in sorted(scores, reverse=True):
        if ci in used_c or ri in used_r:
            continue
        if common == 0 and not same_total and not (len(claims) == 1 and len(receipts) == 1):
            continue
        pairs.append((receipts[ri], claims[ci]))
        used_c.add(ci)
        used_r.add(ri)
    pairs += [(r, None) for ri, r in enumerate(receipts) if ri not in used_r]
    pairs += [(None, c) for ci, c in enumerate(claims) if ci not in used_c and c.items]
    return pairs


def score_receipt(receipt: dict | None, claim: Claim | None, labels: dict | None, name: str) -> Score:
    s = Score()
    if receipt is None:  # a claim for no transcribed receipt: its items are wrong, its amounts unflagged count
        for i in claim.items:
            s.items_pred += 1
            s.extra_items.append(f"{i.name.value} {i.amount.value}")
            if not (i.amount.needs_review or not checks_pass(claim)):
                s.wrong_unflagged.append(f"{name}: extra claim item {i.name.value}")
        return s
    truth = _item_pairs(receipt["items"])
    pred = _pred_pairs(claim) if claim is not None else Counter()
    s.items_true, s.items_pred = sum(truth.values()), sum(pred.values())
    s.items_tp = sum((truth & pred).values())
    s.missed_items = [f"{n} {a}" for n, a in (truth - pred).elements()]
    s.extra_items = [f"{n} {a}" for n, a in (pred - truth).elements()]
    # wrong item amounts: amounts no transcribed item has (a multiset; unflagged ones take the true values first)
    if claim is not None:
        remaining = Counter(a for _, a in truth.elements())
        for item in sorted(claim.items, key=lambda i: i.amount.needs_review):
            value = normal(_A, item.amount.value)
            if value is not None and remaining[value] > 0:
                remaining[value] -= 1
                continue
            if flagged(item.amount, claim) or value is None:
                s.wrong_flagged += 1
            else:
                s.wrong_unflagged.append(f"{name}: items[{item.line_no}].amount {item.amount.raw!r}")
    # the total
    true_total = _decimal(receipt.get("total_figures"))
    got = claim.total_figures if claim is not None else None
    value = normal(_A, got.value) if got is not None else None
    if true_total is not None:
        if value == true_total:
            s.totals["right"] += 1
        elif claim is not None and flagged(got, claim):
            s.totals["flagged"] += 1
        else:
            s.totals["wrong"] += 1
    # amounts compared with our transcription: totals and payments
    if claim is not None:
        checks = [("total_figures", got, true_total),
                  ("total_words", claim.total_words, _words(receipt["total_words"]) if receipt.get("total_words") else None)]
        checks += [(f"payments.{k}", claim.payments.get(k), _decimal(v)) for k, v in receipt.get("payments", {}).items()]
        for where, f, truth_value in checks:
            if f is None or truth_value is None:
                continue
            if normal(_A, f.value) != truth_value:
                if flagged(f, claim):
                    s.wrong_flagged += 1
                else:
                    s.wrong_unflagged.append(f"{name}: {where} {f.raw!r} (truth {truth_value})")
    # header and payment fields
    if labels is not None:
        ours = {("header", k): v for k, v in receipt.get("header", {}).items()}
        ours |= {("payments", k): v for k, v in receipt.get("payments", {}).items()}
        ours |= {("total", k): receipt[k] for k in ("total_figures", "total_words") if receipt.get(k)}
        for key, value in labels.items():
            if str(value).startswith("(masked"):
                continue  # painted over on the image: nothing to read
            if key in LABEL_HEADER:
                where, ckey, kind = LABEL_HEADER[key]
                value = _image_wins(value, ours.get((where, ckey)), kind, key == "大写金额")
                _field(s, "header", claim, where, ckey, kind, value, key, words=key == "大写金额")
            elif key in LABEL_PAYMENTS:
                value = _image_wins(value, ours.get(("payments", LABEL_PAYMENTS[key])), _A, False)
                _field(s, "payment", claim, "payments", LABEL_PAYMENTS[key], _A, value, key)
    else:
        for ckey, value in receipt.get("payments", {}).items():
            _field(s, "payment", claim, "payments", ckey, _A, value, ckey)
    # OCR character accuracy is added by the caller (it reads the page, not the claim)
    return s


def _image_wins(label: str, ours: str | None, kind: FieldKind, words: bool) -> str:
    """Where our transcription of the image gives the field and disagrees with the label, the image
    wins (benchmarks/real_bills/README.md; the file's notes say why)."""
    if ours is None or str(label).strip() == ABSENT:
        return label
    return label if normal(kind, label, words=words) == normal(kind, ours, words=words) else ours


def _field(s: Score, group: str, claim: Claim | None, where: str, key: str, kind: FieldKind, value: str,
           label: str, *, words: bool = False) -> None:
    got = _claim_field(claim, where, key) if claim is not None else None
    if str(value).strip() == ABSENT:
        if got is not None and got.value not in (None, ""):
            s.spurious_fields.append(f"{label}: {got.value}")
        return
    truth = normal(kind, value, words=words)
    ok = got is not None and truth is not None and normal(kind, got.value) == truth
    setattr(s, f"{group}_n", getattr(s, f"{group}_n") + 1)
    if ok:
        setattr(s, f"{group}_ok", getattr(s, f"{group}_ok") + 1)
    else:
        s.field_errors.append(f"{label}: got {None if got is None else got.value!s} want {value}")


def ocr_accuracy(pages: list[Page], lines: list[str]) -> tuple[int, int]:
    """(errors, characters) of the transcribed printed lines against the OCR's lines."""
    return texts_accuracy([line.text for p in pages for line in p.lines], lines)


def texts_accuracy(texts: list[str], lines: list[str]) -> tuple[int, int]:
    """:func:`ocr_accuracy` of bare recognised texts (one per line or crop)."""
    ocr = [norm_text(t) for t in texts]
    errors = chars = 0
    for want in (norm_text(x) for x in lines):
        if not want:
            continue
        best = len(want)
        for got in ocr:
            if not got:
                continue
            if len(got) <= len(want):
                best = min(best, Levenshtein.distance(want, got))
            else:
                al = fuzz.partial_ratio_alignment(want, got)
                if al is not None:
                    lo, hi = al.dest_start, al.dest_end
                    # allow the aligned stretch to grow or shrink by the characters the alignment may have cut
                    for a in range(max(0, lo - 2), lo + 3):
                        for b in range(max(a + 1, hi - 2), min(len(got), hi + 2) + 1):
                            best = min(best, Levenshtein.distance(want, got[a:b]))
            if best == 0:
                break
        errors += best
        chars += len(want)
    return errors, chars


def skip_without_real_bills(benchmark: str) -> bool:
    """True, having printed the benchmark's ``skipped`` object, when the real bills are not on this machine."""
    if REAL_DIR.is_dir():
        return False
    print(json.dumps({"benchmark": benchmark, "skipped": f"real bills not found at {REAL_DIR}"}))
    return True


def publish(out: dict, result: Path, save: bool) -> None:
    """Print the benchmark's object; keep a copy in benchmarks/results unless told not to."""
    text = json.dumps(out, ensure_ascii=False, indent=1)
    print(text)
    if save:
        result.write_text(text + "\n")


def tuning_crops(engine):
    """(name, transcribed printed lines, the engine's own crops) for each real bill of the *tuning* part: detection,
    orientation and cropping as the product does them, so that variants run on them differ in recognition only."""
    from ocr.errors import Deadline
    from ocr.readers import read_pages

    for name, truth in transcriptions().items():
        if part_of(name) != "tuning":
            continue
        lines = [line for r in truth["receipts"] for line in r.get("lines", [])]
        page = read_pages(REAL_DIR / truth["image"])[0]
        yield name, lines, engine._detect_and_orient(page.image, Deadline(600, name)).crops


# ---------------------------------------------------------------------------------------------------------
# OCR with an optional cache


def ocr_config(engine) -> dict:
    try:
        from ocr.pipeline import PREPARE_VERSION  # the page preparation recipe is part of the cache key
    except ImportError:
        PREPARE_VERSION = "plain/1"

    try:
        from ocr.stamps import VERSION as UNDER_SEALS_VERSION
    except ImportError:
        UNDER_SEALS_VERSION = None

    try:
        from ocr.recognize import DECODE_VERSION  # what a page's lines carry (runner-ups) is part of the key too
    except ImportError:
        DECODE_VERSION = "greedy-ctc/1"

    s = engine.settings
    m = engine.models
    # the weights themselves: a model rebuilt by `medkg models prepare` (say, calibrated anew) reads differently
    weights = {t: _weights_sha(getattr(m, t)) for t in ("det", "cls", "rec")}
    return {"generation": s.ocr_models, "version": m.version, "precision": m.rec.executes,
            "det_max_side": s.ocr_det_max_side, "det_fine_max_side": s.ocr_det_fine_max_side,
            "prepare": PREPARE_VERSION, "decode": DECODE_VERSION, "weights": weights, "seals": s.ocr_seals,
            # named only when on, so pages read without it keep the keys they were cached under before it existed
            **({"under_seals": UNDER_SEALS_VERSION} if getattr(s, "ocr_under_seals", False) and s.ocr_seals else {})}


def _weights_sha(model) -> str | None:
    path = getattr(model, "path", None)
    if path is None:
        return None
    return hashlib.sha256(Path(path).with_suffix(".bin").read_bytes()).hexdigest()[:16]


def cached_pages(engine, content: str, stem: str, read, *, use_cache: bool, cache_dir: Path = CACHE_DIR
                 ) -> tuple[list[Page], bool]:
    """Pages OCR'd by ``read()``, kept under ``cache_dir`` by ``content`` (a digest of what is read) and the OCR
    configuration, so another image or another OCR is read afresh; with ``use_cache`` a kept reading is returned
    instead. The second value says whether it came from the cache."""
    key = hashlib.sha256((content + json.dumps(ocr_config(engine), sort_keys=True)).encode()).hexdigest()[:24]
    cached = cache_dir / f"{stem}-{key}.json"
    if use_cache and cached.is_file():
        return [Page.model_validate(p) for p in json.loads(cached.read_text())], True
    pages = read()
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps([p.model_dump(mode="json") for p in pages], ensure_ascii=False))
    return pages, False


def read_image(engine, path: Path, sha: str, *, use_cache: bool, capture: str | None = None
               ) -> tuple[list[Page], float, bool]:
    """The image's OCR'd pages (captured again as ``capture``, ``benchmarks.captures``), seconds spent, and whether
    they came from the cache."""
    from ocr.readers import read_pages

    def read():
        images = read_pages(path)
        if capture is not None:
            # masks go where the scan's own OCR found identifiers
            scanned = read_image(engine, path, sha, use_cache=True)[0] if "masked" in capture.split("+") else None
            images = [replace(im, image=recapture(im.image, capture, path.stem, scanned[k].lines if scanned else ()))
                      for k, im in enumerate(images)]
        return engine.read(images, doc_id=path.stem)

    start = time.perf_counter()
    # captures are deterministic per bill and per version of their code
    content = sha if capture is None else f"{sha}:capture:{capture}:{CAPTURES_CODE}"
    pages, hit = cached_pages(engine, content, path.stem, read, use_cache=use_cache)
    return pages, 0.0 if hit else time.perf_counter() - start, hit


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------------------


def run(names: list[str] | None = None, *, use_cache: bool = False, detail: bool = False,
        register: Path | None = None, capture: str | None = None) -> dict:
    try:
        from claims.document import structure_image
    except ImportError:  # before receipts were found one by one (a baseline run of an older checkout)
        from claims.structure import structure_page

        def structure_image(page):
            return [structure_page(page)]
    from core.settings import get_settings
    from ocr.pipeline import OcrEngine

    settings = get_settings()
    engine = OcrEngine.load(settings=settings)
    bureau = None
    if register is not None:
        from claims.bureau import load_register, with_bureau_data

        hospitals = load_register(str(register))

        def bureau(claims):
            return with_bureau_data(claims, register=hospitals)
    parts: dict[str, Score] = {"tuning": Score(), "untouched": Score()}
    per_bill: dict[str, dict] = {"tuning": {}, "untouched": {}}
    counts = Counter()
    refused, timing = [], {"ocr_s": 0.0, "structuring_s": 0.0, "images_ocr_cached": 0}
    for name, truth in transcriptions(names).items():
        if capture is not None and part_of(name) != "tuning":
            continue  # the untouched part is never captured again: what a capture breaks is debugged
        image = REAL_DIR / truth["image"]
        if not image.is_file():
            refused.append(f"{name}: image {image} not found")
            continue
        sha = hashlib.sha256(image.read_bytes()).hexdigest()
        if sha != truth["sha256"]:
            refused.append(f"{name}: image sha256 {sha[:12]} differs from the transcription's "
                           f"{truth['sha256'][:12]}")
            continue
        label_file = REAL_DIR / "labels" / f"{name}.json"
        labels = json.loads(label_file.read_text())["fields"] if label_file.is_file() else None
        pages, ocr_s, from_cache = read_image(engine, image, sha, use_cache=use_cache, capture=capture)
        timing["ocr_s"] += ocr_s
        timing["images_ocr_cached"] += from_cache
        start = time.perf_counter()
        claims = [c for p in pages for c in structure_image(p)]
        if bureau is not None:
            claims = bureau(claims)
        timing["structuring_s"] += time.perf_counter() - start
        part = part_of(name)
        counts[part] += 1
        bill = Score()
        # the labels describe the image's (first) receipt
        for k, (receipt, claim) in enumerate(pair_claims(claims, truth["receipts"])):
            first = receipt is truth["receipts"][0]
            bill.add(sc := score_receipt(receipt, claim, labels if first else None, name))
            bill.missed_items += sc.missed_items
            bill.extra_items += sc.extra_items
        lines = [line for r in truth["receipts"] for line in r.get("lines", [])]
        bill.ocr_errors, bill.ocr_chars = ocr_accuracy(pages, lines)
        parts[part].add(bill)
        if part == "tuning" or detail:
            per_bill[part][name] = {
                **bill.summary(), "claims": len(claims), "receipts": len(truth["receipts"]),
                "doc_types": [c.doc_type.value for c in claims],
                "blocking": sorted({f.rule for c in claims for f in c.findings if f.severity in ("error", "warning")}),
            }
    out = {
        "benchmark": "bills_real",
        "data": (f"real development set ../shared/data/bills/real (read in place): {sum(counts.values())} bills "
                 f"transcribed in benchmarks/real_bills ({counts['tuning']} tuning, {counts['untouched']} untouched; "
                 "split by md5(NAME), benchmarks/real_bills/README.md); header labels: MeDocVL labels/NAME.json"),
        "command": "python " + " ".join(["benchmarks/bills_real.py", *sys.argv[1:]]),
        **({"hospital_register": f"{register.name}: {len(hospitals)} hospitals"} if register is not None else {}),
        "cpu": {"model": cpu_name(), "cores_available": len(os.sched_getaffinity(0))},
        "ocr": {**ocr_config(engine), "threads": settings.inference_threads(),
                "cached_pages_used": timing["images_ocr_cached"]},
        "ms_per_bill": {"ocr": round(1000 * timing["ocr_s"] / max(1, sum(counts.values()) - timing["images_ocr_cached"]), 1),
                        "structuring": round(1000 * timing["structuring_s"] / max(1, sum(counts.values())), 1)},
        "tuning": {"bills": counts["tuning"], "overall": parts["tuning"].summary(detail=False),
                   "per_bill": per_bill["tuning"]},
        "untouched": {"bills": counts["untouched"], "overall": parts["untouched"].summary(detail=False),
                      **({"per_bill": per_bill["untouched"]} if detail else {})},
        "absent_fields": "a label '无' is not counted; a value the claim gives there is listed as spurious",
        "refused": refused,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detail", action="store_true", help="also print the untouched part per bill (not while tuning)")
    ap.add_argument("--cached", action="store_true", help="reuse OCR pages cached by an earlier run (same images, "
                                                          "same OCR configuration)")
    ap.add_argument("--only", nargs="*", help="only these bills (NAME stems)")
    ap.add_argument("--register", type=Path, help="a hospital register (CSV) to match each claim's hospital to")
    ap.add_argument("--capture", nargs="+", metavar="HOW",
                    help="the tuning part captured again each of these ways (benchmarks/captures.py: "
                         f"{', '.join(sorted(CAPTURES))}, or several joined by +, applied in order) beside as it "
                         f"is; saved to {CAPTURE_RESULT.name}")
    ap.add_argument("--no-save", action="store_true", help=f"do not write {RESULT.relative_to(ROOT)}")
    args = ap.parse_args()
    if not REAL_DIR.is_dir():
        print(json.dumps({"benchmark": "bills_real", "skipped": f"real bills not found at {REAL_DIR} "
                          "(they live in ../shared/data/bills/real, next to the checkout)"}))
        return
    if args.capture:
        if unknown := [how for how in args.capture if not known(how)]:
            ap.error(f"unknown capture {', '.join(unknown)}: choose from {', '.join(sorted(CAPTURES))} or join them by +")
        out = {"benchmark": "bills_real_captures", "command": "python " + " ".join(["benchmarks/bills_real.py",
                                                                                    *sys.argv[1:]])}
        for how in ["as scanned", *args.capture]:
            one = run(args.only, use_cache=args.cached, register=args.register,
                      capture=None if how == "as scanned" else how)
            out.setdefault("cpu", one["cpu"])
            out.setdefault("ocr", one["ocr"])
            out[how] = {"tuning": one["tuning"], "refused": one["refused"]}
        print(text := json.dumps(out, ensure_ascii=False, default=str))
        if not args.no_save and not args.only:
            CAPTURE_RESULT.write_text(text + "\n")
        return
    out = run(args.only, use_cache=args.cached, detail=args.detail, register=args.register)
    text = json.dumps(out, ensure_ascii=False, default=str)
    print(text)
    if not args.no_save and not args.only:
        (RESULT.with_name("bills_real_register.json") if args.register else RESULT).write_text(text + "\n")


if __name__ == "__main__":
    main()
