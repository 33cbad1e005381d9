"""ItemEncoder: a Llama backbone cut to its first decoder layers, mean-pooled into one vector per item title.

Also used by the LLM2Rec training stages (training/llm2rec/stages/) with the decoder of any Llama-shaped
Hugging Face model: Llama/SmolLM, Qwen2 and Gemma (which scales its input embeddings by sqrt(hidden size)).
"""

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import LlamaModel

from .tokens import TitleTokenizer

ATTENTIONS = ("causal", "bidirectional")


class ItemEncoder(nn.Module):
    def __init__(self, backbone: LlamaModel, layers: int, attention: str):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, not {attention!r}")
        if not 1 <= layers <= len(backbone.layers):
            raise ValueError(f"layers must be in 1..{len(backbone.layers)}, not {layers}")
        if backbone.config._attn_implementation != "eager":
            # Eager attention simply adds our 4D mask to the scores; other kernels may treat masks differently.
            raise ValueError("load the backbone with attn_implementation='eager'")
        self.attention = attention
        self.embed_tokens = backbone.embed_tokens
        self.rotary_emb = backbone.rotary_emb
        self.layers = nn.ModuleList(backbone.layers[:layers])
        self.norm = backbone.norm
        self.item_dim = backbone.config.hidden_size
        # Gemma multiplies the token embeddings by sqrt(hidden_size) (rounded to the model dtype) before layer 0.
        self.embed_scale = self.item_dim**0.5 if backbone.config.model_type == "gemma" else None

    def attention_bias(self, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Additive mask, 0 where a query token may attend to a key token and a huge negative number elsewhere.

        We build it ourselves and hand it to the decoder layers as a ready 4D mask, bypassing transformers'
        mask logic: `bidirectional` (LLM2Vec-style) masks only padding keys, `causal` also masks future keys.
        Shape [batch, 1, tokens, tokens] (causal) or [batch, 1, 1, tokens] (bidirectional), broadcast over heads.
        """
        allowed = attention_mask[:, None, None, :].bool()
        if self.attention == "causal":
            positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            allowed = allowed & (positions[None, :] <= positions[:, None])
        # finfo.min rather than -inf: a row with no allowed key (an all-padding title) stays finite.
        return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Per-token output of the truncated stack, after the backbone's final norm: [batch, tokens, item_dim]."""
        hidden = self.embed_tokens(input_ids)
        if self.embed_scale is not None:
            hidden = hidden * torch.tensor(self.embed_scale, dtype=hidden.dtype)
        position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        position_embeddings = self.rotary_emb(hidden, position_ids)
        bias = self.attention_bias(attention_mask, hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=bias, position_ids=position_ids, position_embeddings=position_embeddings)
        return self.norm(hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return mean_pool(self.hidden_states(input_ids, attention_mask), attention_mask)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


@torch.inference_mode()
def embed_titles(encoder: ItemEncoder, tokenizer: TitleTokenizer, titles: list[str], batch_size: int,
                 desc: str = "encoding titles") -> np.ndarray:
    """Item embeddings float32 [len(titles), item_dim]. Titles are batched by token length to waste little on padding."""
    ids = tokenizer.encode(titles)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), encoder.item_dim), dtype=np.float32)
    encoder.eval()
    with tqdm(total=len(ids), desc=desc, unit="title") as progress:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            input_ids, attention_mask = tokenizer.pad([ids[i] for i in batch])
            out[batch] = encoder(input_ids, attention_mask).numpy()
            progress.update(len(batch))
    return out

