"""The fast path of training: bf16 autocast only where the CPU computes bf16 natively, fused AdamW, and title batches
drawn by length; a tiny model trained with it still learns."""

import numpy as np
import pytest
import torch

from training.llm2rec.precision import adamw, autocast, resolve
from training.llm2rec.stages.loop import StageModel, Stop, run_stage
from training.llm2rec.stages.simcse import SimCSEData
from training.llm2rec.train_config import LoraSettings, StageConfig, resolve as resolve_config
from training.llm2rec.train_encoder import stage_loss, title_tokenizer


def test_auto_uses_bf16_only_with_native_support():
    assert resolve("auto", flags={"avx2", "avx512f"}).dtype is None  # no bf16 unit: fp32, not emulated bf16
    assert "neither" in resolve("auto", flags={"avx2"}).reason
    assert resolve("auto", flags={"avx512f", "avx512_bf16"}).dtype is torch.bfloat16
    assert resolve("auto", flags={"amx_bf16", "amx_tile"}).dtype is torch.bfloat16
    assert resolve("fp32", flags={"avx512_bf16"}).dtype is None
    assert resolve("bf16", flags=set()).dtype is torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve("fp16")


def test_autocast_runs_matmuls_in_bf16_and_keeps_weights_fp32():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with autocast(resolve("bf16")):
        assert layer(x).dtype is torch.bfloat16
    with autocast(resolve("fp32")):
        assert layer(x).dtype is torch.float32
    assert layer.weight.dtype is torch.float32
    optimizer = adamw(layer.parameters(), lr=0.1)
    assert optimizer.defaults["fused"] is True


def _titles():
    """8 titles of each length from 1 to 24 words, in an order unrelated to length."""
    return [f"Game{k}" + " a" * n for k in range(8) for n in range(1, 25)]


@pytest.mark.parametrize("bucketed", [True, False])
def test_title_batches_by_length(tiny_backbone, bucketed):
    config = StageConfig(batch_size=16, bucket_by_length=bucketed)
    data = SimCSEData(_titles(), title_tokenizer(tiny_backbone.tokenizer, resolve_config("tiny")), config, seed=0)
    padding, drawn = [], set()
    for step in range(30):
        ids, mask = data.batch(step)
        assert ids.shape[0] == 32 and torch.equal(ids[:16], ids[16:])  # both views of each title
        assert torch.equal(data.batch(step)[0], ids)  # a function of (seed, step)
        ids, mask = ids[:16], mask[:16]
        assert len({tuple(row.tolist()) for row in ids}) == 16  # no title twice in a batch
        padding.append(1 - mask.float().mean().item())
        drawn.update(tuple(row.tolist()) for row in ids)
    assert len(drawn) > 150  # batches still cover the whole catalogue
    if bucketed:
        assert np.mean(padding) < 0.1  # a window of the length order: nearly equal lengths
    else:
        assert np.mean(padding) > 0.3  # uniform batches mix 2-token and 25-token titles


def test_bf16_training_lowers_the_loss(tiny_backbone, tmp_path):
    config = StageConfig(steps=25, batch_size=16, learning_rate=3e-3, warmup_steps=3, dropout=0.2)
    data = SimCSEData(_titles(), title_tokenizer(tiny_backbone.tokenizer, resolve_config("tiny")), config, seed=0)
    import copy

    stage = StageModel(copy.deepcopy(tiny_backbone.model), LoraSettings())
    stage.set_attention_dropout(config.dropout)
    outcome = run_stage("simcse", stage, config, lambda step: stage_loss("simcse", resolve_config("tiny"), stage,
                                                                         data.batch(step)),
                        tmp_path, 60, Stop(None), resolve("bf16"))
    summary = outcome.summary
    assert summary["precision"]["used"] == "bf16"
    assert summary["final_loss"] < summary["first_loss"]
    assert all(p.dtype is torch.float32 for p in stage.model.parameters())  # master weights stay fp32


def test_next_item_positives_pair_consecutive_training_items(tiny_backbone):
    from training.llm2rec.data import Dataset
    from training.llm2rec.stages.simcse import NextItemData

    titles = [f"Item {i}" for i in range(40)]
    sequences = [list(range(u, u + 6)) for u in range(0, 30, 3)]  # each user: 6 consecutive items
    dataset = Dataset("d", "d", [str(i) for i in range(40)], titles, sequences)
    tokenizer = title_tokenizer(tiny_backbone.tokenizer, resolve_config("tiny"))
    data = NextItemData([dataset], tokenizer, StageConfig(batch_size=4, positives="next-item"), seed=0)
    allowed = {(s[i], s[i + 1]) for s in sequences for i in range(len(s) - 3)}  # the last two items are held out
    assert {tuple(p) for p in data.pairs.tolist()} == allowed
    ids, mask = data.batch(0)
    decoded = [tokenizer.tokenizer.decode([t for t, m in zip(row, keep) if m]) for row, keep in
               zip(ids.tolist(), mask.tolist())]
    anchors, positives = decoded[:4], decoded[4:]
    pairs = {(int(a.split()[-1]), int(b.split()[-1])) for a, b in zip(anchors, positives)}
    assert pairs <= allowed and len(pairs) == 4
    items = [i for pair in pairs for i in pair]
    assert len(items) == len(set(items))  # no item twice in a batch: no false negatives
