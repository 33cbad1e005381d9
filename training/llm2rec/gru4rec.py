"""GRU4Rec over item vectors (history -> user vector), with the same interface as SASRec (training/llm2rec/sasrec.py),
so the trainer, the evaluation and the item tables work with either.

Histories are left-padded. The GRU runs over the padding too, whose inputs are zeroed: the state it reaches before
the first real item acts as a learned start state, the same for every user with the same amount of padding.
"""

import torch
from torch import nn


class GRU4Rec(nn.Module):
    def __init__(self, dim: int, max_history: int, layers: int = 1, dropout: float = 0.3):
        super().__init__()
        self.max_history = max_history
        self.output_scale = dim**-0.5  # as SASRec: dot products with LayerNorm-ed item vectors stay in a sane range
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(dim)

    def encode(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position [batch, length, dim]; position t has seen only positions <= t."""
        x = history * history_mask.unsqueeze(-1).to(history.dtype)
        hidden, _ = self.gru(self.dropout(x))
        return self.norm(self.dropout(hidden)) * self.output_scale

    def forward(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """User vector [batch, dim]: the hidden state at the last (most recent) position."""
        return self.encode(history, history_mask)[:, -1]
