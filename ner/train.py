"""Fine-tuning: one encoder, one BIO head per dataset scheme, early stopping on held-out training data.

Determinism: a fixed seed drives shuffling, dropout and head initialisation. Held-out data is a
content-hash split of the *training* files (``ner.data.held_out``), never a reporting set.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ner.chars import CharVocab, gb2312_chars
from ner.data import Example, assertion_gold, held_out
from ner.metrics import assertion_scores, strict_scores
from ner.schema import bio_labels, entity_type, scheme_label

_SENTENCE_END = re.compile(r"(?<=[。；;！？!?\n])")


@dataclass
class TrainConfig:
    epochs: float = 3.0
    lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_tokens: int = 3072  # padded tokens per batch
    window: int = 254
    dropout: float = 0.1
    seed: int = 13
    eval_every: int = 300  # steps
    patience: int = 4  # evaluations without improvement before stopping
    crf: bool = False  # train start/transition scores by sequence likelihood (ner.crf) instead of per-tag loss
    ema: float = 0.0  # > 0: evaluate and keep an exponential moving average of the weights with this decay
    adversarial: float = 0.0  # > 0: also train on word embeddings pushed this far along the loss gradient (FGM)
    sample: dict[str, float] = field(default_factory=dict)  # scheme -> fraction of its pieces drawn each epoch
    max_steps: int | None = None  # stop (evaluate, save) after this many steps: a smoke test; the schedule keeps epochs
    bf16: bool | None = None  # autocast; None = where the CPU (or the GPU, with device="cuda") has native BF16
    device: str = "cpu"  # "cuda": train and evaluate on a GPU (the stored model is the same; untested on a GPU so far)
    threads: int | None = None
    extra: dict = field(default_factory=dict)


def pieces(ex: Example, window: int) -> list[Example]:
    """A long text cut into sentence-aligned pieces of at most ``window`` characters (spans that would
    straddle a cut are dropped from both sides: a cut lands inside an entity only in a run-on sentence)."""
    if len(ex.text) <= window:
        return [ex]
    cuts, start = [], 0
    parts = [p for p in _SENTENCE_END.split(ex.text) if p]
    cur = 0
    for p in parts:
        while len(p) > window:  # a run-on "sentence": hard cut
            if cur > start:
                cuts.append((start, cur))
                start = cur
            cuts.append((start, start + window))
            start = cur = start + window
            p = p[window:]
        if cur + len(p) - start > window:
            cuts.append((start, cur))
            start = cur
        cur += len(p)
    if cur > start:
        cuts.append((start, cur))

    def inside(spans, s, e):
        return tuple((a - s, b - s, lab) for a, b, lab in spans if s <= a and b <= e)

    return [Example(ex.text[s:e], inside(ex.spans, s, e), ex.scheme, f"{ex.source}@{s}", inside(ex.inner, s, e))
            for s, e in cuts]


def tag_ids(ex: Example) -> list[int]:
    labels = {lab: i for i, lab in enumerate(bio_labels(ex.scheme))}
    out = [0] * len(ex.text)
    for s, e, lab in sorted(ex.spans, key=lambda sp: (sp[0], -sp[1])):
        if any(out[s:e]):
            continue  # nested: the outer span (first from the left, then longest) wins
        out[s] = labels[f"B-{lab}"]
        for i in range(s + 1, e):
            out[i] = labels[f"I-{lab}"]
    return out


def build_vocab(tokenizer, examples: list[Example]) -> CharVocab:
    """Characters the model can see: GB 2312, printable ASCII and every character of the training texts."""
    chars = gb2312_chars() | {chr(i) for i in range(33, 127)}
    for ex in examples:
        chars |= set(ex.text)
    return CharVocab.from_tokenizer(tokenizer, chars)


def predict(tagger, texts: list[str], scheme: str, nested: bool = True, assertions: bool = False,
            graph: bool = False) -> list[list[tuple]]:
    """Spans ``(start, end, label, confidence[, assertion])`` in ``scheme``'s own labels: from its head where the model
    has one, else from the tagger's graph output (every head, as the pipeline sees it) with each type mapped onto
    the scheme's labels (``ner.schema.scheme_label``; types it has no label for are dropped): how a model trained
    without a dataset is scored on it, and with ``graph`` how any model's pipeline output is. ``assertions``: each span's assertion by ``ner.assertions.assign`` (over
    the head's spans, or over the whole graph output)."""
    from core.records import Entity, Span
    from ner.assertions import assign

    out = []
    if scheme in tagger.labels and not graph:
        for text, found in zip(texts, tagger.spans(texts, scheme, nested)):
            if assertions:
                ents = assign(text, [Entity(span=Span(start=s, end=e, text=text[s:e]), type=entity_type(scheme, lab),
                                            confidence=min(1.0, c)) for s, e, lab, c in found])
                found = [(*sp, ent.assertion.value) for sp, ent in zip(found, ents)]
            out.append(found)
        return out
    for text, ents in zip(texts, tagger(texts)):
        if assertions:
            ents = assign(text, ents)
        out.append([(e.span.start, e.span.end, lab, e.confidence, *((e.assertion.value,) if assertions else ()))
                    for e in ents if (lab := scheme_label(scheme, e.type)) is not None])
    return out


def evaluate(tagger, examples: list[Example], nested: bool = True, assertion_fixture: dict | None = None,
             graph: bool = False) -> dict:
    """Strict scores per scheme on ``examples`` (each scored on its own scheme's head, or by the graph output mapped
    onto its labels where the model has no head for it: ``predict``), nested where the scheme nests: inner
    entities decoded and scored against ``Example.gold``; ``nested=False``: flat decoding against ``Example.spans``
    (a flattened file's outer spans); ``graph``: every scheme by the graph output. Each scheme's scores carry ``per_type`` and ``confusions``; with an
    ``assertion_fixture`` (``ner.data.load_assertion_fixture``) the examples it annotates are also scored on
    negated mentions of its label (span, label and assertion right): ``negated``, with ``rules_on_gold_spans``
    the same for the assertion rules over the gold spans (the rule stage alone, model-free)."""
    out = {}
    for scheme in sorted({e.scheme for e in examples}):
        exs = [e for e in examples if e.scheme == scheme]
        golds = [assertion_gold(e, assertion_fixture) if assertion_fixture else None for e in exs]
        pred = predict(tagger, [e.text for e in exs], scheme, nested, any(g is not None for g in golds), graph)
        out[scheme] = strict_scores((e.gold if nested else e.spans, p) for e, p in zip(exs, pred))
        if scheme not in tagger.labels or graph:
            out[scheme]["mapped_from"] = ("graph output" + ("" if graph else " (no head for this scheme)") +
                                          ": types mapped by ner.schema.scheme_label")
        rated = [(e, g, p) for e, g, p in zip(exs, golds, pred) if g is not None]
        if rated:
            label = next(iter({s[2] for _, g, _ in rated for s in g}), "")
            out[scheme]["negated"] = {"label": label, "texts": len(rated),
                                      **assertion_scores([(g, [(*s[:3], s[4]) for s in p]) for _, g, p in rated],
                                                         label, "negated"),
                                      "rules_on_gold_spans": assertion_scores(
                                          [(g, gold_assertions(e)) for e, g, _ in rated], label, "negated")}
    return out


def gold_assertions(ex: Example) -> list[tuple[int, int, str, str]]:
    """The assertion stage alone: ``ner.assertions.assign`` over an example's gold spans (every type, as a perfect
    tagger would give them), as (start, end, label, assertion): what negation scores would be if NER were exact."""
    from core.records import Entity, Span
    from ner.assertions import assign

    spans = sorted(ex.spans)
    ents = assign(ex.text, [Entity(span=Span(start=s, end=e, text=ex.text[s:e]), type=entity_type(ex.scheme, lab))
                            for s, e, lab in spans])
    return [(s, e, lab, ent.assertion.value) for (s, e, lab), ent in zip(spans, ents)]


def train(encoder_dir: Path, examples: list[Example], out_dir: Path, cfg: TrainConfig,
          log: Callable[[dict], None] = print) -> dict:
    import torch
    from transformers import AutoTokenizer, BertModel

    from core.hardware import probe
    from ner import crf
    from ner import model as nm
    from ner.backends import TorchBackend
    from ner.tagger import Tagger

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device visible to torch")
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else probe().native_bf16
    bf16 = native if cfg.bf16 is None else cfg.bf16

    schemes = sorted({e.scheme for e in examples})
    dev = [e for e in examples if held_out(e)]
    train_set = [p for e in examples if not held_out(e) for p in pieces(e, cfg.window)]
    if set(cfg.sample) - set(schemes):
        raise ValueError(f"sample names {sorted(set(cfg.sample) - set(schemes))}, not among the data's schemes {schemes}")
    if not dev or not train_set:
        raise ValueError(f"{len(examples)} annotated texts leave {len(dev)} held out and {len(train_set)} pieces to "
                         "train on: early stopping needs both (give a few dozen texts at least)")
    if (Path(encoder_dir) / nm.CONFIG).is_file():  # continue from a medkg NER model (its vocabulary and heads)
        net, vocab, _ = nm.load(Path(encoder_dir), full=True)
        new = sorted(set(schemes) - set(net.schemes))
        if new:  # a dataset the model was not trained on (CCKS 2017 on e5small-5): a fresh head for it
            add_heads(net, new)
            log({"event": "new_heads", "schemes": new})
        keep = list(range(net.encoder.config.vocab_size))
    else:
        tok = AutoTokenizer.from_pretrained(encoder_dir)
        vocab = build_vocab(tok, examples)
        keep = vocab.used_ids()
        vocab = vocab.remapped(keep)
        encoder = BertModel.from_pretrained(encoder_dir, add_pooling_layer=False)
        nm.prune_embeddings(encoder, keep)
        net = nm.NerModel(encoder, schemes, cfg.dropout)
    if cfg.crf and net.crf is None:
        net.add_crf()
    cfg = replace(cfg, crf=net.crf is not None)  # a CRF model keeps training as one: its decoding uses the scores
    hard = {s: tuple(t.to(device) for t in crf.constraints(bio_labels(s))) for s in schemes} if cfg.crf else {}
    net.to(device)

    feats = [([vocab.cls, *vocab.encode(e.text), vocab.sep], [-100, *tag_ids(e), -100], e.scheme) for e in train_set]
    steps_per_epoch = len(length_batches(feats, cfg.max_tokens, random.Random(0),
                                         epoch_sample(feats, cfg.sample, random.Random(0))))
    total = max(1, int(steps_per_epoch * cfg.epochs))
    opt, sched, _ = optimiser(net, lambda name: name.startswith(("heads.", "crf.")), cfg, total)

    meta = {"name": out_dir.name, "encoder": str(encoder_dir), "train": asdict(cfg), "schemes_trained": schemes,
            "examples": {"train_pieces": len(train_set), "held_out": len(dev)}, "steps": total, "bf16_autocast": bf16}
    log({"event": "start", **meta["examples"], "steps": total, "steps_per_epoch": steps_per_epoch, "vocab": len(keep)})

    ema, kept = moving_average(net, cfg.ema)
    rng = random.Random(cfg.seed)
    best, bad, step, t0 = -1.0, 0, 0, time.time()
    history = []
    stop = min(total, cfg.max_steps) if cfg.max_steps else total
    while step < stop:
        for batch in length_batches(feats, cfg.max_tokens, rng, epoch_sample(feats, cfg.sample, rng)):
            net.train()
            width = max(len(feats[i][0]) for i in batch)
            ids = torch.full((len(batch), width), vocab.pad, dtype=torch.long)
            tags = torch.full((len(batch), width), -100, dtype=torch.long)
            for r, i in enumerate(batch):
                x, y, _ = feats[i]
                ids[r, :len(x)], tags[r, :len(y)] = torch.tensor(x), torch.tensor(y)
            ids, tags = ids.to(device), tags.to(device)
            mask = (ids != vocab.pad).long()
            mask[:, 0] = 1
            row_schemes = [feats[i][2] for i in batch]
            loss = batch_loss(net, ids, mask, tags, row_schemes, hard, bf16)
            loss.backward()
            if cfg.adversarial > 0:
                with fgm(net.encoder.embeddings.word_embeddings.weight, cfg.adversarial):
                    batch_loss(net, ids, mask, tags, row_schemes, hard, bf16).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(net)
            step += 1
            if step % 20 == 0 or step <= 3:
                log({"event": "step", "step": step, "loss": round(loss.item(), 4),
                     "elapsed_s": round(time.time() - t0)})
            if step % cfg.eval_every == 0 or step >= stop:
                kept.eval()
                backend = TorchBackend(kept, "bf16" if bf16 else "fp32") if device.type == "cpu" else \
                    DeviceBackend(kept, bf16)
                scores = evaluate(Tagger(backend, vocab, nm.decoding_meta(kept)), dev)
                f1 = float(np.mean([s["micro"]["f1"] for s in scores.values()]))
                history.append({"step": step, "f1": {k: v["micro"]["f1"] for k, v in scores.items()}})
                log({"event": "eval", "step": step, "held_out_f1": history[-1]["f1"], "mean": round(f1, 4),
                     "elapsed_s": round(time.time() - t0)})
                if f1 > best:
                    best, bad = f1, 0
                    nm.save(kept.to("cpu"), vocab, out_dir, {**meta, "best_step": step, "held_out": scores,
                                                             "history": history}, checkpoint=True)
                    kept.to(device)
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        log({"event": "early_stop", "step": step})
                        stop = step
            if step >= stop:
                break
    meta = json.loads((out_dir / nm.CONFIG).read_text(encoding="utf-8"))
    meta["history"] = history
    meta["train_seconds"] = round(time.time() - t0)
    (out_dir / nm.CONFIG).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return meta


class DeviceBackend:
    """``ner.backends.TorchBackend``'s call shape for a model on another device (a GPU): inputs moved there, BF16
    autocast on that device, logits back as numpy. Used for held-out scoring during training only."""

    name = "torch-device"

    def __init__(self, model, bf16: bool):
        self.model, self.bf16 = model.eval(), bf16
        self.device = next(model.parameters()).device

    def pad_to(self, width: int) -> int:
        from ner.backends import pad32

        return pad32(width)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device))
        return {k: v.float().cpu().numpy() for k, v in out.items()}


