"""Train the adapter + SASRec over frozen item embeddings (next-item prediction at every position, full softmax
over the whole catalogue), and evaluate Recall@10 / NDCG@10 with full ranking under leave-one-out."""

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from tqdm import tqdm

from .data import Split
from .sasrec import SASRec, Adapter

TOP_K = 10


@dataclass
class TrainingPart:
    """One dataset inside the combined catalogue: its items are rows offset..offset+items of the embedding matrix."""

    name: str
    offset: int
    items: int
    split: Split  # dataset-local item indices


def left_pad(histories: list[list[int]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the last `length` items of each history, left-pad with index 0 and mask 0: (indices, mask) [N, length]."""
    indices = torch.zeros((len(histories), length), dtype=torch.int64)
    mask = torch.zeros((len(histories), length), dtype=torch.int64)
    for row, history in enumerate(histories):
        recent = history[-length:]
        if recent:
            indices[row, length - len(recent):] = torch.tensor(recent)
            mask[row, length - len(recent):] = 1
    return indices, mask


def training_windows(sequences: list[list[int]], max_history: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-item examples. A sequence is cut, from its end, into windows of max_history + 1 items overlapping by one
    item, so each item after the first is a target exactly once. Returns left-padded (inputs, mask, targets)
    [windows, max_history]; at position t the target is the item after inputs[t]; padded targets are -1."""
    inputs, targets = [], []
    for sequence in sequences:
        for end in range(len(sequence), 1, -max_history):
            window = sequence[max(0, end - max_history - 1) : end]
            inputs.append(window[:-1])
            targets.append(window[1:])
    input_indices, mask = left_pad(inputs, max_history)
    target_indices, _ = left_pad(targets, max_history)
    return input_indices, mask, target_indices.masked_fill(mask == 0, -1)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each row's target among all scored items (full ranking, nothing excluded): the number of
    items scored strictly higher."""
    return (scores > scores.gather(1, targets[:, None])).sum(dim=1)


def hits_and_ndcg(ranks: torch.Tensor) -> tuple[float, float]:
    """Sums of Recall@10 and NDCG@10 over users with one target each, from the targets' 0-based ranks."""
    hit = ranks < TOP_K
    ndcg = torch.where(hit, 1.0 / torch.log2(ranks.double() + 2.0), torch.zeros((), dtype=torch.float64))
    return hit.sum().item(), ndcg.sum().item()


@torch.no_grad()
def evaluate(adapter: Adapter, sasrec: SASRec, item_embeddings: torch.Tensor, histories: list[list[int]],
             targets: list[int], batch_size: int = 1024) -> dict:
    """Metrics of one dataset; item_embeddings are that dataset's catalogue, histories/targets index into it."""
    adapter.eval()
    sasrec.eval()
    item_vectors = adapter(item_embeddings)
    hits = ndcg = 0.0
    for start in range(0, len(targets), batch_size):
        indices, mask = left_pad(histories[start : start + batch_size], sasrec.max_history)
        users = sasrec(item_vectors[indices], mask)
        ranks = target_ranks(users @ item_vectors.T, torch.tensor(targets[start : start + batch_size]))
        batch_hits, batch_ndcg = hits_and_ndcg(ranks)
        hits, ndcg = hits + batch_hits, ndcg + batch_ndcg
    return {"recall@10": hits / len(targets), "ndcg@10": ndcg / len(targets), "users": len(targets)}


def popularity(split: Split, items: int) -> dict:
    """Baseline: the same ranking for every user, by interaction count in the training split (ties: lower index
    first, so tied items are not all ranked above the target)."""
    counts = torch.zeros(items, dtype=torch.int64)
    for sequence in split.train:
        counts.index_add_(0, torch.tensor(sequence), torch.ones(len(sequence), dtype=torch.int64))
    rank = torch.empty(items, dtype=torch.int64)
    rank[torch.argsort(-counts, stable=True)] = torch.arange(items)
    metrics = {}
    for split_name, targets in (("validation", split.valid_targets), ("test", split.test_targets)):
        hits, ndcg = hits_and_ndcg(rank[torch.tensor(targets)])
        metrics[split_name] = {"recall@10": hits / len(targets), "ndcg@10": ndcg / len(targets)}
    return metrics


def train(adapter: Adapter, sasrec: SASRec, item_embeddings: torch.Tensor, parts: list[TrainingPart], epochs: int,
          batch_size: int, learning_rate: float, weight_decay: float) -> dict:
    """Train on every part's training split, softmax over all items of all parts. After each epoch, evaluate on
    validation; at the end the weights of the best epoch (mean validation NDCG@10 over parts) are restored."""
    windows = [training_windows([[part.offset + i for i in s] for s in part.split.train], sasrec.max_history)
               for part in parts]
    inputs, masks, targets = (torch.cat(tensors) for tensors in zip(*windows))
    params = list(adapter.parameters()) + list(sasrec.parameters())
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)

    log = {"epochs": []}
    best_score, best_state = -1.0, None
    for epoch in range(1, epochs + 1):
        adapter.train()
        sasrec.train()
        started = time.time()
        order = torch.randperm(len(inputs))
        total_loss = 0.0
        steps = math.ceil(len(order) / batch_size)
        progress = tqdm(range(steps), desc=f"epoch {epoch}/{epochs}", unit="step")
        for step in progress:
            batch = order[step * batch_size : (step + 1) * batch_size]
            item_vectors = adapter(item_embeddings)  # every step: the adapter is being trained
            hidden = sasrec.encode(item_vectors[inputs[batch]], masks[batch])
            batch_targets = targets[batch]
            predicted = batch_targets >= 0
            logits = hidden[predicted] @ item_vectors.T
            loss = F.cross_entropy(logits, batch_targets[predicted])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item()
            progress.set_postfix(loss=f"{total_loss / (step + 1):.3f}")

        validation = {part.name: evaluate(adapter, sasrec, item_embeddings[part.offset : part.offset + part.items],
                                          part.split.valid_histories, part.split.valid_targets)
                      for part in parts}
        score = sum(m["ndcg@10"] for m in validation.values()) / len(validation)
        log["epochs"].append({"epoch": epoch, "loss": total_loss / steps, "seconds": time.time() - started,
                              "validation": validation})
        print(f"epoch {epoch}: loss {total_loss / steps:.4f}, validation "
              + ", ".join(f"{name} R@10 {m['recall@10']:.4f} N@10 {m['ndcg@10']:.4f}" for name, m in validation.items()))
        if score > best_score:
            best_score, log["best_epoch"] = score, epoch
            best_state = copy.deepcopy((adapter.state_dict(), sasrec.state_dict()))

    adapter.load_state_dict(best_state[0])
    sasrec.load_state_dict(best_state[1])
    adapter.eval()
    sasrec.eval()
    return log
