r"""Command line: train the LLM2Rec item encoder, build a model bundle from a preset (with the raw backbone or a
trained encoder), or check that the backbone generates sensible text.

    python -m training.llm2rec.cli train --preset cpu \
        --datasets ../shared/data/amazon-games ../shared/data/movielens-small
    python -m training.llm2rec.cli bundle --preset quick --encoder runs/cpu \
        --datasets ../shared/data/amazon-games --out bundles/llm2rec-cpu
    python -m training.llm2rec.cli bundle --preset quick --datasets ../shared/data/amazon-games --out bundles/quick
    python -m training.llm2rec.cli generate --prompt "What is the capital of France?"
    python -m training.llm2rec.cli evaluate --out-of-domain my-data --source mine=bundle:bundles/quick \
        --methods popularity id-sasrec mine-sasrec          (training/llm2rec/evaluate.py has the whole protocol)
"""

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import backbone as backbones
from . import evaluate as evaluation
from .data import Dataset, first_users, leave_one_out, load_dataset
from .encoder import ItemEncoder, embed_catalogue, embed_titles
from .export import GRAPHS, export_graph, verify_graph, write_manifest
from .presets import PRESETS, Preset
from .sasrec import SASRec, Adapter
from .tokens import TitleTokenizer, bundle_tokenizer
from .train_config import PRESETS as TRAIN_PRESETS, resolve
from .train_encoder import dry_run, train as train_encoder
from .train_sequence import EmbeddingItemTable, TrainingPart, evaluate, left_pad, popularity, train

SAMPLES = 10


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Timer:
    """Collects how long each named step took and prints it as it goes."""

    def __init__(self):
        self.steps: dict[str, float] = {}

    def __call__(self, name: str, started: float) -> None:
        self.steps[name] = time.time() - started
        print(f"[{name}] {self.steps[name]:.1f}s", flush=True)


def embedding_cache_file(backbone: backbones.Backbone, preset: Preset, dataset: Dataset) -> Path:
    """Everything that determines a catalogue's embeddings goes into the file name."""
    titles_sha = hashlib.sha256("\n".join(dataset.titles).encode()).hexdigest()
    key = f"{backbone.weights_sha256[:12]}-L{preset.layers}-{preset.attention}-t{preset.max_tokens}-{titles_sha[:12]}"
    return backbones.cache_root() / "embeddings" / f"{dataset.name}-{key}.npy"


def sample_indices(dataset: Dataset, tokenizer: TitleTokenizer) -> list[int]:
    """Evenly spread catalogue items plus the title with the most tokens (so the samples exercise truncation)."""
    longest = max(range(len(dataset.titles)), key=lambda i: len(tokenizer.encode([dataset.titles[i]])[0]))
    spread = np.linspace(0, len(dataset.titles) - 1, SAMPLES - 1).astype(int).tolist()
    return spread + [longest]


def verify_bundle(out_dir: Path, encoder: ItemEncoder, adapter: Adapter, sasrec: SASRec, tokenizer: TitleTokenizer,
                  titles: list[str]) -> dict[str, float]:
    """Compare every ONNX graph with PyTorch on real titles and on left-padded histories of various lengths."""
    input_ids, attention_mask = tokenizer.pad(tokenizer.encode(titles))
    with torch.no_grad():
        item_embeddings = encoder(input_ids, attention_mask)
        vectors = adapter(item_embeddings)
    # History lengths 1, 2, ..., a full window and one longer than the window (cut to the most recent items),
    # plus an empty one; padded to max_history as the server does, and to a shorter width (dynamic length axis).
    lengths = [1, 2, 3, sasrec.max_history, sasrec.max_history + 3, 0]
    histories = [[(start + j) % len(titles) for j in range(n)] for start, n in enumerate(lengths)]
    diffs = {"encoder": verify_graph("encoder", encoder, (input_ids, attention_mask), out_dir),
             "adapter": verify_graph("adapter", adapter, (item_embeddings,), out_dir)}
    for width in (sasrec.max_history, 4):
        indices, mask = left_pad(histories, width)
        diffs[f"sequence_model (length {width})"] = verify_graph("sequence_model", sasrec, (vectors[indices], mask), out_dir)
    return diffs


@dataclass
class BuiltBundle:
    """What build_bundle wrote, and the PyTorch modules it exported (the tests compare the two)."""

    path: Path
    manifest: dict
    tokenizer: TitleTokenizer
    encoder: ItemEncoder
    adapter: Adapter
    sasrec: SASRec


def load_training_data(preset: Preset, dataset_paths: list[str]) -> list[Dataset]:
    datasets = [load_dataset(path) for path in dataset_paths]
    if preset.max_users is not None:
        datasets = [first_users(d, preset.max_users) for d in datasets]
    for dataset in datasets:
        if not dataset.sequences:
            raise ValueError(f"{dataset.path} has no interactions: it cannot be used for training")
    return datasets


