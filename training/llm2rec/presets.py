"""Training presets: one plain dataclass instance per preset, nothing hidden elsewhere."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Preset:
    """The fields with defaults are shared by every preset below; a preset names only what it changes."""
    name: str
    # item encoder
    backbone: str  # "smollm2" (the real SmolLM2-135M-Instruct) or "tiny" (random, same family and tokenizer)
    layers: int  # keep only the first `layers` decoder layers of the backbone
    attention: str  # "causal" or "bidirectional"
    max_tokens: int = 32  # titles are truncated to this many tokens
    encode_batch_size: int = 64
    # data
    max_users: int | None  # None = every user; otherwise keep the first users of each dataset (and only their items)
    # adapter + sequence model
    rec_dim: int = 128
    max_history: int = 10  # longest history the sequence model sees (the server pads/cuts to this)
    sasrec_layers: int = 2
    sasrec_heads: int = 2
    dropout: float = 0.2
    # sequence training
    epochs: int  # at most this many; the weights of the epoch with the best validation Recall@20 are kept
    patience: int | None = None  # stop after this many epochs without a better validation Recall@20 (None: never)
    batch_size: int  # windows of max_history items per step
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 42


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
