"""Training throughput: tokens per second of each LLM2Rec stage and of the sequence model, the loop as it was
(fp32, torch's default AdamW, titles sampled uniformly) against the fast path (bf16 autocast where the CPU has it,
fused AdamW, titles batched by length), in one run on one machine.

    python -m training.llm2rec.bench_training --preset cpu --datasets ../shared/data/amazon-games \
        ../shared/data/movielens-small --out reports/training-throughput.json

Each (stage, variant) warms up for `--warmup` steps, then times `--steps` real training steps (forward, backward,
clipping, optimizer update) on the preset's batches, from the same starting weights. Tokens are the non-padding
tokens of a batch (CSFT: prompt and target; MNTP: titles; SimCSE: both views); `padded tokens` counts what the
model actually computed. The CPU model, its bf16 flags and the load average go into the record.
"""

import argparse
import copy
import dataclasses
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import backbone as backbones
from .data import leave_one_out
from .precision import Precision, adamw, resolve as resolve_precision
from .sasrec import SASRec, Adapter
from .stages.loop import StageModel, train_step
from .train_config import STAGES, resolve, stage_attention
from .train_encoder import load_datasets, machine, stage_data, stage_loss
from .train_sequence import BATCH_PARTS, EmbeddingItemTable, training_windows, window_loss


def variants(fast: Precision) -> dict[str, dict]:
    return {"before": {"precision": resolve_precision("fp32"), "fused": False, "bucket_by_length": False},
            "fast": {"precision": fast, "fused": True, "bucket_by_length": True}}


def optimizer_for(params, fused: bool, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return adamw(params, lr=lr, weight_decay=weight_decay) if fused else \
        torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def time_steps(step, warmup: int, steps: int) -> list[float]:
    for i in range(warmup):
        step(i)
    seconds = []
    for i in range(warmup, warmup + steps):
        started = time.perf_counter()
        step(i)
        seconds.append(time.perf_counter() - started)
    return seconds


def token_counts(name: str, batch) -> tuple[int, int]:
    """(real tokens, padded tokens) of a stage's batch."""
    attention_mask = batch[1]  # SimCSE batches hold both views already
    return int(attention_mask.sum()), int(attention_mask.numel())


def bench_stage(name: str, config, datasets, start, variant: dict, warmup: int, steps: int) -> dict:
    stage_config = dataclasses.replace(getattr(config, name), bucket_by_length=variant["bucket_by_length"])
    model = copy.deepcopy(start.model)
    stage = StageModel(model, stage_config.lora, stage_config.train_embeddings)
    stage.set_attention_dropout(stage_config.dropout if name == "simcse" else 0.0)
    stage.model.train()
    cfg = dataclasses.replace(config, **{name: stage_config})
    data = stage_data(name, cfg, datasets, start.tokenizer)
    params = list(stage.trainable().values())
    optimizer = optimizer_for(params, variant["fused"], stage_config.learning_rate, stage_config.weight_decay)
    tokens = []

    def step(i: int) -> None:
        batch = data.batch(i)
        tokens.append(token_counts(name, batch))
        train_step(lambda: stage_loss(name, cfg, stage, batch), params, optimizer, variant["precision"],
                   stage_config.grad_clip)

    seconds = time_steps(step, warmup, steps)
    real, padded = np.array(tokens[warmup:]).sum(axis=0)
    return {"seconds_per_step": float(np.median(seconds)), "steps": steps, "batch_size": stage_config.batch_size,
            "tokens_per_second": float(real / sum(seconds)), "padded_tokens_per_second": float(padded / sum(seconds)),
            "padding_share": float(1 - real / padded)}


def bench_sequence(datasets, start, variant: dict, warmup: int, steps: int, batch_size: int) -> dict:
    """The downstream SASRec (quick settings) over the frozen raw embeddings of the first dataset's catalogue:
    the adapter, the blocks and the full-softmax logits over every item."""
    dataset = datasets[0]
    torch.manual_seed(0)
    embeddings = torch.randn(len(dataset.titles), start.model.config.hidden_size)  # the speed does not depend on them
    items = EmbeddingItemTable(embeddings, Adapter(embeddings.shape[1], 128))
    model = SASRec(128, 10, 2, 2, 0.3)
    inputs, masks, targets = training_windows(leave_one_out(dataset.sequences).train, 10)
    params = list(items.parameters()) + list(model.parameters())
    optimizer = optimizer_for(params, variant["fused"], 1e-3, 1e-4)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))

    def step(i: int) -> None:
        batch = order[i * batch_size : (i + 1) * batch_size]
        train_step(lambda: window_loss(items, model, inputs[batch], masks[batch], targets[batch], parts=BATCH_PARTS), params, optimizer,
                   variant["precision"], None)

    seconds = time_steps(step, warmup, steps)
    per_step = float(np.median(seconds))
    windows_per_second = batch_size / per_step
    return {"seconds_per_step": per_step, "steps": steps, "batch_size": batch_size, "items": len(dataset.titles),
            "windows_per_second": windows_per_second,
            "epoch_seconds_estimate": float(len(inputs) / windows_per_second)}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["results"])
    before = [report["results"][n]["before"]["seconds_per_step"] for n in names]
    fast = [report["results"][n]["fast"]["seconds_per_step"] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=100)
    ax.bar(x - 0.2, before, 0.4, label="before: fp32, AdamW, uniform batches")
    ax.bar(x + 0.2, fast, 0.4, label=f"fast: {report['fast_precision']['used']}, fused AdamW, length buckets")
    for i, n in enumerate(names):
        ax.text(x[i] + 0.2, fast[i], f"{report['results'][n]['speedup']:.1f}x", ha="center", va="bottom")
    ax.set_xticks(x, names)
    ax.set_ylabel("seconds per step (median)")
    ax.set_title(f"Training step time, {report['machine']['cpu']}, {report['machine']['torch_threads']} threads",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="a.b=v", help="override a preset field")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--stages", nargs="+", default=[*STAGES, "sasrec"])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True, help="JSON record; a PNG plot is written beside it")
    args = parser.parse_args(argv)
    config = resolve(args.preset, sets=args.set)
    datasets = load_datasets(args.datasets, config)
    bb = config.backbone
    start = backbones.load_for_training(bb.kind, config.seed, bb.name_or_path, bb.architecture, bb.layers)
    fast = resolve_precision(config.precision)
    report = {"command": "python -m training.llm2rec.bench_training " + " ".join(argv or sys.argv[1:]),
              "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": machine(),
              "load_average_before": os.getloadavg(), "preset": config.name,
              "layers": len(start.model.get_decoder().layers), "fast_precision": fast.record(), "results": {}}
    for name in args.stages:
        result = {}
        for label, variant in variants(fast).items():
            torch.manual_seed(0)
            if name == "sasrec":
                result[label] = bench_sequence(datasets, start, variant, args.warmup, args.steps, 256)
            else:
                result[label] = bench_stage(name, config, datasets, start, variant, args.warmup, args.steps)
            print(f"[{name}] {label}: {result[label]}", flush=True)
        # stages: real tokens per second (length buckets change the padding, not the real tokens); SASRec: steps
        key = "seconds_per_step" if name == "sasrec" else "tokens_per_second"
        result["speedup"] = (result["before"][key] / result["fast"][key]) ** (1 if name == "sasrec" else -1)
        result["attention"] = stage_attention(config, name) if name in STAGES else "causal (SASRec)"
        report["results"][name] = result
        print(f"[{name}] speed-up {result['speedup']:.2f}x", flush=True)
    report["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out.with_suffix(".png"))
    return report


if __name__ == "__main__":
    main()
