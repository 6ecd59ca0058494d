"""Relation extraction accuracy and speed on the CMeIE test part, every precision in one process, interleaved.

Accuracy: triple precision / recall / F1 with exact subject, predicate and object strings on the *test* part
of the fixed md5 split (``relations.data.part``), which nothing was trained or tuned on; per predicate for
the ten most frequent. Speed: texts/s of the relation model alone at each precision that runs natively here
(torch FP32, dynamic INT8, BF16 autocast where the CPU has native BF16), texts processed in chunks
round-robin across variants so machine noise hits all alike. Also: the attribute rules on their fixtures,
and the candidate-pair bound on a text with hundreds of entity mentions.

    .venv/bin/python benchmarks/relations.py [--model models/relations] [--texts 928] [--chunks 4]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import time
from collections import defaultdict

import psutil

from core.hardware import package_version, probe
from core.settings import get_settings
from relations.data import load_cmeie, part
from relations.train import scores

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "re" / "cmeie" / "CMeIE_dev.json"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "attributes.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("models/relations"))
    ap.add_argument("--texts", type=int, default=928)
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"CMeIE not found at {DATA} (see ../shared/data/README.md)")

    from relations.attributes import evaluate as evaluate_rules
    from relations.extract import RelationExtractor
    from relations.model import load

    hw, threads = probe(), get_settings().inference_threads()
    test = [e for e in load_cmeie(DATA) if part(e.text) == "test"][:args.texts]
    texts = [e.text for e in test]
    net, vocab, meta = load(args.model)
    precisions = ["fp32", "int8"] + (["bf16"] if hw.native_bf16 else [])
    variants, setup_s = {}, {}
    for p in precisions:
        t0 = time.perf_counter()
        model = net if p != "int8" else load(args.model)[0]  # quantize_dynamic swaps modules: its own copy
        variants[p] = RelationExtractor(model, vocab, meta, precision=p, threads=threads)
        variants[p].triples(texts[:2])  # warm-up
        setup_s[p] = round(time.perf_counter() - t0, 2)

    seconds, preds = defaultdict(float), defaultdict(list)
    size = -(-len(texts) // args.chunks)
    for k in range(0, len(texts), size):
        chunk = texts[k:k + size]
        for p, v in variants.items():
            t0 = time.perf_counter()
            preds[p] += v.triples(chunk)
            seconds[p] += time.perf_counter() - t0

    gold = [e.gold() for e in test]
    results = {}
    for p in variants:
        got = scores([{t.key for t in triples} for _, triples, _ in preds[p]], gold)
        results[p] = {"texts_per_s": round(len(texts) / seconds[p], 2), "seconds": round(seconds[p], 1),
                      **got["micro"], "setup_s": setup_s[p],
                      "per_predicate_top10": dict(list(got["per_predicate"].items())[:10])}
    default = RelationExtractor(net, vocab, meta).precision
    # bounded candidates: one text with hundreds of mentions (every test text joined)
    big = "".join(texts[:60])
    t0 = time.perf_counter()
    args_, triples, dropped = variants[default].triples([big])[0]
    bound = {"chars": len(big), "window_chars": 300, "arguments_kept": len(args_), "arguments_dropped": dropped,
             "max_pairs_per_window": variants[default].max_entities * (variants[default].max_entities - 1),
             "triples": len(triples), "seconds": round(time.perf_counter() - t0, 2)}
    out = {
        "data": f"CMeIE_dev.json test part of the md5 split ({len(texts)} texts, {sum(len(g) for g in gold)} triples); "
                "exact (subject, predicate, object) strings",
        "model": meta.get("name"), "model_dir": str(args.model), "threads": threads, "cpu": hw.isa_summary,
        "torch": package_version("torch"),
        "default_precision": default,
        "micro": {k: results[default][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")},
        "per_predicate_top10": results[default]["per_predicate_top10"],
        "variants": {p: {k: v for k, v in r.items() if k != "per_predicate_top10"} for p, r in results.items()},
        "attribute_rules": evaluate_rules(FIXTURES),
        "candidate_bound": bound,
        "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20),
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
