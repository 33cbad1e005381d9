"""Seconds per training step of SASRec over a 576-d embedding table (emb) or item ids (id) on the whole amazon-games,
history 10, one thread, and a torch.profiler table of 10 steps: where a step of the full-data evaluation goes
(issue #13).

    PYTHONPATH=. .venv/bin/python bench/experiments/sequence-step-profile.py emb
"""
import sys, time, torch
from torch.profiler import profile, ProfilerActivity
from training.llm2rec.data import leave_one_out, load_dataset
from training.llm2rec.sasrec import SASRec, Adapter
from training.llm2rec.train_sequence import EmbeddingItemTable, IdItemTable, training_windows, window_loss, BATCH_PARTS
from training.llm2rec.precision import adamw
torch.set_num_threads(1)
ds = load_dataset("../shared/data/amazon-games"); split = leave_one_out(ds.sequences)
n = len(ds.item_ids)
kind = sys.argv[1]
items = IdItemTable(n, 128) if kind == "id" else EmbeddingItemTable(torch.randn(n, 576), Adapter(576, 128))
model = SASRec(128, 10, 2, 2, 0.3)
inputs, masks, targets = training_windows(split.train, 10)
print("windows", len(inputs), "positions", int((targets >= 0).sum()))
opt = adamw(list(items.parameters()) + list(model.parameters()), lr=1e-3, weight_decay=1e-4)
batches = torch.randperm(len(inputs)).split(256)
def step(b):
    loss = window_loss(items, model, inputs[b], masks[b], targets[b], parts=BATCH_PARTS)
    opt.zero_grad(); loss.backward(); opt.step()
for b in batches[:3]: step(b)
t = time.time()
for b in batches[3:23]: step(b)
print("s/step", (time.time() - t) / 20, "steps/epoch", len(batches), "epoch est", (time.time() - t) / 20 * len(batches))
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for b in batches[23:33]: step(b)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
