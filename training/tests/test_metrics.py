import math

import pytest
import torch

from training.llm2rec.metrics import ranking_metrics, target_ranks


def test_ranks_count_only_strictly_better_items():
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9], [0.5, 0.5, 0.1]])
    assert target_ranks(scores, torch.tensor([0, 0, 1])).tolist() == [0, 2, 0]  # a tie does not push the target down


def test_recall_and_ndcg_on_hand_made_rankings():
    # Four users whose targets sit at 0-based ranks 0, 4, 9 and 19, and one whose target is far down.
    metrics = ranking_metrics(torch.tensor([0, 4, 9, 19, 500]))
    dcg = {0: 1.0, 4: 1 / math.log2(6), 9: 1 / math.log2(11), 19: 1 / math.log2(21)}
    assert metrics["recall@5"] == pytest.approx(2 / 5)  # ranks 0 and 4 are in the top 5
    assert metrics["recall@10"] == pytest.approx(3 / 5)
    assert metrics["recall@20"] == pytest.approx(4 / 5)
    assert metrics["ndcg@5"] == pytest.approx((dcg[0] + dcg[4]) / 5)
    assert metrics["ndcg@10"] == pytest.approx((dcg[0] + dcg[4] + dcg[9]) / 5)
    assert metrics["ndcg@20"] == pytest.approx(sum(dcg.values()) / 5)


def test_a_perfect_ranking_scores_one_and_a_hopeless_one_zero():
    assert set(ranking_metrics(torch.zeros(7, dtype=torch.int64)).values()) == {1.0}
    assert set(ranking_metrics(torch.full((7,), 20)).values()) == {0.0}  # rank 20 is the 21st place
