"""Seconds per training step with the full-softmax loss computed in row chunks that never hold the whole [positions,
items] logits (the gradients made in the forward pass, chunk by chunk, as fused linear-cross-entropy kernels do)
against train_sequence.window_loss, amazon-games, one thread. Prints the two losses and the largest gradient
difference first (the same loss), then s/step for chunks of 128, 512 and 2048 rows, twice (issue #13).

    PYTHONPATH=. .venv/bin/python bench/experiments/sequence-step-fused-ce.py 10
"""
import sys, time, torch
from training.llm2rec.data import leave_one_out, load_dataset
from training.llm2rec.sasrec import SASRec, Adapter
from training.llm2rec.train_sequence import EmbeddingItemTable, training_windows, window_loss, BATCH_PARTS
torch.set_num_threads(1)

class ChunkedCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, table, targets, chunk):
        grad_hidden = torch.empty_like(hidden)
        grad_table = torch.zeros_like(table)
        loss = hidden.new_zeros((), dtype=torch.float32)
        for s in range(0, hidden.shape[0], chunk):
            h = hidden[s:s + chunk]; t = targets[s:s + chunk]
            logits = (h @ table.T).float()
            lse = torch.logsumexp(logits, dim=1)
            rows = torch.arange(len(t))
            loss += (lse - logits[rows, t]).sum()
            logits.sub_(lse[:, None]).exp_()
            logits[rows, t] -= 1
            g = logits.to(hidden.dtype)
            grad_hidden[s:s + chunk] = g @ table
            grad_table.addmm_(g.T, h)
        ctx.save_for_backward(grad_hidden, grad_table)
        return loss
    @staticmethod
    def backward(ctx, grad_loss):
        gh, gt = ctx.saved_tensors
        return gh * grad_loss, gt * grad_loss, None, None

def fused_loss(items, model, inputs, masks, targets, parts, chunk):
    item_vectors = items()
    lengths = masks.sum(dim=1)
    total, count = None, 0
    for part in torch.argsort(lengths).tensor_split(parts):
        if len(part) == 0: continue
        width = int(lengths[part].max())
        hidden = model.encode(item_vectors[inputs[part, -width:]], masks[part, -width:])
        pt = targets[part, -width:]; pred = pt >= 0
        loss = ChunkedCE.apply(hidden[pred], item_vectors, pt[pred], chunk)
        total = loss if total is None else total + loss
        count += int(pred.sum())
    return total / count

ds = load_dataset("../shared/data/amazon-games"); split = leave_one_out(ds.sequences)
n = len(ds.item_ids)
H = int(sys.argv[1]) if len(sys.argv) > 1 else 10
inputs, masks, targets = training_windows(split.train, H)
torch.manual_seed(0)
emb = torch.randn(n, 576)
items = EmbeddingItemTable(emb, Adapter(576, 128)); model = SASRec(128, H, 2, 2, 0.0)
batches = torch.randperm(len(inputs)).split(256)
# equivalence
b = batches[0]
for f in ("ref", "fused"):
    items.zero_grad(); model.zero_grad()
    l = window_loss(items, model, inputs[b], masks[b], targets[b], parts=BATCH_PARTS) if f == "ref" else fused_loss(items, model, inputs[b], masks[b], targets[b], BATCH_PARTS, 256)
    l.backward()
    g = torch.cat([p.grad.flatten() for p in list(items.parameters()) + list(model.parameters())])
    print(f, l.item())
    if f == "ref": g0 = g
print("grad max abs diff", float((g - g0).abs().max()), "max abs grad", float(g0.abs().max()))
opt = torch.optim.AdamW(list(items.parameters()) + list(model.parameters()), lr=1e-3)
def run(fn, label, k=12):
    for b in batches[1:3]:
        l = fn(b); opt.zero_grad(); l.backward(); opt.step()
    t = time.time()
    for b in batches[3:3 + k]:
        l = fn(b); opt.zero_grad(); l.backward(); opt.step()
    print(f"{label:20s} {(time.time() - t) / k:.3f} s/step", flush=True)
for rep in range(2):
    run(lambda b: window_loss(items, model, inputs[b], masks[b], targets[b], parts=BATCH_PARTS), "reference")
    for c in (128, 512, 2048):
        run(lambda b: fused_loss(items, model, inputs[b], masks[b], targets[b], BATCH_PARTS, c), f"fused chunk {c}")
