"""Red stamps over print: does taking the stamp's red ink out of a text line's crop help recognition? Measured
on the real *tuning* bills only (benchmarks/real_bills/README.md), as OCR character accuracy on our transcribed
printed lines (``bills_real.ocr_accuracy``). Prints one JSON object (saved to
benchmarks/results/ocr_stamps.json unless --no-save).

Variants, each on the same detection and the same crops of one run:

- ``plain``: what the product does (the crop as scanned);
- ``destamp``: in every crop with at least --red-share of red-ink pixels (R exceeds both G and B by 45 and is
  above 110: stamp red, not the near-black where black print crosses it), those pixels are painted white;
- ``destamp_if_surer``: the de-stamped reading only where the recogniser is more confident of it than of the
  plain one (stamp-free crops are never touched).

Page-wide alternatives (OCR on the red channel, CLAHE) were measured earlier: docs/real-bills.md.

    .venv/bin/python benchmarks/ocr_stamps.py [--red-share 0.03] [--no-save]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import time

import numpy as np

from benchmarks.bills_real import cpu_name, publish, skip_without_real_bills, texts_accuracy, tuning_crops

RESULT = Path(__file__).resolve().parent / "results" / "ocr_stamps.json"


def red_ink(crop: np.ndarray) -> np.ndarray:
    c = crop.astype(np.int16)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    return (r > 110) & (r - np.maximum(g, b) > 45)


def destamp(crop: np.ndarray) -> np.ndarray:
    out = crop.copy()
    out[red_ink(crop)] = 255
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--red-share", type=float, default=0.03, help="share of red-ink pixels that makes a crop stamped")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if skip_without_real_bills("ocr_stamps"):
        return

    from ocr.pipeline import OcrEngine

    engine = OcrEngine.load()
    totals = {v: [0, 0] for v in ("plain", "destamp", "destamp_if_surer")}
    per_bill, crops_stamped, changed, surer = {}, 0, 0, 0
    start = time.perf_counter()
    for name, lines, crops in tuning_crops(engine):
        plain = engine.recognizer(crops)
        stamped = [i for i, c in enumerate(crops) if red_ink(c).mean() >= args.red_share]
        clean = dict(zip(stamped, engine.recognizer([destamp(crops[i]) for i in stamped])))
        crops_stamped += len(stamped)
        changed += sum(clean[i].text != plain[i].text for i in stamped)
        surer += sum(clean[i].confidence > plain[i].confidence and clean[i].text != plain[i].text for i in stamped)
        readings = {
            "plain": [r.text for r in plain],
            "destamp": [clean[i].text if i in clean else r.text for i, r in enumerate(plain)],
            "destamp_if_surer": [clean[i].text if i in clean and clean[i].confidence > r.confidence else r.text
                                 for i, r in enumerate(plain)],
        }
        per_bill[name] = {}
        for variant, texts in readings.items():
            errors, chars = texts_accuracy(texts, lines)
            totals[variant][0] += errors
            totals[variant][1] += chars
            per_bill[name][variant] = round(1 - errors / max(chars, 1), 4)
    out = {
        "benchmark": "ocr_stamps",
        "data": "real tuning bills (benchmarks/real_bills/README.md), our transcribed printed lines",
        "command": "python benchmarks/ocr_stamps.py" + (f" --red-share {args.red_share}" if args.red_share != 0.03 else ""),
        "cpu": {"model": cpu_name()},
        "ocr": engine.models.version,  # the precision each model executed: the policy's choice on this CPU
        "red_share": args.red_share,
        "char_accuracy": {v: round(1 - e / max(c, 1), 4) for v, (e, c) in totals.items()},
        "chars": totals["plain"][1],
        "crops_with_red_ink": crops_stamped,
        "readings_changed_by_destamp": changed,
        "of_them_more_confident": surer,
        "per_bill": per_bill,
        "seconds": round(time.perf_counter() - start, 1),
    }
    publish(out, RESULT, save=not args.no_save)


if __name__ == "__main__":
    main()
