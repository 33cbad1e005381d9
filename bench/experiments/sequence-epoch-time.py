"""Seconds per training epoch of an ID sequence model on a whole dataset, one thread, two epochs (issue #13: what a
cell of the tuning grid and of the full evaluation costs). Run it at two commits to compare training procedures:

    PYTHONPATH=. .venv/bin/python bench/experiments/sequence-epoch-time.py amazon-scientific sasrec 50
"""
import sys
import time

import torch

from training.llm2rec.data import leave_one_out, load_dataset
from training.llm2rec.gru4rec import GRU4Rec
from training.llm2rec.sasrec import SASRec
from training.llm2rec.train_sequence import IdItemTable, TrainingPart, train

torch.set_num_threads(1)
name, kind, history = sys.argv[1], sys.argv[2], int(sys.argv[3])
dataset = load_dataset(f"../shared/data/{name}")
split = leave_one_out(dataset.sequences)
torch.manual_seed(0)
model = SASRec(128, history, 2, 2, 0.2) if kind == "sasrec" else GRU4Rec(128, history, dropout=0.2)
items = IdItemTable(len(dataset.item_ids), 128)
started = time.time()
log = train(items, model, [TrainingPart(name, 0, len(dataset.item_ids), split)], epochs=2, batch_size=256,
            learning_rate=1e-3, weight_decay=1e-4, quiet=True)
print(name, kind, f"max_history {history}:", "seconds per epoch", [round(e["seconds"], 1) for e in log["epochs"]],
      "validation recall@20", [round(e["validation"][name]["recall@20"], 4) for e in log["epochs"]],
      f"total {time.time() - started:.1f} s")
