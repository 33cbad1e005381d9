"""Stage 3 (IEM stage 2), item-level contrastive learning: unsupervised SimCSE on the catalogue titles.

Each title of a batch is encoded twice with bidirectional attention and attention dropout `dropout` (the two
dropout masks are the only augmentation), mean-pooled over its tokens (exactly the exported encoder's pooling,
after the final norm); in-batch InfoNCE on cosine similarity divided by `temperature` (0.1 = scale 10): each
first view must pick its own second view among the batch's second views (LLM2Vec's loss).

`positives = "next-item"` is our variant, not LLM2Rec's: the second view of a title is the title of the item that
followed it in a user's training history (NextItemData), so the contrastive stage itself pulls consecutive items
together, as the collaborative signal CSFT is meant to carry. Only training parts of the histories are used.
"""

import numpy as np
import torch
from torch.nn import functional as F

from ..data import DataError, Dataset, leave_one_out
from ..tokens import TitleTokenizer
from ..train_config import StageConfig
from .loop import StageModel
from .mntp import TitleData


class SimCSEData(TitleData):
    SALT = 3

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views of every title: [2 x batch, tokens], the first half and the second half the same titles."""
        _, ids = self.pick(step, self.SALT)
        return self.tokenizer.pad(ids + ids)


class NextItemData:
    """Pairs (title, title of the next item) from consecutive items of the users' training parts, all datasets."""

    SALT = 4

    def __init__(self, datasets: list[Dataset], tokenizer: TitleTokenizer, config: StageConfig, seed: int):
        titles = list(dict.fromkeys(t for d in datasets for t in d.titles))
        index = {t: i for i, t in enumerate(titles)}
        pairs = {(index[d.titles[a]], index[d.titles[b]]) for d in datasets
                 for history in leave_one_out(d.sequences).train for a, b in zip(history, history[1:])}
        self.pairs = np.array(sorted((a, b) for a, b in pairs if a != b), dtype=np.int64).reshape(-1, 2)
        if len(self.pairs) == 0:
            raise DataError("no next-item pairs: every user needs two different training items")
        self.titles = titles
        self.ids = tokenizer.encode(titles)
        self.tokenizer = tokenizer
        self.config = config
        self.seed = seed

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """[2 x batch, tokens]: anchors, then their next items. Pairs sharing an item are avoided (they would be
        each other's false negatives)."""
        rng = np.random.default_rng([self.seed, self.SALT, step])
        chosen, seen = [], set()
        for row in rng.permutation(len(self.pairs)):
            a, b = self.pairs[row]
            if a in seen or b in seen:
                continue
            chosen.append((a, b))
            seen.update((a, b))
            if len(chosen) == self.config.batch_size:
                break
        anchors, positives = zip(*chosen)
        return self.tokenizer.pad([self.ids[i] for i in anchors] + [self.ids[i] for i in positives])


def loss(stage: StageModel, batch: tuple[torch.Tensor, torch.Tensor], temperature: float,
         attention: str = "bidirectional") -> torch.Tensor:
    input_ids, attention_mask = batch
    # one forward pass over both views: every row gets its own dropout mask
    embeddings = stage.encoder(attention)(input_ids, attention_mask)
    first, second = F.normalize(embeddings, dim=-1).chunk(2)
    scores = first @ second.T / temperature
    return F.cross_entropy(scores, torch.arange(len(first)))
