"""`bundle`: a model bundle (docs/bundle-format.md) from a bundle preset, with the preset's raw backbone or the
item encoder of a finished LLM2Rec training run (`--encoder runs/cpu`): encode the catalogue, train the adapter +
SASRec over the embeddings, evaluate on test, export the three ONNX graphs, check them against PyTorch with
onnxruntime, and write the manifest.

    python -m training.llm2rec.cli bundle --preset quick --datasets ../shared/data/amazon-games --out bundles/quick
    python -m training.llm2rec.cli bundle --preset quick --encoder runs/cpu \
        --datasets ../shared/data/amazon-games --out bundles/llm2rec-cpu
"""

import json
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import backbone as backbones
from .data import DataError, Dataset, first_users, leave_one_out, load_dataset
from .encoder import ItemEncoder, embed_titles
from .bundle_format import FORMAT_VERSION, GRAPHS
from .export import export_graph, verify_graph, write_manifest
from .item_embeddings import embed_catalogue, encoder_source
from .presets import Preset
from .sasrec import SASRec, Adapter
from .seeding import seed_everything
from .tokens import TitleTokenizer
from .train_sequence import EmbeddingItemTable, TrainingPart, evaluate, left_pad, popularity, train

SAMPLES = 10


class Timer:
    """Collects how long each named step took and prints it as it goes."""

    def __init__(self):
        self.steps: dict[str, float] = {}

    def __call__(self, name: str, started: float) -> None:
        self.steps[name] = time.time() - started
        print(f"[{name}] {self.steps[name]:.1f}s", flush=True)


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
            raise DataError(f"{dataset.path} has no interactions.csv rows: a bundle's sequence model is trained on "
                            f"user histories")
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


def encoder_section(run: dict | None) -> dict:
    """The manifest's `encoder`: which item encoder the bundle carries. `raw`: the backbone's own weights (cut to
    `backbone.layers`); `llm2rec`: the model of a finished LLM2Rec training run (`run` is its training-run.json)."""
    if run is None:
        return {"kind": "raw", "run_id": None}
    return {"kind": "llm2rec", "run_id": run["run_id"], "training_preset": run["preset"],
            "stages": list(run["stages"]), "finished_at": run["finished_at"]}


def manifest_for(preset: Preset, backbone: backbones.Backbone, tokenizer: TitleTokenizer, item_dim: int,
                 datasets: list[Dataset], metrics: dict, samples: list[dict], run: dict | None = None) -> dict:
    """manifest.json as docs/bundle-format.md specifies it, but for `files` (added by write_manifest). `run`: the
    record of the LLM2Rec training run whose encoder the bundle carries (None: the raw backbone)."""
    now = datetime.now(timezone.utc)
    return {
        "format_version": FORMAT_VERSION,
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
        "encoder": encoder_section(run),
        "dimensions": {"item_embedding": item_dim, "recommendation": preset.rec_dim},
        "tokenizer": {"file": "tokenizer.json", "max_length": tokenizer.max_length,
                      "pad_token_id": tokenizer.pad_token_id, "add_special_tokens": tokenizer.add_special_tokens},
        "pooling": "mean",
        "sequence_model": {"kind": "sasrec", "max_history": preset.max_history},
        "graphs": {name: {"file": graph.file, "inputs": list(graph.inputs), "outputs": list(graph.outputs)}
                   for name, graph in GRAPHS.items()},
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
        backbone, record = backbones.load_backbone(preset.backbone, preset.seed), None
    tokenizer = TitleTokenizer.from_hf(backbone.tokenizer, preset.max_tokens)
    encoder = ItemEncoder(backbone.model.get_decoder(), preset.layers, preset.attention).eval()
    timer("load backbone", started)

    started = time.time()
    datasets = load_training_data(preset, dataset_paths)
    timer("load data", started)

    started = time.time()
    source = encoder_source("encoder", backbone, encoder, tokenizer, preset.encode_batch_size)
    embeddings = [embed_catalogue(source, d.titles, d.name, cache=use_cache) for d in datasets]
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
                                                    metrics, samples, record))
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
