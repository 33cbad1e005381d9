"""Seconds per training step with the logits of a batch in one matmul (gathered) against one per length part (parts,
as train_sequence.window_loss), whole dataset, one thread: same loss (the first losses printed agree), which is
faster (issue #13).

    PYTHONPATH=. .venv/bin/python bench/experiments/sequence-step-one-matmul.py 10 amazon-games
"""
import sys, time, torch
from torch.nn import functional as F
from training.llm2rec.data import leave_one_out, load_dataset
from training.llm2rec.sasrec import SASRec, Adapter
from training.llm2rec.train_sequence import EmbeddingItemTable, IdItemTable, training_windows, window_loss, BATCH_PARTS
from training.llm2rec.precision import adamw
torch.set_num_threads(1)
ds = load_dataset("../shared/data/" + sys.argv[2]); split = leave_one_out(ds.sequences)
n = len(ds.item_ids)
def gathered(items, model, inputs, masks, targets, parts=1):
    item_vectors = items()
    lengths = masks.sum(dim=1)
    hidden_all, target_all = [], []
    for part in torch.argsort(lengths).tensor_split(parts):
        if len(part) == 0: continue
        width = int(lengths[part].max())
        hidden = model.encode(item_vectors[inputs[part, -width:]], masks[part, -width:])
        pt = targets[part, -width:]; pred = pt >= 0
        hidden_all.append(hidden[pred]); target_all.append(pt[pred])
    hidden = torch.cat(hidden_all); t = torch.cat(target_all)
    return F.cross_entropy((hidden @ item_vectors.T).float(), t)
for kind in ("emb", "id"):
  for name, fn in (("parts", window_loss), ("gathered", gathered)):
    torch.manual_seed(0)
    items = IdItemTable(n, 128) if kind == "id" else EmbeddingItemTable(torch.randn(n, 576), Adapter(576, 128))
    model = SASRec(128, int(sys.argv[1]), 2, 2, 0.3)
    inputs, masks, targets = training_windows(split.train, int(sys.argv[1]))
    opt = adamw(list(items.parameters()) + list(model.parameters()), lr=1e-3, weight_decay=1e-4)
    batches = torch.randperm(len(inputs)).split(256)
    def step(b):
        loss = fn(items, model, inputs[b], masks[b], targets[b], parts=BATCH_PARTS)
        opt.zero_grad(); loss.backward(); opt.step(); return loss.item()
    losses = [step(b) for b in batches[:3]]
    t = time.time()
    for b in batches[3:23]: step(b)
    print(kind, name, "s/step %.3f" % ((time.time() - t) / 20), "epoch est %.0f s" % ((time.time() - t) / 20 * len(batches)), "first losses", [round(l, 5) for l in losses], flush=True)
