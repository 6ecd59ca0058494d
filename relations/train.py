"""Training and evaluation of the joint entity-and-relation model on CMeIE.

Data discipline: only the *train* part of the fixed md5 split is trained on; its ``tune`` slice (first md5
digit ``b``) picks the checkpoint. The *test* part is read only by ``evaluate`` for reporting.

Candidate pairs while training: every ordered pair of gold entities whose types some schema allows (the
pairs inference will see), reversed positives always among them (direction is the commonest confusion),
capped per text by random sampling; plus *hard negatives*: spans the span head currently predicts that are
not gold, paired with gold entities, so the pair head learns to reject the span head's mistakes.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from relations.data import Example, occurrences, part


@dataclass
class TrainConfig:
    epochs: float = 6.0
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_tokens: int = 1024  # padded positions per batch (4,096 trained worse: a quarter of the steps)
    max_pairs: int = 64  # candidate pairs per text (positives always kept)
    hard_negatives: int = 4  # predicted non-gold spans per text used as negative arguments
    dropout: float = 0.1
    seed: int = 13
    eval_every: int = 200
    patience: int = 4
    ema: float = 0.0  # > 0: evaluate and keep an exponential moving average of the weights with this decay
    bf16: bool | None = None
    threads: int | None = None


def scores(pred: list[set], gold: list[set]) -> dict:
    """Micro precision / recall / F1 over (subject, predicate, object) string triples, and per predicate."""
    tp = fp = fn = 0
    per: dict[str, Counter] = {}
    for p, g in zip(pred, gold):
        for t in p | g:
            c = per.setdefault(t[1], Counter())
            hit = t in p and t in g
            c["tp"] += hit
            c["fp"] += t in p and not hit
            c["fn"] += t in g and not hit
        tp += len(p & g)
        fp += len(p - g)
        fn += len(g - p)

    def prf(tp, fp, fn):
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        return {"precision": round(pr, 4), "recall": round(rc, 4),
                "f1": round(2 * pr * rc / (pr + rc), 4) if pr + rc else 0.0, "tp": tp, "fp": fp, "fn": fn}

    return {"micro": prf(tp, fp, fn),
            "per_predicate": {k: {**prf(c["tp"], c["fp"], c["fn"]), "support": c["tp"] + c["fn"]}
                              for k, c in sorted(per.items(), key=lambda kv: -(kv[1]["tp"] + kv[1]["fn"]))}}


def evaluate(extractor, examples: list[Example]) -> dict:
    got = extractor.triples([e.text for e in examples])
    return scores([{t.key for t in triples} for _, triples, _ in got], [e.gold() for e in examples])


def tune_thresholds(extractor, tune: list[Example], grid=(-2.0, -1.5, -1.0, -0.5, 0.0, 0.5)) -> dict:
    """The span and pair score thresholds with the best F1 on the tune slice (span first, then pair)."""
    best = {"span": 0.0, "pair": 0.0, "f1": -1.0}
    for key in ("span", "pair"):
        for th in grid:
            setattr(extractor, f"{key}_threshold", th)
            f1 = evaluate(extractor, tune)["micro"]["f1"]
            if f1 > best["f1"]:
                best.update({key: th, "f1": f1})
        setattr(extractor, f"{key}_threshold", best[key])
    return best


def features(ex: Example, vocab, types: dict[str, int], predicates: dict[str, int], pairable) -> dict:
    """Model-position features of one example: ids, gold spans, entities' mentions, pairs and labels."""
    ents = [(s, types[t], [(a + 1, b) for a, b in occurrences(ex.text, s)]) for s, t in ex.entities]
    labels: dict[tuple[int, int], set[int]] = {}
    for s, p, o in ex.triples:
        labels.setdefault((s, o), set()).add(predicates[p])
    return {"ids": [vocab.cls, *vocab.encode(ex.text), vocab.sep], "ents": ents, "labels": labels,
            "candidates": [(i, j) for i in range(len(ents)) for j in range(len(ents))
                           if i != j and ents[i][0] != ents[j][0] and pairable[ents[i][1]][ents[j][1]]]}