def evaluate_on_test(table: EmbeddingItemTable, sasrec: SASRec, parts: list[TrainingPart], log: dict,
                     epochs: int) -> dict:
    """Per dataset: test metrics of the trained model (top level), its validation metrics, and popularity."""
    metrics = {}
    with torch.no_grad():
        item_vectors = table()
    for part in parts:
        validation = log["epochs"][log["best_epoch"] - 1]["validation"][part.name]
        test = evaluate(sasrec, item_vectors[part.offset : part.offset + part.items], part.split.test_histories,
                        part.split.test_targets)
        metrics[part.name] = {
            "split": "test", **test,
            "validation": {k: v for k, v in validation.items() if k != "users"},
            "popularity": popularity(part.split, part.items),
            "protocol": "leave-one-out, full ranking over the dataset's catalogue, popularity counted on train",
            "best_epoch": log["best_epoch"], "epochs": epochs,
        }
        print(f"{part.name} test: R@10 {test['recall@10']:.4f} N@10 {test['ndcg@10']:.4f} | popularity "
              f"R@10 {metrics[part.name]['popularity']['test']['recall@10']:.4f} "
              f"N@10 {metrics[part.name]['popularity']['test']['ndcg@10']:.4f}")
    return metrics


def manifest_for(preset: Preset, backbone: backbones.Backbone, tokenizer: TitleTokenizer, item_dim: int,
                 datasets: list[Dataset], metrics: dict, samples: list[dict]) -> dict:
    """manifest.json as docs/bundle-format.md specifies it, but for `files` (added by write_manifest)."""
    now = datetime.now(timezone.utc)
    return {
        "format_version": 1,
        "model_version": f"{preset.name}-{'+'.join(d.name for d in datasets)}-{now:%Y%m%dT%H%M}",
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "preset": preset.name,
        "backbone": {
            "name": backbone.name,
            "architecture": backbone.model.config.model_type,
            "source": backbone.source,
            "weights_sha256": backbone.weights_sha256,
            "layers": preset.layers,
            "attention": preset.attention,
        },
        "dimensions": {"item_embedding": item_dim, "recommendation": preset.rec_dim},
        "tokenizer": {"file": "tokenizer.json", "max_length": tokenizer.max_length,
                      "pad_token_id": tokenizer.pad_token_id, "add_special_tokens": tokenizer.add_special_tokens},
        "pooling": "mean",
        "sequence_model": {"kind": "sasrec", "max_history": preset.max_history},
        "graphs": {name: {"file": file, "inputs": list(inputs), "outputs": list(outputs)}
                   for name, (file, inputs, outputs) in GRAPHS.items()},
        "training_data": [{"name": d.name, "path": d.path, "items": len(d.titles), "interactions": d.interactions}
                          for d in datasets],
        "metrics": metrics,
        "samples": samples,
    }


