"""Diagnostic (issue #11, 2026-12-03): the proxy's zero-shot column standardizes each catalogue's embeddings with its
own statistics, the evaluation's SASRec adapter takes them as they are. Does that explain why the trained encoder
loses more zero-shot in the evaluation (-12%) than on the proxy (-2%)? The proxy's zero-shot adapter (fitted on
amazon-games, scoring amazon-scientific) under three input normalizations: per catalogue (the proxy's), the
training domain's statistics applied to the target, none. Run from the repository root (cached embeddings are reused):

    OMP_NUM_THREADS=1 .venv/bin/python training/experiments/zero_shot_normalization.py

Result in docs/training.md ("Session 12"): within 0.0007 of each other for every encoder; not the explanation.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training.llm2rec import proxy  # noqa: E402
from training.llm2rec.data import load_dataset  # noqa: E402
from training.llm2rec.item_embeddings import embed_catalogue  # noqa: E402

ENCODERS = {"raw-6-causal": "backbone:quick", "next-item-causal-12": "run:runs/trials/next-item-causal-12",
            "raw-12-causal": "smollm2:12:causal"}
games, scientific = load_dataset("../shared/data/amazon-games"), load_dataset("../shared/data/amazon-scientific")


def fit_adapter(embeddings: np.ndarray, standardized: bool):
    """The proxy's adapter fitted on amazon-games, its inputs standardized per dimension (as the proxy) or not."""
    standardize = proxy.standardize
    if not standardized:
        proxy.standardize = lambda e: torch.from_numpy(np.asarray(e, dtype=np.float32))
    try:
        return proxy.fit_adapter(embeddings, *proxy.training_pairs(games))
    finally:
        proxy.standardize = standardize


results = {}
for name, spec in ENCODERS.items():
    source = proxy.open_proxy_source(spec)
    on_games = embed_catalogue(source, games.titles, games.name)
    on_scientific = torch.from_numpy(embed_catalogue(source, scientific.titles, scientific.name).astype(np.float32))
    mean, std = torch.from_numpy(on_games.mean(0)), torch.from_numpy(on_games.astype(np.float32).std(0, ddof=1)).clamp(min=1e-6)
    queries, targets = proxy.next_item_pairs(scientific)
    standardized = fit_adapter(on_games, standardized=True)
    inputs = {
        "per-catalogue": (standardized, proxy.standardize(on_scientific.numpy())),
        "training-domain stats": (standardized, (on_scientific - mean) / std),
        "none": (fit_adapter(on_games, standardized=False), on_scientific),
    }
    with torch.no_grad():
        results[name] = {variant: round(proxy.retrieval(adapter(x), queries, targets)["ndcg@10"], 4)
                         for variant, (adapter, x) in inputs.items()}
    print(name, results[name], flush=True)
print(json.dumps(results, indent=1))
