import torch

from training.llm2rec.data import leave_one_out
from training.llm2rec.train_sequence import hits_and_ndcg, popularity, target_ranks


def test_ranks_and_metrics():
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.1, 0.5, 0.9], [0.5, 0.5, 0.1]])
    ranks = target_ranks(scores, torch.tensor([0, 0, 1]))
    assert ranks.tolist() == [0, 2, 0]  # a tie does not push the target down
    hits, ndcg = hits_and_ndcg(torch.tensor([0, 2, 9, 10]))
    assert hits == 3
    assert abs(ndcg - (1.0 + 0.5 + 1 / 3.4594316186372973)) < 1e-12  # 1/log2(2) + 1/log2(4) + 1/log2(11)


def test_popularity_counts_only_training_items():
    # Every user trains on two of the items 5..16 and has the (otherwise unseen) items 3 and 4 as validation and
    # test targets: counted on train, 3 and 4 rank behind the 12 training items and the unseen 0, 1, 2.
    split = leave_one_out([[a, a + 1, 3, 4] for a in range(5, 17, 2)])
    metrics = popularity(split, items=20)
    assert metrics["validation"] == {"recall@10": 0.0, "ndcg@10": 0.0}
    assert metrics["test"] == {"recall@10": 0.0, "ndcg@10": 0.0}
    # with 3 and 4 also seen in training they would be the most popular items
    split.train = [s + [3, 4] for s in split.train]
    assert popularity(split, items=20)["validation"]["recall@10"] == 1.0
