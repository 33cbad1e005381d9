"""Ranking metrics under leave-one-out: each user has exactly one held-out target item, ranked against the whole
catalogue (full ranking, nothing sampled, nothing excluded)."""

import torch

CUTOFFS = (5, 10, 20)


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each row's target among all scored items: the number of items scored strictly higher
    (a tie does not push the target down)."""
    return (scores > scores.gather(1, targets[:, None])).sum(dim=1)


def metric_sums(ranks: torch.Tensor, cutoffs: tuple[int, ...] = CUTOFFS) -> dict[str, float]:
    """Per cutoff K, the sums over users of Recall@K (1 if the target is in the top K) and NDCG@K
    (1 / log2(rank + 2) in the top K, with one relevant item the ideal DCG is 1). Divide by the user count."""
    sums = {}
    for k in cutoffs:
        hit = ranks < k
        sums[f"recall@{k}"] = hit.sum().item()
        sums[f"ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks.double() + 2.0),
                                        torch.zeros((), dtype=torch.float64)).sum().item()
    return sums


def ranking_metrics(ranks: torch.Tensor, cutoffs: tuple[int, ...] = CUTOFFS) -> dict[str, float]:
    """Mean Recall@K and NDCG@K over users, from their targets' 0-based ranks."""
    return {name: value / len(ranks) for name, value in metric_sums(ranks, cutoffs).items()}
