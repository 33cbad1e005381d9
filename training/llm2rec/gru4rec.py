"""GRU4Rec over item vectors (history -> user vector), with the same interface as SASRec (training/llm2rec/sasrec.py),
so the trainer, the evaluation and the item tables work with either.

Histories are left-padded; the GRU runs over the real items only, from a learned start state (packed sequences), so
that its output does not depend on how much padding a batch has: the trainer pads each batch only to its longest
history.
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
        # The state before the first item, learned: it stands in for the state the GRU reached over zeroed padding
        # before it was packed (a zero start scored 0.0835 against 0.0845 validation Recall@20, one seed of
        # amazon-scientific, 2026-12-03: about the same).
        self.start = nn.Parameter(torch.zeros(layers, 1, dim))
        self.norm = nn.LayerNorm(dim)

    def encode(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position [batch, length, dim]; position t has seen only positions <= t (padding
        positions: a state of no items)."""
        length = history.shape[1]
        counts = history_mask.sum(dim=1).clamp(min=1)  # an empty history runs one step over its (zeroed) padding
        # Left-padded -> right-padded (row i moved left by its padding), packed, run, and moved back.
        padding = (length - counts)[:, None]
        positions = torch.arange(length, device=history.device)[None, :]
        to_right = (positions + padding).clamp(max=length - 1)
        x = history * history_mask.unsqueeze(-1).to(history.dtype)
        right = x.gather(1, to_right[..., None].expand(-1, -1, x.shape[2]))
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(right), counts.cpu(), batch_first=True, enforce_sorted=False)
        start = self.start.expand(-1, history.shape[0], -1).contiguous().to(x.dtype)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed, start)[0], batch_first=True, total_length=length)
        back = (positions - padding).clamp(min=0)
        left = hidden.gather(1, back[..., None].expand(-1, -1, hidden.shape[2])) * (positions >= padding)[..., None]
        return self.norm(self.dropout(left)) * self.output_scale

    def forward(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """User vector [batch, dim]: the hidden state at the last (most recent) position."""
        return self.encode(history, history_mask)[:, -1]
