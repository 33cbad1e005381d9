"""Bundle presets (`bundle --preset`): one plain dataclass instance per preset, nothing hidden elsewhere; overridable
and type-checked like the LLM2Rec training presets (training/llm2rec/config.py): `bundle --preset quick --set epochs=2`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import config as settings
from .config import Count, Fraction, NonNegative, NonNegativeInt, Positive, Text


@dataclass(frozen=True, kw_only=True)
class Preset:
    """The fields with defaults are shared by every preset below; a preset names only what it changes."""
    name: Text
    # item encoder
    # "smollm2" (the real SmolLM2-135M-Instruct) or "tiny" (random, same family and tokenizer); `bundle --encoder`
    # replaces it with the trained run's encoder
    backbone: Literal["smollm2", "tiny"]
    layers: Count  # keep only the first `layers` decoder layers of the backbone
    attention: Literal["causal", "bidirectional"]  # "causal" or "bidirectional"
    max_tokens: Count = 32  # titles are truncated to this many tokens
    encode_batch_size: Count = 64
    # data
    max_users: Count | None  # None = every user; otherwise keep the first users of each dataset (and only their items)
    # adapter + sequence model
    rec_dim: Count = 128
    max_history: Count = 10  # longest history the sequence model sees (the server pads/cuts to this)
    sasrec_layers: Count = 2
    sasrec_heads: Count = 2
    dropout: Fraction = 0.2
    # sequence training
    epochs: Count  # at most this many; the weights of the epoch with the best validation Recall@20 are kept
    patience: Count | None = None  # stop after this many epochs without a better validation Recall@20 (None: never)
    batch_size: Count  # windows of max_history items per step
    learning_rate: Positive = 1e-3
    weight_decay: NonNegative = 1e-4
    seed: NonNegativeInt = 42


PRESETS = {
    # Random tiny backbone on a few hundred items: the whole bundle builds in seconds (used by the tests).
    "tiny": Preset(
        name="tiny",
        backbone="tiny",
        layers=2,
        attention="causal",
        max_users=60,
        epochs=2,
        batch_size=64,
    ),
    # Raw (not fine-tuned) SmolLM2 cut to its first 6 of 30 layers; SASRec trained on the full datasets.
    # 6 layers encoded the best items of those tried (2, 6, 12, 30) and take ~50 s for amazon-games; the whole run
    # takes ~8.5 minutes on 2 idle CPU cores (measurements in training/README.md).
    "quick": Preset(
        name="quick",
        backbone="smollm2",
        layers=6,
        attention="causal",
        max_users=None,
        epochs=6,
        batch_size=256,
    ),
}


def resolve(preset: str, config_file: Path | None = None, sets: list[str] = ()) -> Preset:
    """A bundle preset with a file's and each `--set`'s overrides, type-checked (config.ConfigError if not)."""
    return settings.resolve(PRESETS, preset, config_file, sets)