def build_bundle(preset: Preset, dataset_paths: list[str], out: Path, use_cache: bool = True,
                 encoder_run: Path | None = None) -> BuiltBundle:
    """The whole pipeline. With `encoder_run` (a finished `train` run directory) the item encoder is that run's
    trained model (its layers, bidirectional attention, its title length) instead of the preset's raw backbone;
    the adapter + SASRec are trained over its embeddings with the preset's sequence settings."""
    timer = Timer()
    seed_everything(preset.seed)

    started = time.time()
    if encoder_run is not None:
        backbone, record = backbones.load_trained(encoder_run)
        preset = replace(preset, name=f"{preset.name}+llm2rec-{record['preset']}", backbone="trained",
                         layers=record["backbone"]["layers"], attention=record["backbone"]["attention"],
                         max_tokens=record["config"]["title_max_tokens"])
    else:
        backbone = backbones.load_backbone(preset.backbone, preset.seed)
    tokenizer = TitleTokenizer(bundle_tokenizer(backbone.tokenizer), preset.max_tokens, backbone.tokenizer.pad_token_id)
    encoder = ItemEncoder(backbone.model.get_decoder(), preset.layers, preset.attention).eval()
    timer("load backbone", started)

    started = time.time()
    datasets = load_training_data(preset, dataset_paths)
    timer("load data", started)

    started = time.time()
    embeddings = [embed_catalogue(encoder, tokenizer, d.titles, preset.encode_batch_size,
                                  embedding_cache_file(backbone, preset, d) if use_cache else None,
                                  desc=f"encoding {d.name}")
                  for d in datasets]
    item_embeddings = torch.from_numpy(np.concatenate(embeddings))
    timer("encode catalogue", started)

    started = time.time()
    seed_everything(preset.seed)
    adapter = Adapter(encoder.item_dim, preset.rec_dim)
    sasrec = SASRec(preset.rec_dim, preset.max_history, preset.sasrec_layers, preset.sasrec_heads, preset.dropout)
    offsets = np.cumsum([0] + [len(d.titles) for d in datasets]).tolist()
    parts = [TrainingPart(d.name, offset, len(d.titles), leave_one_out(d.sequences))
             for d, offset in zip(datasets, offsets)]
    table = EmbeddingItemTable(item_embeddings, adapter)
    log = train(table, sasrec, parts, preset.epochs, preset.batch_size, preset.learning_rate, preset.weight_decay,
                preset.patience)
    timer("train sequence model", started)

    started = time.time()
    metrics = evaluate_on_test(table, sasrec, parts, log, preset.epochs)
    timer("evaluate test", started)

    # Build the bundle next to its final place and swap it in at the end: no half-written bundle is ever visible.
    started = time.time()
    out = Path(out)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    first = datasets[0]
    sample_titles = [first.titles[i] for i in sample_indices(first, tokenizer)]
    example_ids, example_mask = tokenizer.pad(tokenizer.encode(sample_titles))
    export_graph("encoder", encoder, (example_ids, example_mask), staging)
    export_graph("adapter", adapter, (item_embeddings[:2],), staging)
    history, history_mask = left_pad([[0, 1], [2]], preset.max_history)
    with torch.no_grad():
        export_graph("sequence_model", sasrec, (adapter(item_embeddings[:3])[history], history_mask), staging)
    tokenizer.tokenizer.save(str(staging / "tokenizer.json"), pretty=True)
    timer("export onnx", started)

    started = time.time()
    diffs = verify_bundle(staging, encoder, adapter, sasrec, tokenizer, sample_titles + first.titles[:22])
    print("onnxruntime vs PyTorch max abs diff: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    timer("verify onnx", started)

    sample_embeddings = embed_titles(encoder, tokenizer, sample_titles, batch_size=SAMPLES, desc="samples")
    samples = [{"title": title, "input_ids": ids, "item_embedding_head": [float(v) for v in embedding[:8]]}
               for title, ids, embedding in zip(sample_titles, tokenizer.encode(sample_titles), sample_embeddings)]
    manifest = write_manifest(staging, manifest_for(preset, backbone, tokenizer, encoder.item_dim, datasets,
                                                    metrics, samples))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    print(f"bundle written to {out}")
    if encoder_run is not None:
        record_downstream(Path(encoder_run), out, manifest)
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timer.steps.items()))
    return BuiltBundle(out, manifest, tokenizer, encoder, adapter, sasrec)


def record_downstream(run_dir: Path, bundle: Path, manifest: dict) -> None:
    """Keep, next to the training run, how a bundle built on its encoder did downstream (runs/<preset>/downstream.json,
    one entry per bundle built)."""
    file = run_dir / "downstream.json"
    entries = json.loads(file.read_text()) if file.exists() else []
    entries.append({"bundle": str(bundle), "model_version": manifest["model_version"], "preset": manifest["preset"],
                    "created_at": manifest["created_at"], "weights_sha256": manifest["backbone"]["weights_sha256"],
                    "metrics": manifest["metrics"]})
    file.write_text(json.dumps(entries, indent=2) + "\n")


