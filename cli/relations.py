"""`medkg relations train|eval|extract`: thin drivers over relations/ (no logic here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.ner import json_log, read_texts

relations_app = typer.Typer(no_args_is_help=True, help="Relation extraction: clinical triples with provenance.")
err = Console(stderr=True)


@relations_app.command("train")
def relations_train(
    data: Annotated[Path, typer.Argument(help="CMeIE-format JSON lines (e.g. ../shared/data/re/cmeie/CMeIE_dev.json); "
                                              "only the train part of the md5 split is used")],
    schemas: Annotated[Path, typer.Argument(help="the 53 schemas, JSON lines (53_schemas.json)")],
    out: Annotated[Path, typer.Option(help="model directory to write")] = Path("models/relations"),
    encoder: Annotated[Path, typer.Option(help="a medkg NER model (its encoder and vocabulary start the training), "
                                               "or a relation model to continue")] = Path("models/ner"),
    epochs: float = 8.0, lr: float = 6e-5, max_tokens: int = 1024, seed: int = 13, eval_every: int = 100,
    patience: int = 3, ema: Annotated[float, typer.Option(help="> 0: keep a moving average of the weights "
                                                            "(decay per step, e.g. 0.998)")] = 0.0,
    log: Annotated[Path | None, typer.Option(help="JSON-lines training log")] = None,
) -> None:
    """Fine-tune the joint span + pair model; the checkpoint is picked on the train part's tune slice."""
    from relations.data import load_cmeie, load_schemas, part
    from relations.train import TrainConfig, train

    examples = [e for e in load_cmeie(data) if part(e.text) != "test"]
    emit = json_log(log)
    cfg = TrainConfig(epochs=epochs, lr=lr, max_tokens=max_tokens, seed=seed, eval_every=eval_every, patience=patience,
                      ema=ema)
    meta = train(encoder, examples, load_schemas(schemas), out, cfg, emit)
    emit({"event": "done", "out": str(out), "best_step": meta.get("best_step")})


@relations_app.command("eval")
def relations_eval(
    data: Annotated[Path, typer.Argument(help="CMeIE-format JSON lines")],
    part: Annotated[str, typer.Option(help="test | tune | train | all: which part of the md5 split to score")] = "test",
    model: Annotated[Path | None, typer.Option(help="model directory (default: shipped)")] = None,
) -> None:
    """Triple precision, recall and F1 (exact subject, predicate and object strings), micro and per predicate."""
    from relations.data import load_cmeie
    from relations.data import part as part_of
    from relations.extract import RelationExtractor
    from relations.train import evaluate

    if part not in ("test", "tune", "train", "all"):
        raise typer.BadParameter("--part must be test, tune, train or all")
    examples = [e for e in load_cmeie(data) if part == "all" or part_of(e.text) == part]
    extractor = RelationExtractor.load(model)
    got = evaluate(extractor, examples)
    sys.stdout.write(json.dumps({"data": str(data), "part": part, "texts": len(examples), "model": extractor.name,
                                 **got}, ensure_ascii=False) + "\n")


@relations_app.command("extract")
def relations_extract(
    file: Annotated[str, typer.Argument(help="a UTF-8 text file, or - for standard input")],
    lines: Annotated[bool, typer.Option("--lines", help="one text per line instead of the whole file")] = False,
    errors: Annotated[str, typer.Option(help="invalid UTF-8: 'strict' (exit 2) or 'replace'")] = "strict",
    ner_model: Annotated[Path | None, typer.Option(help="NER model directory (default: shipped)")] = None,
    ner_backend: Annotated[str, typer.Option(help="auto | torch-fp32 | openvino-… (see `medkg ner tag`)")] = "auto",
    model: Annotated[Path | None, typer.Option(help="relation model directory (default: shipped)")] = None,
) -> None:
    """Entities (NER first, with assertions) and triples with evidence spans of a text, as JSON."""
    from relations.stage import RelationStage

    texts = read_texts(file, errors, lines)
    stage = RelationStage.load(ner_model, ner_backend, model)
    for text, (entities, relations) in zip(texts, stage(texts)):
        sys.stdout.write(json.dumps({
            "text": text if len(text) <= 2000 else text[:2000] + "…", "chars": len(text), "model": stage.name,
            "entities": [e.model_dump(mode="json") for e in entities],
            "relations": [r.model_dump(mode="json") for r in relations]}, ensure_ascii=False) + "\n")
