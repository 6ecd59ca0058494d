"""Is the CMeEE training file labelled like the official dev set? A model-free check, beside the shipped model.

The probe is a dictionary: every entity string of 2 to 12 characters in the *training* part of the training file
(``ner.data.held_out`` decides the part), kept when it is annotated in at least half of its occurrences there,
with its most frequent type, matched longest-first. Its precision asks "where this string occurs, is it labelled
as in training?". Scored on the held-out part of the training file and on the official dev set, both with nested
gold (``Example.gold``: the held-out part's inner entities given back), over all texts and over the
*fresh* ones that share no 12-character substring with the training part (near-duplicates would flatter the
held-out side). The shipped model is scored on the same four sets (nested decoding). Nothing is fitted on the
dev set: it is read only to be scored. Prints one JSON object.

    .venv/bin/python benchmarks/ner_label_probe.py [--model models/ner]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
from collections import Counter, defaultdict

from ner.data import Example, held_out, load_cmeee
from ner.metrics import strict_scores
from ner.tagger import Tagger
from ner.train import evaluate

CMEEE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner" / "cmeee"
SHORTEST, LONGEST, SHINGLE = 2, 12, 12


def lexicon(train: list[Example]) -> dict[str, str]:
    types: dict[str, Counter] = defaultdict(Counter)
    for ex in train:
        for s, e, lab in ex.gold:
            if SHORTEST <= e - s <= LONGEST:
                types[ex.text[s:e]][lab] += 1
    seen = Counter(w for ex in train for w in substrings(ex.text) if w in types)
    return {w: c.most_common(1)[0][0] for w, c in types.items() if c.total() >= 0.5 * seen[w]}


def substrings(text: str):
    for i in range(len(text)):
        for n in range(SHORTEST, min(LONGEST, len(text) - i) + 1):
            yield text[i:i + n]


def match(lex: dict[str, str], text: str) -> list[tuple[int, int, str]]:
    out, i = [], 0
    while i < len(text):
        n = next((n for n in range(min(LONGEST, len(text) - i), SHORTEST - 1, -1) if text[i:i + n] in lex), 0)
        if n:
            out.append((i, i + n, lex[text[i:i + n]]))
        i += n or 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/ner")
    ap.add_argument("--train", type=Path, default=CMEEE / "CMeEE_train_flat.jsonl")
    ap.add_argument("--dev", type=Path, default=CMEEE / "CMeEE_dev.json")
    args = ap.parse_args()
    rows = load_cmeee(args.train)
    train = [e for e in rows if not held_out(e)]
    lex = lexicon(train)
    shingles = {ex.text[i:i + SHINGLE] for ex in train for i in range(len(ex.text) - SHINGLE + 1)}
    tagger = Tagger.load(args.model)
    sets = {"held_out": [e for e in rows if held_out(e)], "dev": load_cmeee(args.dev)}
    sets |= {f"{k}_fresh": [e for e in v if not any(e.text[i:i + SHINGLE] in shingles
                                                    for i in range(len(e.text) - SHINGLE + 1))]
             for k, v in list(sets.items())}
    out = {"model": tagger.name, "lexicon_strings": len(lex),
           "data": "nested gold, strict spans; held_out = the training file's 10 % content-hash part", "sets": {}}
    for name, exs in sets.items():
        by_lex = strict_scores((e.gold, match(lex, e.text)) for e in exs)
        by_model = evaluate(tagger, exs)["cmeee"]
        chars = sum(len(e.text) for e in exs)
        out["sets"][name] = {"texts": len(exs), "gold_per_100_chars": round(100 * by_lex["micro"]["gold"] / chars, 2),
                             "lexicon": by_lex["micro"], "model": by_model["micro"],
                             "lexicon_precision_per_type": {t: v["p"] for t, v in by_lex["per_type"].items()}}
        print(name, out["sets"][name]["lexicon"], out["sets"][name]["model"], file=sys.stderr, flush=True)
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
