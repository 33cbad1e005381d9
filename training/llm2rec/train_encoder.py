"""LLM2Rec embedding training: CSFT -> MNTP -> SimCSE, each stage continuing from the previous one's weights.

    python -m training.llm2rec.cli train --preset cpu \
        --datasets ../shared/data/amazon-games ../shared/data/movielens-small

Layout of a run directory (default runs/<preset>/):

    config.json            the resolved configuration (a resumed run must use the same one)
    run.json               run id, start time, where the starting weights came from
    csft/ mntp/ simcse/    per stage: checkpoint.pt while running; model/, summary.json, loss.png when done
    train.log              (when started with nohup as in docs/training.md)
    training-run.json      the record, written when all stages are done (copied to --report-dir)

Finished stages are skipped, an interrupted stage resumes from its last checkpoint.
"""

import copy
import json
import os
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import transformers

from . import backbone as backbones
from .data import DataError, Dataset, leave_one_out, load_dataset
from .precision import cpu_flags, resolve as resolve_precision
from .stages import csft, mntp, simcse
from .stages.loop import SUMMARY, StageModel, Stop, run_stage
from .seeding import seed_everything
from .tokens import TitleTokenizer
from .train_config import STAGES, TrainConfig, stage_attention, to_dict


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    import peft

    # "AMD EPYC" names VMs with and without AVX-512 alike; these flags decide fp32 speed and whether bf16 is native
    features = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    return {"cpu": cpu, "cpu_features": features, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "memory_gib": memory,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def stages_needing_histories(config: TrainConfig) -> list[str]:
    """The stages of a run that learn from user histories; the others need only the items' titles."""
    return [name for name in config.stages
            if name == "csft" or (name == "simcse" and config.simcse.positives == "next-item")]


def load_datasets(paths: list[str], config: TrainConfig) -> list[Dataset]:
    """The training datasets. A catalogue without interactions adds its titles to the title stages (MNTP, SimCSE
    with dropout positives); a run whose stages learn from histories needs at least one dataset with them."""
    datasets = [load_dataset(path) for path in paths]
    needing = stages_needing_histories(config)
    if needing and not any(dataset.sequences for dataset in datasets):
        raise DataError(f"no interactions in {', '.join(paths)}: the stage(s) {', '.join(needing)} of this run "
                        f"learn from user histories (interactions.csv)")
    return datasets


def title_tokenizer(hf_tokenizer, config: TrainConfig) -> TitleTokenizer:
    return TitleTokenizer.from_hf(hf_tokenizer, config.title_max_tokens)


def stage_data(name: str, config: TrainConfig, datasets: list[Dataset], hf_tokenizer):
    """The batch source of a stage: an object whose batch(step) depends only on (seed, step)."""
    stage_config = getattr(config, name)
    if name == "csft":
        return csft.CSFTData(datasets, hf_tokenizer, stage_config, config.seed)
    titles = [t for d in datasets for t in d.titles]
    if name == "mntp":
        return mntp.MNTPData(titles, title_tokenizer(hf_tokenizer, config), stage_config, config.seed)
    if stage_config.positives == "next-item":
        return simcse.NextItemData(datasets, title_tokenizer(hf_tokenizer, config), stage_config, config.seed)
    return simcse.SimCSEData(titles, title_tokenizer(hf_tokenizer, config), stage_config, config.seed)


def stage_loss(name: str, config: TrainConfig, stage: StageModel, batch) -> torch.Tensor:
    if name == "csft":
        return csft.loss(stage, batch)
    if name == "mntp":
        return mntp.loss(stage, batch, config.iem_attention)
    return simcse.loss(stage, batch, config.simcse.temperature, config.iem_attention)


def through_layers(config: TrainConfig, name: str) -> int | None:
    """How deep the LM of stage `name` is when it is deeper than the encoder (CSFT with `through_layers`), else None.
    Only the first stage of a run can be deeper: the next stages start from its model cut to the encoder's layers."""
    depth = config.csft.through_layers if name == "csft" and not config.init_from else None
    if depth is None:
        return None
    if config.backbone.layers is None or depth <= config.backbone.layers:
        raise ValueError(f"csft.through_layers ({depth}) must exceed backbone.layers ({config.backbone.layers})")
    return depth


OPERATIONAL = ("max_minutes", "checkpoint_minutes")  # time budgets: a resumed run may change them


def _without_operational(config: dict) -> dict:
    return {k: _without_operational(v) if isinstance(v, dict) else v for k, v in config.items() if k not in OPERATIONAL}


def _check_config(run_dir: Path, config: TrainConfig) -> None:
    """A resumed run must have the same configuration, but for its time budgets (recorded in config_changes)."""
    file = run_dir / "config.json"
    resolved = json.loads(json.dumps(to_dict(config)))
    if file.exists():
        saved = json.loads(file.read_text())
        changes = saved.pop("config_changes", [])
        if _without_operational(saved) != _without_operational(resolved):
            raise ValueError(f"{file} holds a different configuration: resume with the same preset/config, or "
                             f"use another --out")
        if saved == resolved:
            return
        changes.append({"at": now(), "previous": {"checkpoint_minutes": saved["checkpoint_minutes"],
                                                  **{f"{name}.max_minutes": saved[name]["max_minutes"]
                                                     for name in STAGES}}})
        print(f"time budgets changed on resume (recorded in {file})")
        resolved["config_changes"] = changes
    file.write_text(json.dumps(resolved, indent=2) + "\n")


def _run_info(run_dir: Path, config: TrainConfig) -> dict:
    file = run_dir / "run.json"
    if file.exists():
        return json.loads(file.read_text())
    started = datetime.now(timezone.utc)
    info = {"run_id": f"{config.name}-{started:%Y%m%dT%H%M%SZ}", "started_at": now()}
    file.write_text(json.dumps(info, indent=2) + "\n")
    return info


def train(config: TrainConfig, dataset_paths: list[str], run_dir: Path, max_minutes: float | None = None,
          report_dir: Path | None = None) -> dict | None:
    """Run the stages in order; return the run record when all are done, None if stopped early (resumable)."""
    stop = Stop(time.time() + max_minutes * 60 if max_minutes else None)
    try:
        return _train(config, dataset_paths, run_dir, stop, report_dir)
    finally:
        stop.restore()


def _train(config: TrainConfig, dataset_paths: list[str], run_dir: Path, stop: Stop,
           report_dir: Path | None) -> dict | None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_config(run_dir, config)
    info = _run_info(run_dir, config)
    datasets = load_datasets(dataset_paths, config)
    precision = resolve_precision(config.precision)
    print(f"precision {precision.label} ({precision.reason})", flush=True)
    print(f"run {info['run_id']} in {run_dir}: " + ", ".join(f"{d.name} ({len(d.titles)} items, "
                                                              f"{len(d.sequences)} users)" for d in datasets))

    for position, name in enumerate(config.stages):
        stage_dir = run_dir / name
        if (stage_dir / SUMMARY).exists():
            print(f"[{name}] already finished, skipped")
            continue
        started = time.time()
        seed_everything(config.seed + STAGES.index(name))
        if position == 0 and config.init_from:
            start_dir = Path(config.init_from)
            # cut like every later stage: a CSFT model trained `through_layers` deep keeps all of them
            model = backbones.truncate_layers(backbones.load_causal_lm(start_dir / "model"), config.backbone.layers)
            hf_tokenizer = transformers.AutoTokenizer.from_pretrained(start_dir / "model")
            info["backbone"] = {**json.loads((start_dir.parent / "run.json").read_text())["backbone"],
                                "initialized_from": str(start_dir)}
            (run_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")
        elif position == 0:
            bb = config.backbone
            start = backbones.load_for_training(bb.kind, config.seed, bb.name_or_path, bb.architecture,
                                                through_layers(config, name) or bb.layers)
            info["backbone"] = {"name": start.name, "architecture": start.model.config.model_type,
                                "source": start.source, "weights_sha256": start.weights_sha256,
                                "layers": bb.layers or len(start.model.get_decoder().layers)}
            (run_dir / "run.json").write_text(json.dumps(info, indent=2) + "\n")
            model, hf_tokenizer = start.model, start.tokenizer
        else:
            previous = run_dir / config.stages[position - 1] / "model"
            model = backbones.truncate_layers(backbones.load_causal_lm(previous), config.backbone.layers)
            hf_tokenizer = transformers.AutoTokenizer.from_pretrained(previous)
        stage_config = getattr(config, name)
        stage = StageModel(model, stage_config.lora, stage_config.train_embeddings)
        if through_layers(config, name):
            stage.freeze_above(config.backbone.layers)
        stage.set_attention_dropout(stage_config.dropout if name == "simcse" else 0.0)
        data = stage_data(name, config, datasets, hf_tokenizer)
        print(f"[{name}] {len(data.examples) if name == 'csft' else len(data.titles)} "
              f"{'examples' if name == 'csft' else 'titles'}, {sum(p.numel() for p in stage.trainable().values()):,} "
              f"trainable parameters, {stage_attention(config, name)} attention, setup {time.time() - started:.1f}s", flush=True)
        outcome = run_stage(name, stage, stage_config, lambda step: stage_loss(name, config, stage, data.batch(step)),
                            stage_dir, config.checkpoint_minutes, stop, precision,
                            extra_summary={"attention": stage_attention(config, name),
                                           "data": len(data.examples) if name == "csft" else len(data.titles)},
                            save_tokenizer=hf_tokenizer.save_pretrained)
        if not outcome.finished:
            print(f"stopped in {name}; run the same command again to resume")
            return None

    record = _record(config, run_dir, info, datasets)
    (run_dir / "training-run.json").write_text(json.dumps(record, indent=2) + "\n")
    if report_dir is not None:
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "training-run.json").write_text(json.dumps(record, indent=2) + "\n")
        for name in config.stages:
            shutil.copyfile(run_dir / name / "loss.png", report_dir / f"training-loss-{name}.png")
    print(f"all stages done: {run_dir / 'training-run.json'}")
    return record


def _record(config: TrainConfig, run_dir: Path, info: dict, datasets: list[Dataset]) -> dict:
    summaries = {name: json.loads((run_dir / name / SUMMARY).read_text()) for name in config.stages}
    stages = {name: {k: v for k, v in s.items() if k != "losses"} for name, s in summaries.items()}
    finished = now()
    return {
        "run_id": info["run_id"],
        "preset": config.name,
        "run_dir": str(run_dir),
        "started_at": info["started_at"],
        "finished_at": finished,
        "date": finished[:10],
        "machine": machine(),
        "backbone": {**info["backbone"], "attention": stage_attention(config, config.stages[-1]),
                     "trained_weights": f"{run_dir}/{config.stages[-1]}/model/model.safetensors (not committed)"},
        "datasets": [{"name": d.name, "path": d.path, "items": len(d.titles), "users": len(d.sequences),
                      "interactions": d.interactions,
                      "training_users": len(leave_one_out(d.sequences).train)} for d in datasets],
        "protocol": "CSFT uses only the training part of each user's history (last two items held out for "
                    "validation/test); MNTP and SimCSE see catalogue titles only",
        "stages": list(config.stages),
        "total_seconds": round(sum(s["seconds"] for s in stages.values()), 1),  # training time of the stages
        "wall_seconds": round((datetime.strptime(finished, "%Y-%m-%dT%H:%M:%SZ")
                               - datetime.strptime(info["started_at"], "%Y-%m-%dT%H:%M:%SZ")).total_seconds()),
        **stages,
        "config": to_dict(config),
        "config_changes": json.loads((run_dir / "config.json").read_text()).get("config_changes", []),
    }


def dry_run(config: TrainConfig, dataset_paths: list[str] | list[Dataset]) -> dict:
    """Check a preset without its weights: config resolution, the data pipeline of each of its stages at the preset's
    batch sizes and lengths, and one forward/backward per stage on a tiny random model of the preset's
    architecture (with SmolLM2's tokenizer). Returns the batch shapes and losses."""
    print(json.dumps(to_dict(config), indent=2))
    if all(isinstance(d, Dataset) for d in dataset_paths):
        datasets = list(dataset_paths)
    else:
        datasets = load_datasets([str(d) for d in dataset_paths], config)
    tiny = backbones.build_tiny(config.seed, config.backbone.architecture)
    print(f"stand-in model: {tiny.name} ({tiny.source})")
    report = {}
    for name in config.stages:
        stage_config = getattr(config, name)
        stage = StageModel(copy.deepcopy(tiny.model), stage_config.lora, stage_config.train_embeddings)
        stage.set_attention_dropout(stage_config.dropout if name == "simcse" else 0.0)
        stage.model.train()
        data = stage_data(name, config, datasets, tiny.tokenizer)
        batch = data.batch(0)
        loss = stage_loss(name, config, stage, batch)
        loss.backward()
        grads = sum(p.grad is not None for p in stage.trainable().values())
        shapes = [list(t.shape) for t in batch]
        report[name] = {"batch_shapes": shapes, "loss": loss.item(), "parameters_with_grad": grads,
                        "lora": stage_config.lora.enabled, "attention": stage_attention(config, name)}
        print(f"[{name}] batch {shapes}, loss {loss.item():.3f}, {grads} trainable tensors got gradients")
    return report
