"""Train a sequence model (SASRec or GRU4Rec) over an item table by next-item prediction at every position, with a
full softmax over the whole catalogue (each window's own dataset's, when several train together), and evaluate it by
full ranking under leave-one-out.

An item table gives the vector of every catalogue item: either frozen item embeddings (LLM2Rec, MiniLM, the raw
backbone) behind a trainable adapter, or learned ID embeddings (the ID baselines). The sequence model only sees
those vectors.
"""

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from .data import DataError, Split
from .metrics import metric_sums, ranking_metrics, target_ranks
from .precision import Precision, adamw, autocast, resolve
from .sasrec import Adapter

SELECTION_METRIC = "recall@20"  # early stopping and the best epoch are chosen on this validation metric
# How training batches and pads, as part of what decides a result (evaluate.protocol_identity): a change here makes
# every saved evaluation and tuning cell be computed again.
TRAINING_PROCEDURE = "random batches, each run in 8 parts of about one window length; GRU4Rec packed, learned start"
# Parts a training batch runs in (window_loss). Batches of windows of one length instead (each padded to its longest)
# were as fast but trained worse: amazon-scientific ID-GRU4Rec validation Recall@20 0.0845 against 0.0917 with random
# batches, 2026-12-03.
BATCH_PARTS = 8
# How several datasets train together (the zero-shot mix, multi-dataset bundles): each window's softmax over its own
# dataset's items, the task a target domain poses (serving, too, ranks within one domain). A softmax over the combined
# catalogue spends the step on telling the datasets apart, and its training epoch took 1.45 times as long (153 s
# against 105 s for amazon-games + movielens-small, bf16, one thread, 2026-12-04). Part of zero-shot results'
# identity (evaluate.protocol_identity); single-dataset training does not depend on it.
MIX_SOFTMAX = "per dataset: each training window against its own dataset's items"
# Memory bounds for large catalogues, in float elements. A training batch whose logits (predicted positions x items)
# exceed LOGITS_IN_MEMORY is backpropagated in chunks of at most that many (chunked_backward: the same gradients up to
# float rounding). Below it the whole batch runs as one graph, bit for bit as every saved cell was computed; every
# dataset here stays below it, the largest, amazon-games, at 2,560 x 16,859 = 43M. Ranking scores users in batches
# of at most 1,024 and of at most SCORES_IN_MEMORY scores.
LOGITS_IN_MEMORY = 2**27
SCORES_IN_MEMORY = 2**26
RANKING_BATCH = 1024


class EmbeddingItemTable(nn.Module):
    """Frozen item embeddings [items, item_dim] behind a trainable adapter: only the adapter learns."""

    def __init__(self, embeddings: torch.Tensor, adapter: Adapter):
        super().__init__()
        self.register_buffer("embeddings", embeddings, persistent=False)
        self.adapter = adapter

    def forward(self) -> torch.Tensor:
        return self.adapter(self.embeddings)