def generate(prompt: str, max_new_tokens: int) -> str:
    """Greedy chat completion with the full SmolLM2: a smoke test that the dequantized weights are right."""
    backbone = backbones.load_smollm2()
    tokenizer = backbone.tokenizer
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = backbone.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.llm2rec.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    bundle = commands.add_parser("bundle", help="train and write a model bundle")
    bundle.add_argument("--preset", choices=sorted(PRESETS), required=True)
    bundle.add_argument("--datasets", nargs="+", required=True, help="dataset directories in the shared layout")
    bundle.add_argument("--out", type=Path, required=True, help="bundle directory (replaced if it exists)")
    bundle.add_argument("--no-cache", action="store_true", help="do not read or write cached catalogue embeddings")
    bundle.add_argument("--encoder", type=Path, help="use the item encoder trained by `train` in this run directory "
                                                     "(e.g. runs/cpu) instead of the preset's raw backbone")
    training = commands.add_parser("train", help="LLM2Rec embedding training: CSFT, MNTP, SimCSE (resumable)",
                                   description="Runs the stages in order into OUT/<stage>/, skipping finished "
                                               "stages and resuming an interrupted one from its checkpoint.")
    training.add_argument("--preset", choices=sorted(TRAIN_PRESETS), required=True)
    training.add_argument("--datasets", nargs="+", required=True, help="dataset directories in the shared layout")
    training.add_argument("--out", type=Path, help="run directory (default runs/<preset>)")
    training.add_argument("--config", type=Path, help="JSON or TOML file overriding preset fields")
    training.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                          help="override one field, e.g. --set csft.steps=200 (repeatable)")
    training.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this long (resume later)")
    training.add_argument("--report-dir", type=Path, help="also copy the run record and loss plots here")
    training.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core); on a "
                                                      "busy shared machine 1 thread is steadier and often faster")
    training.add_argument("--dry-run", action="store_true", help="check config, data and one batch per stage on a "
                                                                 "tiny model of the preset's architecture; no training")
    ev = commands.add_parser("evaluate", help="compare methods under the leave-one-out protocol (resumable)",
                             description=evaluation.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--in-domain", nargs="*", default=[], metavar="DIR",
                    help="datasets the embedding models were trained on")
    ev.add_argument("--out-of-domain", nargs="*", default=[], metavar="DIR",
                    help="datasets the embedding models never saw (the sequence model trains on them)")
    ev.add_argument("--zero-shot", nargs="*", default=[], metavar="DIR",
                    help="datasets evaluated with a sequence model trained on the --in-domain mix only")
    ev.add_argument("--zero-shot-train", nargs="*", default=[], metavar="DIR",
                    help="the zero-shot training mix (default: the --in-domain datasets)")
    ev.add_argument("--source", action="append", default=[], metavar="NAME=SPEC",
                    help="name an embedding source: run:<dir>[@stage], bundle:<dir>, backbone:<preset>, minilm "
                         "(built in: raw-backbone=backbone:quick, minilm=minilm)")
    ev.add_argument("--methods", nargs="+", help="default: popularity, id-sasrec, raw-backbone-sasrec, "
                                                 "minilm-sasrec and <source>-sasrec for every --source")
    ev.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    ev.add_argument("--max-users", type=int, help="keep only the first N users of each dataset (and their items)")
    ev.add_argument("--max-sequence", type=int, help="keep only each user's last N interactions")
    ev.add_argument("--max-epochs", type=int, default=evaluation.Protocol.max_epochs)
    ev.add_argument("--patience", type=int, default=evaluation.Protocol.patience)
    ev.add_argument("--out", type=Path, default=Path("runs/evaluation"), help="cell results (resumable)")
    ev.add_argument("--report", type=Path, default=Path("runs/evaluation/quality.json"),
                    help="the report; .md tables and a .png plot are written next to it")
    ev.add_argument("--threads", type=int, help="torch CPU threads")
    ev.add_argument("--report-only", action="store_true",
                    help="compute nothing: report on the cells finished so far (the rest are marked not run)")
    ev.add_argument("--verbose", action="store_true", help="show a progress bar per training epoch")
    chat = commands.add_parser("generate", help="let the full SmolLM2 answer a prompt (backbone smoke test)")
    chat.add_argument("--prompt", default="What is the capital of France?")
    chat.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args(argv)

    if args.command == "bundle":
        build_bundle(PRESETS[args.preset], args.datasets, args.out, use_cache=not args.no_cache,
                     encoder_run=args.encoder)
    elif args.command == "train":
        config = resolve(args.preset, args.config, args.set)
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.dry_run:
            dry_run(config, args.datasets)
        else:
            train_encoder(config, args.datasets, args.out or Path("runs") / config.name, args.max_minutes,
                          args.report_dir)
    elif args.command == "evaluate":
        run_evaluate(args, argv)
    else:
        print(generate(args.prompt, args.max_new_tokens))


def run_evaluate(args: argparse.Namespace, argv: list[str] | None) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    sources = {}
    for item in args.source:
        name, _, spec = item.partition("=")
        if not name or not spec:
            raise SystemExit(f"--source {item!r}: write NAME=SPEC, e.g. llm2rec=run:runs/cpu")
        sources[name] = spec
    methods = args.methods or (["popularity", "id-sasrec", "raw-backbone-sasrec", "minilm-sasrec"]
                               + [f"{name}-sasrec" for name in sources])
    protocol = evaluation.with_seeds(evaluation.Protocol(max_users=args.max_users, max_sequence=args.max_sequence,
                                                         max_epochs=args.max_epochs,
                                                         patience=args.patience), args.seeds)
    plan = evaluation.Evaluation(protocol, args.in_domain, args.out_of_domain, args.zero_shot, args.zero_shot_train,
                                 methods, sources)
    if not (plan.in_domain or plan.out_of_domain or plan.zero_shot):
        raise SystemExit("give at least one dataset: --in-domain, --out-of-domain or --zero-shot")
    harness = evaluation.Harness(plan, args.out, quiet=not args.verbose)
    results = harness.run(compute=not args.report_only)
    command = "python -m training.llm2rec.cli " + " ".join(sys.argv[1:] if argv is None else argv)
    return evaluation.write_report(harness, results, command, args.report)


if __name__ == "__main__":
    main()
