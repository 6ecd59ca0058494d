"""The token-classification network: one BERT-family encoder, one linear BIO head per scheme.

Storage (``save``/``load``): the shipped directory must stay small (≤ 40 MB), so every 2-D weight is
stored as int8 with one fp32 scale per 64 weights of a row (symmetric, weight-only) and dequantised to fp32
on load; biases and LayerNorms stay fp32. Inference then runs in whatever precision the backend chooses; the
F1 figures in the model card are measured on the weights as stored, i.e. after this round trip.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ner.chars import CharVocab
from ner.modeldir import CHECKPOINT, CONFIG, VOCAB, WEIGHTS, load_meta
from ner.schema import bio_labels


class NerModel(nn.Module):
    def __init__(self, encoder, schemes: list[str], dropout: float = 0.1, crf: bool = False):
        super().__init__()
        self.encoder = encoder
        self.schemes = list(schemes)
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({s: nn.Linear(hidden, len(bio_labels(s))) for s in self.schemes})
        self.crf = None
        if crf:
            self.add_crf()

    def add_crf(self) -> None:
        """Learned start/transition scores per scheme (``ner.crf``), zero at first: decoding starts as before."""
        n = {s: len(bio_labels(s)) for s in self.schemes}
        self.crf = nn.ParameterDict({f"{s}_{k}": nn.Parameter(torch.zeros(*shape)) for s in self.schemes
                                     for k, shape in (("start", (n[s],)), ("trans", (n[s], n[s])))})

    def transitions(self) -> dict[str, dict[str, list]]:
        """The learned scores as plain lists, for ``ner.json`` (what decoding adds to its masks); {} without a CRF."""
        if self.crf is None:
            return {}
        return {s: {k: self.crf[f"{s}_{k}"].detach().float().tolist() for k in ("start", "trans")}
                for s in self.schemes}

    def forward(self, input_ids, attention_mask) -> dict[str, torch.Tensor]:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        h = self.dropout(h)
        return {s: head(h) for s, head in self.heads.items()}


def prune_embeddings(encoder, keep: list[int]) -> None:
    """Cut the word-embedding matrix to the rows ``keep`` (in that order): 250k rows → a few thousand."""
    old = encoder.embeddings.word_embeddings
    new = nn.Embedding(len(keep), old.embedding_dim)
    new.weight.data = old.weight.data[torch.tensor(keep)].clone()
    encoder.embeddings.word_embeddings = new
    encoder.config.vocab_size = len(keep)
    encoder.config.pad_token_id = None  # the old pad id no longer indexes this matrix


GROUP = 64  # columns per int8 scale: a per-row scale is set by the row's largest weight, which costs accuracy


def int8_groups(state: dict[str, torch.Tensor], group: int = GROUP) -> dict[str, torch.Tensor]:
    """A state dict as stored: every 2-D weight as int8 + one fp32 scale per ``group`` consecutive weights of a
    row (per row where the row does not divide; symmetric), the rest fp32."""
    out = {}
    for name, t in state.items():
        t = t.detach().float().contiguous()
        if t.dim() == 2 and t.shape[1] > 1:
            g = group if t.shape[1] % group == 0 else t.shape[1]
            blocks = t.reshape(t.shape[0], -1, g)
            scale = blocks.abs().amax(dim=2, keepdim=True).clamp(min=1e-12) / 127.0
            out[name + ".q8"] = torch.round(blocks / scale).clamp(-127, 127).to(torch.int8).reshape(t.shape)
            out[name + ".scale"] = scale.squeeze(2).contiguous()
        else:
            out[name] = t
    return out


def from_int8_groups(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`int8_groups` (dequantised to fp32); a 1-D scale is one per row (older models)."""
    out = {}
    for name, t in raw.items():
        if name.endswith(".q8"):
            base = name[:-3]
            scale = raw[base + ".scale"].reshape(t.shape[0], -1, 1)
            out[base] = (t.float().reshape(t.shape[0], scale.shape[1], -1) * scale).reshape(t.shape)
        elif not name.endswith(".scale"):
            out[name] = t
    return out


def save(model: NerModel, vocab: CharVocab, out_dir: Path, meta: dict, checkpoint: bool = False) -> None:
    """The compact model directory; ``checkpoint`` also writes the fp32 weights beside it (``CHECKPOINT``, for
    training on without re-quantising each time; not part of a shipped model)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
             if not k.startswith("crf.")}  # those go to ner.json
    save_file(int8_groups(state), str(out_dir / WEIGHTS), metadata={"format": "medkg-ner-int8-groups"})
    if checkpoint:
        save_file(state, str(out_dir / CHECKPOINT), metadata={"format": "medkg-ner-fp32"})
    model.encoder.config.save_pretrained(out_dir)
    vocab.save(out_dir / VOCAB)
    (out_dir / CONFIG).write_text(json.dumps({**meta, **decoding_meta(model)}, ensure_ascii=False, indent=2) + "\n",
                                  encoding="utf-8")


def decoding_meta(model: NerModel) -> dict:
    """What a ``Tagger`` needs besides the network: each scheme's labels and, after CRF training, transitions."""
    learned = model.transitions()
    return {"schemes": {s: bio_labels(s) for s in model.schemes}, **({"transitions": learned} if learned else {})}


def load(model_dir: Path, full: bool = False) -> tuple[NerModel, CharVocab, dict]:
    """The network as stored; ``full``: from the fp32 training checkpoint where the directory has one."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    vocab, meta = load_meta(model_dir)
    config = BertConfig.from_pretrained(model_dir)
    learned = meta.get("transitions", {})
    model = NerModel(BertModel(config, add_pooling_layer=False), list(meta["schemes"]), crf=bool(learned))
    if full and (model_dir / CHECKPOINT).is_file():
        state = load_file(str(model_dir / CHECKPOINT))
    else:
        state = from_int8_groups(load_file(str(model_dir / WEIGHTS)))
    state.update({f"crf.{s}_{k}": torch.tensor(v) for s, kv in learned.items() for k, v in kv.items()})
    model.load_state_dict(state)
    model.eval()
    return model, vocab, meta
