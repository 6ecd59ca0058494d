"""Red seals (``ocr.seals``): are they found, is the hospital's name read in their ring, and what does it cost?

- **Rendered pages** (development seeds, default 8300–8379; none of the fixed sets' seeds): the renderer stamps
  the hospital's round seal with its name on some pages (``ocr.synth.stamp``). Counted: pages with such a seal,
  seals found on them, seals whose reading holds the hospital's name whole, and seals found on pages where no
  seal was stamped (false seals; the financial bureau's oval 监制章 counts as a seal).
- **Real tuning bills** (``benchmarks/real_bills/README.md``; never the untouched part): the same, against the
  hospital name of the shared labels.
- **Cost**: each page read with seals off and on, alternately, in one process; the ratio of the two totals.

Prints one JSON object (saved to benchmarks/results/ocr_seals.json unless --no-save).

    .venv/bin/python benchmarks/ocr_seals.py [--seeds 8300-8379] [--no-save]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import time

from benchmarks.bills_real import REAL_DIR, cpu_name, part_of, publish, transcriptions
from claims.evaluate import norm_text as _key

RESULT = Path(__file__).resolve().parent / "results" / "ocr_seals.json"


def _read_both(engine, image, seconds: dict) -> object:
    """The page read with seals off, then on (timed apart); the second page is returned."""
    limit = engine.settings.ocr_seals
    for variant, seals in (("off", 0), ("on", limit)):
        engine.settings.ocr_seals = seals
        start = time.perf_counter()
        page = engine.read_image(image)
        seconds[variant] += time.perf_counter() - start
    return page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="8300-8379", help="development seeds of rendered pages, A-B inclusive")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    from core.settings import get_settings
    from ocr.pipeline import OcrEngine
    from ocr.readers import read_pages
    from ocr.synth import render_page

    settings = get_settings().model_copy()
    engine = OcrEngine.load(settings=settings)
    seconds = {"off": 0.0, "on": 0.0}
    lo, hi = map(int, args.seeds.split("-"))
    rendered = {"pages": 0, "pages_stamped": 0, "seals_found_there": 0, "name_read_whole": 0,
                "pages_without_stamp": 0, "seals_found_there_none_stamped": 0}
    for seed in range(lo, hi + 1):
        page = render_page(seed)
        stamps = [d for d in page.meta["degradations"] if d["name"] == "stamp"]
        hospital = _key(page.meta["fields"]["hospital"])
        got = _read_both(engine, page.image, seconds)
        rendered["pages"] += 1
        if any(s["kind"] == "round" for s in stamps):
            rendered["pages_stamped"] += 1
            rendered["seals_found_there"] += len(got.seals)
            rendered["name_read_whole"] += any(hospital in _key(t) for s in got.seals for t, _ in s.readings)
        elif not stamps:
            rendered["pages_without_stamp"] += 1
            rendered["seals_found_there_none_stamped"] += len(got.seals)

    real: dict[str, dict] = {}
    if REAL_DIR.is_dir():
        for name, truth in transcriptions().items():
            if part_of(name) != "tuning":
                continue
            label = REAL_DIR / "labels" / f"{name}.json"
            hospital = json.loads(label.read_text())["fields"].get("医院名称") if label.is_file() else None
            got = _read_both(engine, read_pages(REAL_DIR / truth["image"])[0].image, seconds)
            real[name] = {"seals": len(got.seals), "labelled_hospital": bool(hospital),
                          "name_read_whole": bool(hospital) and any(_key(hospital) in _key(t) for s in got.seals
                                                                    for t, _ in s.readings)}
    out = {
        "benchmark": "ocr_seals",
        "command": "python benchmarks/ocr_seals.py" + (f" --seeds {args.seeds}" if args.seeds != "8300-8379" else ""),
        "cpu": {"model": cpu_name()},
        "ocr": engine.models.version,
        "rendered": {"seeds": args.seeds, **rendered},
        "real_tuning": {
            "bills": len(real), "with_seals": sum(r["seals"] > 0 for r in real.values()),
            "labelled_hospital_read_whole_in_a_seal": sum(r["name_read_whole"] for r in real.values()),
            "labelled": sum(r["labelled_hospital"] for r in real.values()), "per_bill": real,
        } if real else {"skipped": f"real bills not found at {REAL_DIR}"},
        "ocr_seconds": {k: round(v, 2) for k, v in seconds.items()},
        "cost_ratio_on_over_off": round(seconds["on"] / seconds["off"], 3),
    }
    publish(out, RESULT, save=not args.no_save)


if __name__ == "__main__":
    main()