def add_heads(net, schemes: list[str]) -> None:
    """Fresh BIO heads (and, on a CRF model, zero start/transition scores) for schemes a trained model lacks."""
    import torch
    from torch import nn

    hidden = net.encoder.config.hidden_size
    for s in schemes:
        n = len(bio_labels(s))
        net.heads[s] = nn.Linear(hidden, n)
        if net.crf is not None:
            net.crf[f"{s}_start"] = nn.Parameter(torch.zeros(n))
            net.crf[f"{s}_trans"] = nn.Parameter(torch.zeros(n, n))
        net.schemes.append(s)


def batch_loss(net, ids, mask, tags, row_schemes: list[str], hard: dict, bf16: bool):
    """Mean loss per character of one batch, each row on its own scheme's head: the CRF's negative
    log-likelihood where ``net`` has a CRF (``hard``: each scheme's constraint scores), else cross-entropy."""
    import torch

    from ner import crf

    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = net(ids, mask)
    loss = 0.0
    for scheme in sorted(set(row_schemes)):
        rows = torch.tensor([s == scheme for s in row_schemes], device=ids.device)
        logits = out[scheme][rows].float()
        if net.crf is not None:
            start, trans = hard[scheme]
            loss = loss + crf.nll(logits, tags[rows], start + net.crf[f"{scheme}_start"], trans + net.crf[f"{scheme}_trans"])
        else:
            loss = loss + torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tags[rows].reshape(-1),
                                                            ignore_index=-100, reduction="sum")
    return loss / max(int((tags != -100).sum()), 1)


