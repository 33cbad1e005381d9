"""Stage 2 (IEM stage 1), MNTP: masked next-token prediction (LLM2Vec) with bidirectional attention.

The causal mask is removed; `mask_ratio` of each title's tokens (at least one; never the first token, which has
no previous position) are replaced by the mask token, and the original token at masked position i is predicted
from the output at position i - 1, so the LM head keeps its next-token alignment. SmolLM2 (like Llama) has no
mask token: as LLM2Vec does for Llama-family models we use "_" (SmolLM2 id 79, a single token) in place of every
masked token. Trained on the catalogue titles (item text only, no interactions), tokenized exactly as the bundle
tokenizes them (title_max_tokens).
"""

import numpy as np
import torch
from torch.nn import functional as F

from ..tokens import TitleTokenizer
from ..train_config import StageConfig
from .loop import StageModel


def mask_token_id(tokenizer: TitleTokenizer, mask_token: str) -> int:
    ids = tokenizer.tokenizer.encode(mask_token, add_special_tokens=False).ids
    if len(ids) != 1:
        raise ValueError(f"mask token {mask_token!r} is {len(ids)} tokens, it must be exactly one")
    return ids[0]


class TitleData:
    """The catalogue titles of all datasets (deduplicated, first occurrence order), pre-tokenized."""

    def __init__(self, titles: list[str], tokenizer: TitleTokenizer, config: StageConfig, seed: int):
        self.titles = list(dict.fromkeys(titles))
        self.ids = tokenizer.encode(self.titles)
        self.tokenizer = tokenizer
        self.config = config
        self.seed = seed

        # Titles ordered by token length, ties in a fixed random order: a window of this order is a batch of
        # titles of (nearly) the same length drawn from the whole catalogue, so little of a batch is padding.
        tie_break = np.random.default_rng([seed, 1]).random(len(self.ids))
        self.by_length = np.lexsort((tie_break, [len(row) for row in self.ids]))

    def pick(self, step: int, salt: int) -> tuple[np.random.Generator, list[list[int]]]:
        """The titles of batch `step` (a function of seed, salt and step only) and the generator that drew them.
        With bucket_by_length: a random window of the length order; otherwise a uniform sample."""
        rng = np.random.default_rng([self.seed, salt, step])
        size = min(self.config.batch_size, len(self.ids))
        if self.config.bucket_by_length:
            start = int(rng.integers(0, len(self.ids) - size + 1))
            rows = self.by_length[start : start + size]
        else:
            rows = rng.choice(len(self.ids), size=size, replace=False)
        return rng, [self.ids[int(r)] for r in rows]


class MNTPData(TitleData):
    SALT = 2

    def __init__(self, titles: list[str], tokenizer: TitleTokenizer, config: StageConfig, seed: int):
        super().__init__(titles, tokenizer, config, seed)
        self.mask_id = mask_token_id(tokenizer, config.mask_token)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(masked input_ids, attention_mask, original input_ids, masked positions) [batch, tokens]."""
        rng, ids = self.pick(step, self.SALT)
        input_ids, attention_mask = self.tokenizer.pad(ids)
        maskable = attention_mask.bool().clone()
        maskable[:, 0] = False
        # per title: mask round(ratio * length) tokens (at least 1 when it has a maskable token), chosen at random
        noise = torch.from_numpy(rng.random(input_ids.shape)).masked_fill(~maskable, float("inf"))
        rank = noise.argsort(dim=1).argsort(dim=1)
        lengths = attention_mask.sum(dim=1, keepdim=True)
        count = (lengths.double() * self.config.mask_ratio).round().clamp(min=1).long()
        masked = (rank < count) & maskable
        return input_ids.masked_fill(masked, self.mask_id), attention_mask, input_ids, masked


def loss(stage: StageModel, batch, attention: str = "bidirectional") -> torch.Tensor:
    inputs, attention_mask, original, masked = batch
    hidden = stage.encoder(attention).hidden_states(inputs, attention_mask)
    predict_from = masked[:, 1:]  # the output at i - 1 predicts the token at masked position i
    logits = stage.lm_head(hidden[:, :-1][predict_from])
    if logits.shape[0] == 0:  # only one-token titles in the batch: nothing to predict
        return hidden.sum() * 0.0
    return F.cross_entropy(logits.float(), original[:, 1:][predict_from])
