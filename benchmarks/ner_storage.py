"""What the compact storage of NER weights costs: held-out F1 of one trained model's fp32 checkpoint against the
same weights stored as int8 with one scale per row and per 32 / 64 weights (``ner.model.int8_groups``).

Scored like training's early stopping: each dataset's held-out 10 % of the *training* files (``ner.data.held_out``,
flat), torch BF16 where the CPU has it. Needs a directory a training run wrote (``checkpoint.safetensors``: the
shipped model has no fp32 weights); prints one JSON object.

    .venv/bin/python benchmarks/ner_storage.py RUN_DIR [TRAINING_FILE ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json

from core.hardware import probe
from ner import model as nm
from ner.backends import TorchBackend
from ner.data import held_out, load
from ner.modeldir import CHECKPOINT
from ner.tagger import Tagger
from ner.train import evaluate

NER_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner"
FILES = [NER_DATA / "yidu_s4k" / "subtask1_training_part1.txt", NER_DATA / "yidu_s4k" / "subtask1_training_part2.txt",
         NER_DATA / "cmeee" / "CMeEE_train_flat.jsonl"]
ROW = 10**9  # a group no row divides into: one scale per row, the layout before groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("files", type=Path, nargs="*", default=FILES)
    ap.add_argument("--groups", type=int, nargs="*", default=[ROW, 64, 32])
    args = ap.parse_args()
    if not (args.run / CHECKPOINT).is_file():
        sys.exit(f"{args.run} has no {CHECKPOINT}: give a directory `medkg ner train --out` wrote")
    dev = [e for f in args.files for e in load(f) if held_out(e)]
    net, vocab, meta = nm.load(args.run, full=True)
    full = {k: v.clone() for k, v in net.state_dict().items()}
    crf = {k: v for k, v in full.items() if k.startswith("crf.")}
    body = {k: v for k, v in full.items() if k not in crf}
    precision = "bf16" if probe().native_bf16 else "fp32"
    out = {"model": meta.get("name"), "run": str(args.run), "precision": precision, "held_out_texts": len(dev),
           "data": "held-out 10 % of the training files (ner.data.held_out), strict micro F1, flat", "variants": {}}
    for group in [None, *args.groups]:
        name = "fp32" if group is None else "int8 per row" if group == ROW else f"int8 per {group}"
        state = body if group is None else nm.from_int8_groups(nm.int8_groups(body, group))
        net.load_state_dict({**state, **crf})
        net.eval()
        scores = evaluate(Tagger(TorchBackend(net, precision), vocab, nm.decoding_meta(net)), dev, nested=False)
        f1 = {k: round(v["micro"]["f1"], 4) for k, v in scores.items()}
        out["variants"][name] = {"f1": f1, "mean": round(sum(f1.values()) / len(f1), 4)}
        print(name, out["variants"][name], file=sys.stderr, flush=True)
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