@contextmanager
def fgm(weight, eps: float):
    """Fast gradient method (Miyato et al. 2017): inside the block ``weight`` is moved ``eps`` along its current
    gradient (L2-normalised), so a second backward adds the loss of that worst-case nudge of the embeddings;
    the weight is restored on exit. A regulariser; on top of a CRF-trained e5-small it gained nothing measurable
    (model card, run 11)."""
    import torch

    if weight.grad is None or not weight.grad.any():
        yield
        return
    saved = weight.data.clone()
    weight.data.add_(weight.grad, alpha=eps / torch.linalg.vector_norm(weight.grad).item())
    try:
        yield
    finally:
        weight.data.copy_(saved)


def optimiser(net, is_head: Callable[[str], bool], cfg, total: int):
    """AdamW with the encoder at ``cfg.lr`` and the parameters whose names ``is_head`` accepts at
    ``cfg.head_lr``, linear warm-up over ``cfg.warmup`` of ``total`` steps then linear decay; returns
    (optimiser, scheduler, warm-up steps). Shared by the NER and relation trainers."""
    import torch

    head = [p for n, p in net.named_parameters() if is_head(n)]
    body = [p for n, p in net.named_parameters() if not is_head(n)]
    opt = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}],
                            weight_decay=cfg.weight_decay)
    warm = max(1, int(total * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    return opt, sched, warm


def epoch_sample(feats, fractions: dict[str, float], rng: random.Random) -> list[int]:
    """Indices of one epoch's training pieces: all of them, except that a scheme named in ``fractions`` gives
    only that share of its pieces, drawn anew each epoch (so a large dataset does not drown a small one)."""
    out = []
    for scheme in sorted({f[2] for f in feats}):
        idx = [i for i, f in enumerate(feats) if f[2] == scheme]
        share = fractions.get(scheme, 1.0)
        out += idx if share >= 1.0 else rng.sample(idx, max(1, round(share * len(idx))))
    return out


def moving_average(net, decay: float):
    """(averager, the model to evaluate and store): with ``decay`` > 0 an exponential moving average of
    ``net``'s weights (call ``averager.update_parameters(net)`` after each step; smoother than the last
    weights), else (None, ``net``). Shared by the NER and relation trainers."""
    import torch

    if decay <= 0:
        return None, net
    ema = torch.optim.swa_utils.AveragedModel(net, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay))
    return ema, ema.module


def length_batches(feats, max_tokens: int, rng: random.Random, idx: list[int] | None = None) -> list[list[int]]:
    """Length-bucketed batches of ``idx`` (default: all) in random order: shuffle, sort within pools of ~50
    batches, cut by budget."""
    idx = list(range(len(feats))) if idx is None else list(idx)
    rng.shuffle(idx)
    out = []
    pool = max(1, 50 * max_tokens // 128)
    for k in range(0, len(idx), pool):
        chunk = sorted(idx[k:k + pool], key=lambda i: len(feats[i][0]))
        cur: list[int] = []
        for i in chunk:
            if cur and (len(cur) + 1) * len(feats[i][0]) > max_tokens:
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


__all__ = ["TrainConfig", "evaluate", "pieces", "tag_ids", "train"]


def refit_heads(model_dir: Path, examples: list[Example], out_dir: Path, epochs: int = 4, lr: float = 2e-3,
                seed: int = 13, log: Callable[[dict], None] = print) -> dict:
    """Re-fit only the heads of the schemes in ``examples`` on the frozen encoder (features computed once).

    Minutes instead of hours: used when a dataset's labels were repaired after the encoder was trained.
    A CRF model's transition scores stay as they were (the heads are re-fitted per character).
    """
    import torch

    from ner import model as nm
    from ner.backends import TorchBackend
    from ner.tagger import Tagger, batches

    torch.manual_seed(seed)
    net, vocab, meta = nm.load(Path(model_dir))
    add_heads(net, sorted({e.scheme for e in examples} - set(net.schemes)))  # e.g. a ccks17 head on e5small-5
    dev = [e for e in examples if held_out(e)]
    train_set = [p for e in examples if not held_out(e) for p in pieces(e, 254)]
    t0 = time.time()
    for scheme in sorted({e.scheme for e in train_set}):
        exs = [e for e in train_set if e.scheme == scheme]
        feats, tags = [], []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            for batch in batches([len(e.text) for e in exs], 8192):
                width = max(len(exs[i].text) for i in batch) + 2
                ids = torch.full((len(batch), width), vocab.pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    row = [vocab.cls, *vocab.encode(exs[i].text), vocab.sep]
                    ids[r, :len(row)], mask[r, :len(row)] = torch.tensor(row), 1
                h = net.encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                for r, i in enumerate(batch):
                    n = len(exs[i].text)
                    feats.append(h[r, 1:n + 1].clone())
                    tags.append(torch.tensor(tag_ids(exs[i])))
        x, y = torch.cat(feats), torch.cat(tags)
        log({"event": "features", "scheme": scheme, "chars": len(y), "elapsed_s": round(time.time() - t0)})
        head = net.heads[scheme]
        opt = torch.optim.Adam(head.parameters(), lr=lr)
        for epoch in range(epochs):
            perm = torch.randperm(len(y))
            for k in range(0, len(y), 4096):
                idx = perm[k:k + 4096]
                loss = torch.nn.functional.cross_entropy(head(x[idx]), y[idx])
                loss.backward()
                opt.step()
                opt.zero_grad()
            log({"event": "head_epoch", "scheme": scheme, "epoch": epoch + 1, "loss": round(loss.item(), 4)})
    net.eval()
    scores = evaluate(Tagger(TorchBackend(net, "fp32"), vocab, {**meta, **nm.decoding_meta(net)}), dev)
    log({"event": "eval", "held_out_f1": {k: v["micro"]["f1"] for k, v in scores.items()}})
    meta = {k: v for k, v in meta.items() if k != "schemes"}
    meta.setdefault("refits", []).append({"schemes": sorted(scores), "epochs": epochs, "lr": lr,
                                         "held_out": {k: v["micro"] for k, v in scores.items()}})
    nm.save(net, vocab, out_dir, meta)
    return meta
