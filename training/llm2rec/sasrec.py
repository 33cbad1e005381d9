"""Adapter (item embedding -> recommendation vector) and SASRec over recommendation vectors (history -> user vector).

The sequence model never sees item ids, only vectors, so any item with a title can be recommended.
Histories are left-padded: the most recent item is at the last position, padding (mask 0) at the front.
"""

import torch
from torch import nn
from torch.nn import functional as F


class Adapter(nn.Module):
    """Linear projection from the LLM's item space to the recommendation space, then LayerNorm."""

    def __init__(self, item_dim: int, rec_dim: int):
        super().__init__()
        self.proj = nn.Linear(item_dim, rec_dim)
        self.norm = nn.LayerNorm(rec_dim)

    def forward(self, item_embedding: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(item_embedding))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        assert dim % heads == 0
        self.dim = dim
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).split(self.dim, dim=2)
        # [batch, heads, length, head_dim]
        q, k, v = (t.reshape(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) * self.scale + bias
        weights = self.attn_dropout(F.softmax(scores, dim=-1))
        y = (weights @ v).transpose(1, 2).reshape(batch, length, self.dim)
        return self.proj(y)


class Block(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln_attn(x), bias))
        return x + self.dropout(self.mlp(self.ln_mlp(x)))


class SASRec(nn.Module):
    def __init__(self, dim: int, max_history: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.max_history = max_history
        # Scores are plain dot products with LayerNorm-ed item vectors (norm ~ sqrt(dim)): scaling the user vector
        # by 1/sqrt(dim) acts as the softmax temperature and keeps the initial logits in a sane range.
        self.output_scale = dim**-0.5
        # Position = recency: 0 is the most recent item. With left padding this is the same as SASRec's absolute
        # positions in a window of max_history, and it does not depend on how much padding there is.
        self.recency = nn.Embedding(max_history, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def encode(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position [batch, length, dim]; position t has seen only positions <= t."""
        length = history.shape[1]
        positions = torch.arange(length, device=history.device)
        # Histories longer than max_history share the oldest position embedding instead of failing.
        recency = (length - 1 - positions).clamp(max=self.max_history - 1)
        valid = history_mask.bool()
        x = history * valid.unsqueeze(-1).to(history.dtype) + self.recency(recency)
        x = self.dropout(x)

        # May attend: earlier-or-same, non-padding positions; and always itself, so that a padding position
        # (which has no valid key at or before it) never gets an all-masked softmax row (NaN).
        allowed = valid[:, None, None, :] & (positions[None, :] <= positions[:, None])
        allowed = allowed | (positions[None, :] == positions[:, None])
        bias = torch.where(allowed, 0.0, torch.finfo(history.dtype).min).to(history.dtype)

        for block in self.blocks:
            x = block(x, bias)
        return self.norm(x) * self.output_scale

    def forward(self, history: torch.Tensor, history_mask: torch.Tensor) -> torch.Tensor:
        """User vector [batch, dim]: the hidden state at the last (most recent) position."""
        return self.encode(history, history_mask)[:, -1]
