"""Stage 3 (IEM stage 2), item-level contrastive learning: unsupervised SimCSE on the catalogue titles.

Each title of a batch is encoded twice with bidirectional attention and attention dropout `dropout` (the two
dropout masks are the only augmentation), mean-pooled over its tokens (exactly the exported encoder's pooling,
after the final norm); in-batch InfoNCE on cosine similarity divided by `temperature` (0.1 = scale 10): each
first view must pick its own second view among the batch's second views (LLM2Vec's loss).
"""

import torch
from torch.nn import functional as F

from .loop import StageModel
from .mntp import TitleData


class SimCSEData(TitleData):
    SALT = 3

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        _, ids = self.pick(step, self.SALT)
        return self.tokenizer.pad(ids)


def loss(stage: StageModel, batch: tuple[torch.Tensor, torch.Tensor], temperature: float) -> torch.Tensor:
    input_ids, attention_mask = batch
    # one forward pass over both views: every row gets its own dropout mask
    embeddings = stage.encoder("bidirectional")(torch.cat([input_ids, input_ids]), torch.cat([attention_mask] * 2))
    first, second = F.normalize(embeddings, dim=-1).chunk(2)
    scores = first @ second.T / temperature
    return F.cross_entropy(scores, torch.arange(len(first)))