class IdItemTable(nn.Module):
    """One learned vector per item id (LayerNorm-ed like the adapter's output): knows nothing of unseen items."""

    def __init__(self, items: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(items, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self) -> torch.Tensor:
        return self.norm(self.embedding.weight)


@dataclass
class TrainingPart:
    """One dataset inside the combined catalogue: its items are rows offset..offset+items of the item table."""

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


@torch.no_grad()
def evaluate(model: nn.Module, item_vectors: torch.Tensor, histories: list[list[int]], targets: list[int]) -> dict:
    """Recall and NDCG at 5, 10, 20 of one dataset: item_vectors are that dataset's catalogue (the item table's
    output), histories/targets index into it. Users are ranked in batches of about one history length, each padded
    to its longest (the models' outputs do not depend on the padding), of at most RANKING_BATCH users and
    SCORES_IN_MEMORY scores."""
    batch_size = max(1, min(RANKING_BATCH, SCORES_IN_MEMORY // len(item_vectors)))
    model.eval()
    sums: dict[str, float] = {}
    lengths = [min(len(history), model.max_history) for history in histories]
    order = sorted(range(len(targets)), key=lengths.__getitem__)
    for start in range(0, len(targets), batch_size):
        chosen = order[start : start + batch_size]
        indices, mask = left_pad([histories[i] for i in chosen], max(1, max(lengths[i] for i in chosen)))
        users = model(item_vectors[indices], mask)
        scores = users @ item_vectors.T
        batch_targets = torch.tensor([targets[i] for i in chosen])
        for name, value in metric_sums(target_ranks(scores, batch_targets)).items():
            sums[name] = sums.get(name, 0.0) + value
    return {**{name: value / len(targets) for name, value in sums.items()}, "users": len(targets)}


def popularity(split: Split, items: int) -> dict:
    """Baseline: the same ranking for every user, by interaction count in the training split (ties: lower index
    first, so tied items are not all ranked above the target)."""
    counts = torch.zeros(items, dtype=torch.int64)
    for sequence in split.train:
        if sequence:
            counts.index_add_(0, torch.tensor(sequence), torch.ones(len(sequence), dtype=torch.int64))
    rank = torch.empty(items, dtype=torch.int64)
    rank[torch.argsort(-counts, stable=True)] = torch.arange(items)
    return {split_name: {**ranking_metrics(rank[torch.tensor(targets)]), "users": len(targets)}
            for split_name, targets in (("validation", split.valid_targets), ("test", split.test_targets))}


# A dataset's rows of the item table and the indices of a batch's windows from that dataset.
Group = tuple[slice, torch.Tensor]


def window_loss(items: nn.Module, model: nn.Module, inputs: torch.Tensor, masks: torch.Tensor,
                targets: torch.Tensor, parts: int = 1, groups: list[Group] | None = None) -> torch.Tensor:
    """Full-softmax next-item cross-entropy of a batch of windows, the mean over its predicted positions. The
    softmax is over every item of the table, or, with `groups` (a batch that mixes datasets, `dataset_groups`), over
    the items of each window's own dataset. With `parts` > 1 the windows run sorted by length in that many parts,
    each padded only to its longest window: the same loss as the whole batch padded to max_history (the models'
    outputs do not depend on left padding), for a fraction of the compute (amazon-games: a median history of 6
    items in windows of up to 50). Under bf16 autocast the table, the sequence model and the logits matmul run in
    bf16; the softmax and loss in fp32."""
    item_vectors = items()  # every step: the table is being trained
    total, predicted_count = None, 0
    for rows, chosen in batch_parts(masks, groups, lambda rows, windows: parts):
        loss, predicted = summed_loss(item_vectors, rows, model, inputs[chosen], masks[chosen], targets[chosen])
        total = loss if total is None else total + loss
        predicted_count += predicted
    return total / predicted_count


def batch_parts(masks: torch.Tensor, groups: list[Group] | None,
                parts: Callable[[slice, int], int]) -> list[tuple[slice, torch.Tensor]]:
    """The (rows of the item table, window indices) a batch's loss is computed in: each group's windows (default:
    one group, every window over the whole table) sorted by length in `parts(rows, windows)` nonempty parts."""
    return [(rows, windows[part]) for rows, windows in groups or [(slice(None), torch.arange(len(masks)))]
            for part in length_parts(masks[windows], parts(rows, len(windows)))]


def dataset_groups(window_datasets: torch.Tensor, parts: list["TrainingPart"]) -> list[Group]:
    """A batch's windows by dataset (`window_datasets`: each window's index in `parts`), each with its dataset's
    rows of the combined item table."""
    return [(slice(part.offset, part.offset + part.items), chosen)
            for number, part in enumerate(parts) if len(chosen := (window_datasets == number).nonzero().flatten())]


def length_parts(masks: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """The window indices sorted by length, in `parts` nonempty groups."""
    return [part for part in torch.argsort(masks.sum(dim=1)).tensor_split(parts) if len(part)]


def summed_loss(item_vectors: torch.Tensor, rows: slice, model: nn.Module, inputs: torch.Tensor, masks: torch.Tensor,
                targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The cross-entropy, over the items in `rows` of the table, summed over a group of windows' predicted positions
    (padded to its longest window), and the number of those positions."""
    width = int(masks.sum(dim=1).max())
    hidden = model.encode(item_vectors[inputs[:, -width:]], masks[:, -width:])
    part_targets = targets[:, -width:]
    predicted = part_targets >= 0
    logits = hidden[predicted] @ item_vectors[rows].T
    return (F.cross_entropy(logits.float(), part_targets[predicted] - (rows.start or 0), reduction="sum"),
            int(predicted.sum()))


def chunked_backward(items: nn.Module, model: nn.Module, inputs: torch.Tensor, masks: torch.Tensor,
                     targets: torch.Tensor, precision: Precision, groups: list[Group] | None = None) -> float:
    """window_loss's gradients for a batch whose logits would not fit in LOGITS_IN_MEMORY: the windows run sorted
    by length in chunks of at most that many logits, each backpropagated before the next into a detached copy of
    the item table's output, whose gradient then flows through the table once. Returns the batch's loss."""
    with autocast(precision):
        item_vectors = items()
    table = item_vectors.detach().requires_grad_()
    predicted_count = int((targets >= 0).sum())

    def chunks(rows: slice, windows: int) -> int:  # a window predicts at most max_history items
        return -(-windows // max(1, LOGITS_IN_MEMORY // (len(table[rows]) * targets.shape[1])))

    total = 0.0
    for rows, chosen in batch_parts(masks, groups, chunks):
        with autocast(precision):
            loss, _ = summed_loss(table, rows, model, inputs[chosen], masks[chosen], targets[chosen])
        (loss / predicted_count).backward()
        total += loss.item()
    item_vectors.backward(table.grad)
    return total / predicted_count


def save_atomically(file: Path, state: dict) -> None:
    """torch.save `state` to `file` so that an interruption (or another process writing it) leaves either the
    previous file or this one, never a part."""
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    torch.save(state, temporary)
    temporary.replace(file)


def train(items: nn.Module, model: nn.Module, parts: list[TrainingPart], epochs: int, batch_size: int,
          learning_rate: float, weight_decay: float, patience: int | None = None, quiet: bool = False,
          precision: Precision | None = None, checkpoint: Path | None = None) -> dict:
    """Train on every part's training split, each window's softmax over its own part's items (random batches mix
    the parts; one part: the whole table, as in-domain). After each epoch, evaluate on
    validation; stop when the mean validation Recall@20 over parts has not improved for `patience` epochs (None:
    run every epoch). At the end the weights of the best epoch are restored. `precision` (default: bf16 where the
    CPU has it, precision.py) applies to training steps; validation ranks in fp32.

    With `checkpoint`, everything the next epoch depends on (weights, optimizer, best weights so far, random state,
    log) is written there after every epoch, and a training that finds the file continues after its last epoch:
    the same epochs as an uninterrupted run. The caller names the file after what decides the run and removes it
    when it has kept the result."""
    precision = precision or resolve("auto")
    windows = [training_windows([[part.offset + i for i in s] for s in part.split.train], model.max_history)
               for part in parts]
    inputs, masks, targets = (torch.cat(tensors) for tensors in zip(*windows))
    window_datasets = torch.cat([torch.full((len(w[0]),), number) for number, w in enumerate(windows)])
    if len(inputs) == 0:
        raise DataError(f"{' + '.join(part.name for part in parts)}: no user has 4 or more interactions, so the "
                        f"training split (each user's items but the last two) holds no next-item pair to train a "
                        f"sequence model on")
    catalogue = max(part.items for part in parts)  # the largest softmax
    params = list(items.parameters()) + list(model.parameters())
    optimizer = adamw(params, lr=learning_rate, weight_decay=weight_decay)

    log = {"epochs": [], "selection_metric": SELECTION_METRIC, "patience": patience, "precision": precision.record()}
    best_score, best_state, since_best, stopped = -1.0, None, 0, False
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=True)
        items.load_state_dict(saved["items"])
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        log, best_score, best_state, since_best, stopped = (saved[k] for k in
                                                            ("log", "best_score", "best_state", "since_best", "stopped"))
        log.setdefault("resumed_after_epochs", []).append(len(log["epochs"]))
        print(f"resumed from {checkpoint} after epoch {len(log['epochs'])}", flush=True)
    first = epochs + 1 if stopped else len(log["epochs"]) + 1  # a run that had stopped early trains no further
    for epoch in range(first, epochs + 1):
        items.train()
        model.train()
        started = time.time()
        batches = torch.randperm(len(inputs)).split(batch_size)
        total_loss = 0.0
        steps = len(batches)
        progress = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="step", disable=quiet)
        for step, batch in enumerate(progress):
            groups = dataset_groups(window_datasets[batch], parts) if len(parts) > 1 else None
            if int((targets[batch] >= 0).sum()) * catalogue <= LOGITS_IN_MEMORY:
                with autocast(precision):
                    loss = window_loss(items, model, inputs[batch], masks[batch], targets[batch], BATCH_PARTS, groups)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                total_loss += loss.item()
            else:  # a catalogue too large for the whole batch's logits at once
                optimizer.zero_grad(set_to_none=True)
                total_loss += chunked_backward(items, model, inputs[batch], masks[batch], targets[batch], precision,
                                               groups)
            optimizer.step()
            progress.set_postfix(loss=f"{total_loss / (step + 1):.3f}")

        items.eval()
        with torch.no_grad():
            item_vectors = items()
        validation = {part.name: evaluate(model, item_vectors[part.offset : part.offset + part.items],
                                          part.split.valid_histories, part.split.valid_targets)
                      for part in parts}
        score = sum(m[SELECTION_METRIC] for m in validation.values()) / len(validation)
        log["epochs"].append({"epoch": epoch, "loss": total_loss / steps, "seconds": time.time() - started,
                              "validation": validation})
        print(f"epoch {epoch}: loss {total_loss / steps:.4f}, validation "
              + ", ".join(f"{name} R@20 {m['recall@20']:.4f} N@10 {m['ndcg@10']:.4f}" for name, m in validation.items()),
              flush=True)
        if score > best_score:
            best_score, log["best_epoch"], since_best = score, epoch, 0
            best_state = copy.deepcopy((items.state_dict(), model.state_dict()))
        else:
            since_best += 1
            if patience is not None and since_best >= patience:
                print(f"early stop: no better validation {SELECTION_METRIC} for {patience} epochs", flush=True)
                stopped = True
        if checkpoint is not None:
            save_atomically(checkpoint, {"items": items.state_dict(), "model": model.state_dict(),
                                         "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                                         "log": log, "best_score": best_score, "best_state": best_state,
                                         "since_best": since_best, "stopped": stopped})
        if stopped:
            break

    items.load_state_dict(best_state[0])
    model.load_state_dict(best_state[1])
    items.eval()
    model.eval()
    return log
