"""Export one head of a medkg NER model as a standard Hugging Face ``BertForTokenClassification``
directory with a fast character-level tokenizer: what other tools (and the naive baseline of
``benchmarks/ner.py``, ``pipeline("token-classification")``) can load without medkg. A CRF-trained model's
transition scores (``ner.json``) have no place in that class: the export gives the per-character scores,
which medkg decodes together with them."""

from __future__ import annotations

from pathlib import Path


def to_hf(model_dir: Path, out_dir: Path, scheme: str = "yidu") -> Path:
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast

    from ner.model import load

    net, vocab, meta = load(Path(model_dir))
    labels = meta["schemes"][scheme]
    # A WordLevel vocabulary needs one token per id, but several characters share a row (Ｔ and T):
    # give every extra character a copy of its row, so the export computes exactly what medkg does.
    emb = net.encoder.embeddings.word_embeddings.weight.data
    rows, words, seen = [emb], {}, {vocab.cls, vocab.sep, vocab.pad, vocab.unk}
    for c, i in vocab.ids.items():
        if i in seen:
            rows.append(emb[i:i + 1])
            i = emb.shape[0] + len(rows) - 2
        seen.add(i)
        words[c] = i
    space = vocab.space if vocab.space not in vocab.ids.values() else None
    if space is None:
        rows.append(emb[vocab.space:vocab.space + 1])
        space = emb.shape[0] + len(rows) - 2
    net.encoder.embeddings.word_embeddings = torch.nn.Embedding.from_pretrained(torch.cat(rows), freeze=False)
    config = BertConfig.from_pretrained(model_dir)
    config.vocab_size = net.encoder.embeddings.word_embeddings.num_embeddings
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {lab: i for i, lab in enumerate(labels)}
    hf = BertForTokenClassification(config)
    hf.bert.load_state_dict(net.encoder.state_dict(), strict=False)
    with torch.no_grad():
        hf.classifier.weight.copy_(net.heads[scheme].weight)
        hf.classifier.bias.copy_(net.heads[scheme].bias)
    hf.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out_dir)

    special = {"<s>": vocab.cls, "</s>": vocab.sep, "<pad>": vocab.pad, "<unk>": vocab.unk}
    words = {**words, " ": space, **special}
    tok = Tokenizer(models.WordLevel(vocab=words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[
        ("<s>", vocab.cls), ("</s>", vocab.sep)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                            sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
                            model_max_length=config.max_position_embeddings).save_pretrained(out_dir)
    return out_dir
