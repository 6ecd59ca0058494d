"""NER speed and accuracy on the Yidu-S4K official test set, every backend in one process, interleaved.

Variants: the shipped model through medkg's Tagger on every backend that runs here (torch FP32 / BF16
autocast / dynamic INT8; OpenVINO FP32 / BF16 / static INT8 calibrated on Yidu-S4K *training* windows /
weight-only INT8), against the naive baseline: the same model exported as a Hugging Face
``BertForTokenClassification`` run by ``pipeline("token-classification")``, FP32, one document at a time.
That pipeline decodes per character from the emissions alone (a CRF's transition scores have no place in it),
so an equal-F1 naive baseline runs beside it: medkg's torch FP32 tagger fed one document per call.
Documents are processed in chunks, round-robin across variants, so machine noise hits all alike. F1 is
strict micro (start, end and type) on the test set's answers, which nothing was trained or tuned on.

    .venv/bin/python benchmarks/ner.py [--model models/ner] [--docs 379] [--chunks 4]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import tempfile
import time
from collections import defaultdict

import psutil

from core.hardware import package_version, probe
from core.precision import choose_ner_backend
from core.settings import get_settings
from ner.data import held_out, load
from ner.metrics import strict_scores
from ner.model import load as load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner" / "yidu_s4k"
TEST = DATA / "subtask1_test_set_with_answer.json"
TRAIN = DATA / "subtask1_training_part1.txt"


class HfBaseline:
    """``pipeline("token-classification")`` on the exported model, one document at a time."""

    name = "hf-pipeline-fp32"

    def __init__(self, model_dir: Path, scheme: str, threads: int):
        import torch
        from transformers import pipeline

        from ner.export import to_hf

        torch.set_num_threads(threads)
        self.dir = to_hf(model_dir, Path(tempfile.mkdtemp(prefix="medkg-hf-")), scheme)
        self.pipe = pipeline("token-classification", model=str(self.dir), aggregation_strategy="simple",
                             stride=64, device=-1)

    def spans(self, texts, scheme=None):
        out = []
        for t in texts:
            ents = self.pipe(t) if t else []
            out.append([(e["start"], e["end"], e["entity_group"]) for e in ents])
        return out


class OneByOne:
    """The naive baseline at equal F1: the torch FP32 tagger (same decoding) fed one document per call."""

    name = "torch-fp32-per-doc"

    def __init__(self, tagger):
        self.tagger = tagger

    def spans(self, texts, scheme):
        return [s for t in texts for s in self.tagger.spans([t], scheme)]


def calibration_batches(tagger, n: int = 48):
    """Input batches of Yidu-S4K training windows (never the test set) for OpenVINO static INT8."""
    import numpy as np

    texts = [e.text for e in load(TRAIN) if held_out(e)][:n]
    v, out = tagger.vocab, []
    for t in texts:
        row = [v.cls, *v.encode(t[:254]), v.sep]
        out.append((np.array([row], np.int64), np.ones((1, len(row)), np.int64)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path("models/ner"))
    ap.add_argument("--docs", type=int, default=379)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--scheme", default="yidu")
    args = ap.parse_args()
    if not TEST.is_file():
        sys.exit(f"Yidu-S4K test set not found at {TEST} (see ../shared/data/README.md)")

    from ner.backends import TorchBackend
    from ner.openvino_backend import OpenVinoBackend
    from ner.tagger import Tagger

    hw, threads = probe(), get_settings().inference_threads()
    docs = load(TEST)[:args.docs]
    texts = [d.text for d in docs]
    net, vocab, meta = load_model(args.model)
    base = Tagger(TorchBackend(net, "fp32", threads), vocab, meta)
    builders = {
        "torch-fp32": lambda: base,
        "torch-int8": lambda: Tagger(TorchBackend(net, "int8", threads), vocab, meta),
        "openvino-fp32": lambda: Tagger(OpenVinoBackend(net, "fp32", args.model, threads), vocab, meta),
        "openvino-int8": lambda: Tagger(OpenVinoBackend(net, "int8", args.model, threads,
                                                        calibration_batches(base)), vocab, meta),
        "openvino-int8w": lambda: Tagger(OpenVinoBackend(net, "int8", args.model, threads), vocab, meta),
        HfBaseline.name: lambda: HfBaseline(args.model, args.scheme, threads),
        OneByOne.name: lambda: OneByOne(base),
    }
    if hw.native_bf16:  # elsewhere BF16 is emulated (torch) or silently ignored (OpenVINO): not a variant
        builders["torch-bf16"] = lambda: Tagger(TorchBackend(net, "bf16", threads), vocab, meta)
        builders["openvino-bf16"] = lambda: Tagger(OpenVinoBackend(net, "bf16", args.model, threads), vocab, meta)
    variants, setup_s = {}, {}
    for name, build in builders.items():
        t0 = time.perf_counter()
        variants[name] = build()
        variants[name].spans(texts[:2], args.scheme)  # warm-up: compile, first-call allocations
        setup_s[name] = round(time.perf_counter() - t0, 2)

    seconds, preds = defaultdict(float), defaultdict(list)
    size = -(-len(texts) // args.chunks)
    for k in range(0, len(texts), size):
        chunk = texts[k:k + size]
        for name, v in variants.items():  # round-robin: every variant sees the same machine state
            t0 = time.perf_counter()
            got = v.spans(chunk, args.scheme)
            seconds[name] += time.perf_counter() - t0
            preds[name] += got

    chars = sum(len(t) for t in texts)
    results = {}
    for name, variant in variants.items():
        sc = strict_scores((d.spans, p) for d, p in zip(docs, preds[name]))
        results[name] = {"docs_per_s": round(len(texts) / seconds[name], 2),
                         "chars_per_s": round(chars / seconds[name]), "seconds": round(seconds[name], 1),
                         "f1": sc["micro"]["f1"], "p": sc["micro"]["p"], "r": sc["micro"]["r"],
                         "setup_s": setup_s[name], "executes": getattr(getattr(variant, "backend", None), "executes", "")}
    naive, equal = results[HfBaseline.name], results[OneByOne.name]
    for r in results.values():
        r["speedup_vs_naive"] = round(r["docs_per_s"] / naive["docs_per_s"], 2)
        r["f1_minus_naive"] = round(r["f1"] - naive["f1"], 4)
        r["speedup_vs_per_doc_fp32"] = round(r["docs_per_s"] / equal["docs_per_s"], 2)
        r["f1_minus_per_doc_fp32"] = round(r["f1"] - equal["f1"], 4)
    # the decoding choice, measured: constrained Viterbi against per-character argmax + BIO repair
    from ner.data import spans_from_bio

    labels = meta["schemes"][args.scheme]
    argmax = [spans_from_bio([labels[i] for i in sc[args.scheme].argmax(-1)]) for sc in base.scores(texts)]
    decoding = {"constrained_viterbi_f1": results["torch-fp32"]["f1"],
                "argmax_bio_repair_f1": strict_scores((d.spans, p) for d, p in zip(docs, argmax))["micro"]["f1"]}
    policy = choose_ner_backend(hw)
    out = {
        "data": f"Yidu-S4K official test set ({len(texts)} records, {chars} characters), strict micro F1, "
                f"scheme {args.scheme}",
        "model": str(args.model), "threads": threads, "cpu": hw.isa_summary,
        "torch": package_version("torch"), "openvino": package_version("openvino"),
        "ipex": package_version("intel-extension-for-pytorch") or "not installed (optional backend; retired upstream)",
        "policy": {"backend": policy.precision, "reason": policy.reason,
                   **{k: results.get(policy.precision, {}).get(k) for k in
                      ("speedup_vs_naive", "f1_minus_naive", "speedup_vs_per_doc_fp32", "f1_minus_per_doc_fp32")}},
        "per_type_torch_fp32": strict_scores((d.spans, p) for d, p in zip(docs, preds["torch-fp32"]))["per_type"],
        "variants": results,
        "decoding": decoding,
        "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20),
    }
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