def train(encoder_dir: Path, examples: list[Example], schemas, out_dir: Path, cfg: TrainConfig,
          log: Callable[[dict], None] = print) -> dict:
    import torch

    from core.hardware import probe
    from ner import model as nm
    from ner.train import length_batches, moving_average, optimiser
    from relations import model as rm
    from relations.extract import RelationExtractor

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    bf16 = probe().native_bf16 if cfg.bf16 is None else cfg.bf16
    if any(part(e.text) == "test" for e in examples):
        raise ValueError("training examples include the CMeIE test part of the fixed split")
    tune = [e for e in examples if part(e.text) == "tune"]
    train_set = [e for e in examples if part(e.text) == "train"]

    encoder_dir = Path(encoder_dir)
    schema_rows = [(s.subject_type, s.predicate, s.object_type) for s in schemas]
    if (encoder_dir / rm.CONFIG).is_file():  # continue a relation model (heads that changed start afresh)
        net, vocab, _ = rm.load(encoder_dir, partial=True)
    else:  # a medkg NER model: its domain-tuned encoder and character vocabulary
        ner_net, vocab, _ = nm.load(encoder_dir)
        net = rm.build(ner_net.encoder, schema_rows, dropout=cfg.dropout)
    ti = {t: i for i, t in enumerate(net.types)}
    pi = {p: i for i, p in enumerate(net.predicates)}
    feats = [features(e, vocab, ti, pi, net.pairable) for e in train_set]
    steps_per_epoch = len(length_batches([(f["ids"],) for f in feats], cfg.max_tokens, random.Random(0)))
    total = max(1, int(steps_per_epoch * cfg.epochs))
    opt, sched, warm = optimiser(net, lambda name: not name.startswith("encoder."), cfg, total)
    meta = {"name": out_dir.name, "encoder": str(encoder_dir), "train": asdict(cfg), "bf16_autocast": bf16,
            "examples": {"train": len(train_set), "tune": len(tune)}, "steps": total,
            "split": "CMeIE_dev.json, md5(text)[0]: c-f test (never read here), b tune, rest train"}
    log({"event": "start", **meta["examples"], "steps": total, "steps_per_epoch": steps_per_epoch})

    ema, kept = moving_average(net, cfg.ema)  # kept: what is evaluated and stored
    rng = random.Random(cfg.seed)
    best, bad, step, t0, history = -1.0, 0, 0, time.time(), []
    while step < total:
        for batch in length_batches([(f["ids"],) for f in feats], cfg.max_tokens, rng):
            net.train()
            width = max(len(feats[i]["ids"]) for i in batch)
            ids = torch.full((len(batch), width), vocab.pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            span_gold = torch.zeros((len(batch), len(net.types), width, width))
            for r, i in enumerate(batch):
                f = feats[i]
                ids[r, :len(f["ids"])], mask[r, :len(f["ids"])] = torch.tensor(f["ids"]), 1
                for _, t, ms in f["ents"]:
                    for a, b in ms:
                        if b - a < net.max_span:
                            span_gold[r, t, a, b] = 1
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                h = net.encode(ids, mask)
                span = net.span_scores(h, mask)
                span_loss = rm.multilabel_ce(span.reshape(-1, width * width), span_gold.reshape(-1, width * width))
                span_loss = span_loss / len(batch)
                mentions, owners, types, pairs, labels = [], [], [], [], []
                where: list[tuple[int, list]] = []  # per entity: its row and its mentions
                for r, i in enumerate(batch):
                    f, base = feats[i], len(types)
                    for k, (_, t, ms) in enumerate(f["ents"]):
                        for a, b in ms:
                            mentions.append((r, a, b))
                            owners.append(base + k)
                        types.append(t)
                        where.append((r, ms))
                    pos = [c for c in f["candidates"] if c in f["labels"]]
                    neg = [c for c in f["candidates"] if c not in f["labels"]]
                    rev = [c for c in neg if (c[1], c[0]) in f["labels"]]
                    rest = [c for c in neg if (c[1], c[0]) not in f["labels"]]
                    rng.shuffle(rest)
                    chosen = pos + rev + rest[:max(0, cfg.max_pairs - len(pos) - len(rev))]
                    # hard negatives: predicted spans that are not gold, against every gold entity
                    if cfg.hard_negatives and step > warm:
                        wrong = ((span[r].detach() > 0) & (span_gold[r] == 0)).nonzero().tolist()
                        rng.shuffle(wrong)
                        for t, a, b in wrong[:cfg.hard_negatives]:
                            k = len(types)
                            mentions.append((r, a, b))
                            owners.append(k)
                            types.append(t)
                            where.append((r, [(a, b)]))
                            for g in range(base, base + len(f["ents"])):
                                for x, y in ((k, g), (g, k)):
                                    if net.pairable[types[x]][types[y]]:
                                        pairs.append((x, y))
                                        labels.append(set())
                    for x, y in chosen:
                        pairs.append((base + x, base + y))
                        labels.append(f["labels"].get((x, y), set()))
                pair_loss = torch.zeros(())
                if pairs:
                    vec = net.entity_vectors(h, torch.tensor(mentions), torch.tensor(owners), len(types))
                    gaps = torch.tensor([(where[x][0], *rm.gap(where[x][1], where[y][1])) for x, y in pairs])
                    ps = net.pair_scores(vec, torch.tensor(types), torch.tensor(pairs), net.between(h, gaps))
                    y = torch.zeros_like(ps)
                    for k, lab in enumerate(labels):
                        for p in lab:
                            y[k, p] = 1
                    pair_loss = rm.multilabel_ce(ps, y) / len(batch)
            loss = span_loss + pair_loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(net)
            step += 1
            if step % 20 == 0:
                log({"event": "step", "step": step, "span_loss": round(span_loss.item(), 3),
                     "pair_loss": round(pair_loss.item(), 3), "elapsed_s": round(time.time() - t0)})
            if step % cfg.eval_every == 0 or step >= total:
                kept.eval()
                got = evaluate(RelationExtractor(kept, vocab, {"name": out_dir.name},
                                                 precision="bf16" if bf16 else "fp32"), tune)
                history.append({"step": step, **got["micro"]})
                log({"event": "eval", "step": step, "tune": got["micro"], "elapsed_s": round(time.time() - t0)})
                if got["micro"]["f1"] > best:
                    best, bad = got["micro"]["f1"], 0
                    rm.save(kept, vocab, out_dir, {**meta, "best_step": step, "tune": got["micro"]}, schema_rows)
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        log({"event": "early_stop", "step": step})
                        step = total
            if step >= total:
                break
    # thresholds on the model as stored (int8), the one inference will use
    net, vocab, meta = rm.load(out_dir)
    meta["thresholds"] = tune_thresholds(RelationExtractor(net, vocab, meta, precision="bf16" if bf16 else "fp32"), tune)
    log({"event": "thresholds", **meta["thresholds"]})
    meta.update(history=history, train_seconds=round(time.time() - t0))
    (out_dir / rm.CONFIG).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return meta

