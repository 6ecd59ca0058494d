"""`medkg ner train|eval|tag`: thin drivers over ner/ (no logic here)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

ner_app = typer.Typer(no_args_is_help=True, help="Clinical named-entity recognition.")
err = Console(stderr=True)


def encoder_dir() -> Path:
    """The e5-small encoder built by `medkg models prepare` (built now if missing: offline, ~7 s)."""
    from core.settings import get_settings
    from ner.encoder import prepare_encoder

    return prepare_encoder(get_settings().models, report=lambda m: err.print(m))


def read_texts(file: str, errors: str, lines: bool) -> list[str]:
    """The texts of a UTF-8 file or standard input (``-``): the whole of it, or one per line."""
    raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    try:
        text = raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as exc:
        err.print(f"[red]invalid UTF-8[/] at byte {exc.start}: {exc.reason} (use --errors replace to go on)")
        raise typer.Exit(2) from exc
    return text.splitlines() if lines else [text]


def json_log(path: Path | None) -> Callable[[dict], None]:
    """A training logger: each event as one JSON line on stderr, and appended to ``path`` when given."""
    fh = path.open("a", encoding="utf-8") if path else None

    def emit(rec: dict) -> None:
        line = json.dumps(rec, ensure_ascii=False)
        err.print(line, highlight=False, soft_wrap=True)
        if fh:
            fh.write(line + "\n")
            fh.flush()

    return emit


def parse_sample(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        scheme, _, share = item.partition("=")
        try:
            out[scheme] = float(share)
        except ValueError:
            raise typer.BadParameter(f"--sample {item!r}: expected SCHEME=FRACTION, e.g. cmeee=0.5") from None
        if not 0 < out[scheme] <= 1:
            raise typer.BadParameter(f"--sample {item!r}: the fraction must be in (0, 1]")
    return out


@ner_app.command("train")
def ner_train(
    data: Annotated[list[Path], typer.Argument(help="annotation files (Yidu-S4K, CMeEE official or flat, cMedQANER, "
                                                    "BIO) or CCKS 2017 directories / files")],
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("models/ner"),
    encoder: Annotated[Path | None, typer.Option(help="Hugging Face encoder directory (default: e5-small), or a medkg NER model to continue training")] = None,
    scheme: Annotated[str | None, typer.Option(help="label scheme of BIO files")] = None,
    epochs: float = 3.0, lr: float = 8e-5, max_tokens: int = 3072, seed: int = 13, eval_every: int = 300,
    patience: int = 4, log: Annotated[Path | None, typer.Option(help="JSON-lines training log")] = None,
    ema: Annotated[float, typer.Option(help="> 0: keep a moving average of the weights with this decay")] = 0.0,
    sample: Annotated[list[str] | None, typer.Option(help="SCHEME=FRACTION: draw only that share of a "
                                                          "dataset's pieces each epoch (repeatable)")] = None,
    crf: Annotated[bool, typer.Option(help="learn transition scores by sequence likelihood (a CRF) instead of "
                                           "a loss per character")] = False,
    adversarial: Annotated[float, typer.Option(help="> 0: FGM, also train on word embeddings moved this far (L2) "
                                                    "along the loss gradient; doubles the step's cost")] = 0.0,
    heads_only: Annotated[bool, typer.Option(help="re-fit only these datasets' heads on a trained model's frozen "
                                                   "encoder (--encoder names the model)")] = False,
    part: Annotated[str, typer.Option(help="side of a dataset's fixed reporting split to train on (CCKS 2017: record "
                                           "N is test when N % 5 == 0); only 'train': the test part is reporting "
                                           "only")] = "train",
    max_steps: Annotated[int | None, typer.Option(help="stop after this many optimiser steps (a smoke test of a "
                                                       "training command; the schedule stays that of --epochs)")] = None,
    device: Annotated[str, typer.Option(help="cpu, or cuda to train on a GPU (BF16 autocast where it has it; not yet "
                                             "run on one)")] = "cpu",
) -> None:
    """Fine-tune the encoder with one BIO head per dataset; early stopping on a held-out 10 % of the data."""
    from ner.data import load
    from ner.train import TrainConfig, train

    if part != "train":
        raise typer.BadParameter(f"--part {part!r}: only the training part may be trained on (a fixed split's test "
                                 "part is for reporting only)")
    examples = [e for p in data for e in load(p, scheme=scheme, part=part)]
    emit = json_log(log)
    if heads_only:
        from ner.train import refit_heads

        if encoder is None:
            raise typer.BadParameter("--heads-only needs --encoder naming a trained medkg NER model")
        refit_heads(encoder, examples, out, log=emit)
        emit({"event": "done", "out": str(out)})
        return
    cfg = TrainConfig(epochs=epochs, lr=lr, max_tokens=max_tokens, seed=seed, eval_every=eval_every,
                      patience=patience, ema=ema, crf=crf, adversarial=adversarial, sample=parse_sample(sample or []),
                      max_steps=max_steps, device=device, extra={"data": [str(p) for p in data], "part": part})
    try:
        meta = train(encoder or encoder_dir(), examples, out, cfg, emit)
    except ValueError as exc:  # data that cannot train (nothing held out, a scheme the data lacks …)
        err.print(f"[red]ner train:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    emit({"event": "done", "out": str(out), "best_step": meta.get("best_step")})


CCKS17_NEGATION = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "negation_labels.jsonl"


@ner_app.command("eval")
def ner_eval(
    data: Annotated[Path, typer.Argument(help="annotated file to score (strict spans), or a CCKS 2017 directory / file")],
    model: Annotated[Path | None, typer.Option(help="model directory (default: shipped)")] = None,
    backend: Annotated[str, typer.Option(help="auto | torch-fp32 | torch-bf16 | torch-int8 | openvino-…")] = "auto",
    scheme: Annotated[str | None, typer.Option(help="label scheme of BIO files")] = None,
    part: Annotated[str, typer.Option(help="side of a dataset's fixed reporting split: test (default, the reporting "
                                           "part), train or all (CCKS 2017; other files are one part each)")] = "test",
    negation: Annotated[Path | None, typer.Option(help="assertion fixture (our labels, offsets and text hashes) for "
                                                       "negated-mention P/R; default for CCKS 2017: "
                                                       "tests/fixtures/negation_labels.jsonl")] = None,
    save: Annotated[Path | None, typer.Option(help="also write the report, with the command, to this JSON file")] = None,
    graph: Annotated[bool, typer.Option("--graph", help="score the tagger's graph output (every head merged, types "
                                                        "mapped onto the data's labels) instead of the data's own "
                                                        "head")] = False,
) -> None:
    """Strict span precision, recall and F1, micro and per type, the type confusions on exact spans, and (CCKS 2017,
    with an assertion fixture) negated symptoms and signs found with the right assertion, as JSON."""
    import platform
    import time

    from ner.data import load, load_assertion_fixture
    from ner.tagger import Tagger
    from ner.train import evaluate

    examples = load(data, scheme=scheme, part=part)
    if negation is None and examples and examples[0].scheme == "ccks17" and CCKS17_NEGATION.is_file():
        negation = CCKS17_NEGATION
    fixture = load_assertion_fixture(negation) if negation else None
    tagger = Tagger.load(model, backend)
    t0 = time.time()
    scores = evaluate(tagger, examples, assertion_fixture=fixture, graph=graph)
    shown = negation
    if negation is not None and negation.resolve().is_relative_to(Path.cwd()):
        shown = negation.resolve().relative_to(Path.cwd())
    report = {"data": str(data), "part": part if examples and examples[0].scheme == "ccks17" else None,
              "texts": len(examples), "model": tagger.name, "negation_fixture": str(shown) if negation else None,
              "scores": scores}
    sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    if save:
        report = {"command": "medkg ner " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None,
                  "seconds": round(time.time() - t0, 1), "machine": platform.machine(), **report}
        save.parent.mkdir(parents=True, exist_ok=True)
        save.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@ner_app.command("tag")
def ner_tag(
    file: Annotated[str, typer.Argument(help="a UTF-8 text file, or - for standard input")],
    model: Annotated[Path | None, typer.Option(help="model directory (default: shipped)")] = None,
    backend: Annotated[str, typer.Option(help="auto | torch-fp32 | torch-bf16 | torch-int8 | openvino-…")] = "auto",
    errors: Annotated[str, typer.Option(help="invalid UTF-8: 'strict' (exit 2) or 'replace' (U+FFFD, one per bad "
                                             "byte; offsets index the decoded text)")] = "strict",
    lines: Annotated[bool, typer.Option("--lines", help="one text per line instead of the whole file")] = False,
) -> None:
    """Entities (type, offsets, assertion, confidence) of a text, as JSON."""
    from ner.assertions import assign
    from ner.tagger import Tagger

    texts = read_texts(file, errors, lines)
    tagger = Tagger.load(model, backend)
    for t, ents in zip(texts, tagger(texts)):
        ents = assign(t, ents)
        sys.stdout.write(json.dumps({"text": t if len(t) <= 2000 else t[:2000] + "…", "chars": len(t),
                                     "model": tagger.name, "entities": [e.model_dump(mode="json") for e in ents]},
                                    ensure_ascii=False) + "\n")
