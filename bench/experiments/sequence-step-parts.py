"""Seconds per training step of SASRec over a 576-d embedding table with a batch run in 4, 8, 16 or 32 length parts
(train_sequence.window_loss), whole dataset, one thread (issue #13: is 8 the right number here?).

    PYTHONPATH=. .venv/bin/python bench/experiments/sequence-step-parts.py 10 amazon-games
"""
import sys, time, torch
from training.llm2rec.data import leave_one_out, load_dataset
from training.llm2rec.sasrec import SASRec, Adapter
from training.llm2rec.train_sequence import EmbeddingItemTable, training_windows, window_loss
from training.llm2rec.precision import adamw
torch.set_num_threads(1)
ds = load_dataset("../shared/data/" + sys.argv[2]); split = leave_one_out(ds.sequences)
n = len(ds.item_ids)
for parts in (4, 8, 16, 32):
    torch.manual_seed(0)
    items = EmbeddingItemTable(torch.randn(n, 576), Adapter(576, 128))
    model = SASRec(128, int(sys.argv[1]), 2, 2, 0.3)
    inputs, masks, targets = training_windows(split.train, int(sys.argv[1]))
    opt = adamw(list(items.parameters()) + list(model.parameters()), lr=1e-3, weight_decay=1e-4)
    batches = torch.randperm(len(inputs)).split(256)
    def step(b):
        loss = window_loss(items, model, inputs[b], masks[b], targets[b], parts=parts)
        opt.zero_grad(); loss.backward(); opt.step(); return loss.item()
    losses = [step(b) for b in batches[:3]]
    t = time.time()
    for b in batches[3:23]: step(b)
    print(parts, "s/step %.3f" % ((time.time() - t) / 20), "epoch est %.0f s" % ((time.time() - t) / 20 * len(batches)), [round(l, 5) for l in losses], flush=True)
