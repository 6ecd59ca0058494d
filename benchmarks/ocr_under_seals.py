"""Print under red seals (``ocr.stamps``): what detecting again under each seal, with the stamp's ink taken out,
adds to a page's lines and what it costs. Each page is read with it off and on, one after the other in one process
(these machines are shared and noisy: the cost is a ratio of the two). Prints one JSON object (saved to
benchmarks/results/ocr_under_seals.json unless --no-save).

Pages: the real *tuning* bills as scanned (character accuracy on our transcribed printed lines,
``bills_real.ocr_accuracy``; skipped when ../shared/data is absent) and rendered real-like development pages of
one template (--seeds, --template; by default the dot-matrix form: stamps across light print). Item and field figures are ``bills_real.py`` and
``bills.py --set reallike --dev-seeds``'s.

    .venv/bin/python benchmarks/ocr_under_seals.py [--seeds 7700-7729] [--template dotmatrix_form] [--no-save]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import time
from collections import Counter

from benchmarks.bills_real import REAL_DIR, cpu_name, ocr_accuracy, part_of, publish, transcriptions

RESULT = Path(__file__).resolve().parent / "results" / "ocr_under_seals.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7700-7729", help="real-like development seeds A-B")
    ap.add_argument("--template", default="dotmatrix_form", help="the real-like template of those seeds")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    from core.settings import get_settings
    from ocr.pipeline import OcrEngine
    from ocr.readers import read_pages
    from ocr.synth.reallike import render_reallike

    settings = get_settings().model_copy(update={"ocr_under_seals": True})
    on = OcrEngine.load(settings=settings)
    off = OcrEngine(on.models, settings.model_copy(update={"ocr_under_seals": False}))
    a, _, b = args.seeds.partition("-")
    pages = [(f"seed{s}", render_reallike(s, template=args.template).image, None) for s in range(int(a), int(b or a) + 1)]
    if REAL_DIR.is_dir():
        pages += [(name, read_pages(REAL_DIR / t["image"])[0].image,
                   [line for r in t["receipts"] for line in r.get("lines", [])])
                  for name, t in transcriptions().items() if part_of(name) == "tuning"]
    on.read_image(pages[0][1])  # warm-up: both engines share the compiled models
    seconds = {"off": 0.0, "on": 0.0}
    chars = {"off": [0, 0], "on": [0, 0]}
    lines = Counter()
    per_page = {}
    for name, image, transcribed in pages:
        read = {}
        for variant, engine in (("off", off), ("on", on)):
            start = time.perf_counter()
            read[variant] = engine.read_image(image, doc_id=name)
            seconds[variant] += time.perf_counter() - start
        before = Counter(line.text for line in read["off"].lines)
        after = Counter(line.text for line in read["on"].lines)
        gained, lost = after - before, before - after
        lines["pages"] += 1
        lines["pages_with_seals"] += bool(read["on"].seals)
        lines["gained"] += sum(gained.values())
        lines["replaced"] += sum(lost.values())
        entry = {"gained": sorted(gained.elements()), "replaced": sorted(lost.elements())}
        if transcribed is not None:
            for variant in ("off", "on"):
                errors, n = ocr_accuracy([read[variant]], transcribed)
                chars[variant][0] += errors
                chars[variant][1] += n
                entry[f"char_accuracy_{variant}"] = round(1 - errors / max(n, 1), 4)
        if gained or lost:
            per_page[name] = entry
    out = {
        "benchmark": "ocr_under_seals",
        "data": f"real-like development seeds {args.seeds} ({args.template})"
                + (" and the real tuning bills as scanned" if REAL_DIR.is_dir() else " (real bills absent)"),
        "command": " ".join(["python benchmarks/ocr_under_seals.py", *sys.argv[1:]]),
        "cpu": {"model": cpu_name()},
        "ocr": on.models.version,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "time_ratio_on_off": round(seconds["on"] / seconds["off"], 3),
        "lines": dict(lines),
        "tuning_char_accuracy": {k: round(1 - e / max(n, 1), 4) for k, (e, n) in chars.items()} if chars["on"][1] else None,
        "per_page": per_page,
    }
    publish(out, RESULT, save=not args.no_save)


if __name__ == "__main__":
    main()
