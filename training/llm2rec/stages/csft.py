"""Stage 1, CSFT (collaborative supervised fine-tuning): next-item title generation with the causal LM.

Input: the user's most recent training items' titles joined by ", " (oldest first, most recent last), cut from
the left to `max_prompt_tokens`; target: the next item's title (cut to `max_target_tokens`) followed by EOS.
Cross-entropy on the target tokens only (position j predicts token j + 1). The ", " between the last history
title and the target is split as "," (end of the prompt) + " Title" (start of the target), so the target
tokenizes as it does in running text.

Examples come only from the training part of each user's sequence (data.leave_one_out: the last two items are
validation and test targets and never appear here, neither as history nor as target). Several datasets are mixed
into one pool, as LLM2Rec mixes its Amazon categories.
"""

import numpy as np
import torch
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from ..data import DataError, Dataset, leave_one_out
from ..train_config import StageConfig
from .loop import StageModel

IGNORE = -100


class CSFTData:
    def __init__(self, datasets: list[Dataset], tokenizer: PreTrainedTokenizerBase, config: StageConfig, seed: int):
        self.titles = [d.titles for d in datasets]
        self.train = [leave_one_out(d.sequences).train for d in datasets]
        self.tokenizer = tokenizer
        self.config = config
        self.seed = seed
        # one example per (dataset, user, position t >= 1 of the user's training part): history s[:t], target s[t]
        rows = [(d, u, t) for d, train in enumerate(self.train) for u, s in enumerate(train) for t in range(1, len(s))]
        self.examples = np.array(rows, dtype=np.int64).reshape(-1, 3)
        if len(self.examples) == 0:
            raise DataError("no CSFT examples: every user needs at least 2 training items (5 interactions in all)")

    def __len__(self) -> int:
        return len(self.examples)

    def items(self, row: int) -> tuple[list[int], int]:
        """(history item indices, target item index) of example `row`, dataset-local."""
        d, u, t = self.examples[row]
        sequence = self.train[d][u]
        return sequence[max(0, t - self.config.max_history) : t], sequence[t]

    def texts(self, row: int) -> tuple[str, str]:
        history, target = self.items(row)
        titles = self.titles[self.examples[row][0]]
        return ", ".join(titles[i] for i in history) + ",", " " + titles[target]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask, labels) [batch, tokens], right-padded; labels[j] = the target token at j + 1
        or IGNORE. The batch depends only on (seed, step)."""
        rng = np.random.default_rng([self.seed, step])
        rows = rng.choice(len(self.examples), size=min(self.config.batch_size, len(self.examples)), replace=False)
        prompts, targets = zip(*(self.texts(int(r)) for r in rows))
        prompt_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        target_ids = self.tokenizer(list(targets), add_special_tokens=False)["input_ids"]
        eos = self.tokenizer.eos_token_id
        sequences, starts = [], []
        for p, t in zip(prompt_ids, target_ids):
            p = p[-self.config.max_prompt_tokens :]  # truncated from the left: the most recent titles stay
            sequences.append(p + t[: self.config.max_target_tokens] + [eos])
            starts.append(len(p))
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.int64)
        attention_mask = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, IGNORE)
        for i, (s, start) in enumerate(zip(sequences, starts)):
            input_ids[i, : len(s)] = torch.tensor(s)
            attention_mask[i, : len(s)] = 1
            labels[i, start - 1 : len(s) - 1] = torch.tensor(s[start:])  # position j predicts token j + 1
        return input_ids, attention_mask, labels


def loss(stage: StageModel, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    input_ids, attention_mask, labels = batch
    hidden = stage.encoder("causal").hidden_states(input_ids, attention_mask)
    predicted = labels != IGNORE
    logits = stage.lm_head(hidden[predicted])  # the LM head only where there is a target: much cheaper
    return F.cross_entropy(logits.float(), labels[predicted])
