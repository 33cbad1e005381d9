"""Diagnostic (issue #11, 2026-12-03): does averaging a trained encoder's weights with the raw backbone's (WiSE-FT,
Wortsman et al. 2022) keep the in-domain gain and win back the out-of-domain loss? Writes a copy of a trials run
whose final model is alpha * trained + (1 - alpha) * raw, for the proxy to score:

    .venv/bin/python training/experiments/weight_interpolation.py runs/trials/next-item-causal-12 /tmp/wise/nic12-a50 0.5
    .venv/bin/python -m training.llm2rec.proxy --dataset ../shared/data/amazon-games \
        --dataset ../shared/data/amazon-scientific --source nic12-a50=run:/tmp/wise/nic12-a50 --out /tmp/wise/nic12-a50.json

Result in docs/training.md ("Session 12"): the scores fall between the two ends; nothing gained.
"""
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training.llm2rec import backbone  # noqa: E402

src, dst, alpha = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
if dst.exists():
    shutil.rmtree(dst)
shutil.copytree(src, dst)
raw = backbone.load_smollm2_model().state_dict()
model_file = dst / "simcse/model/model.safetensors"
trained = load_file(model_file)
mixed = {}
for name, weights in trained.items():
    start = raw[name].to(weights.dtype)
    assert start.shape == weights.shape
    mixed[name] = (alpha * weights.float() + (1 - alpha) * start.float()).to(weights.dtype).contiguous()
print("changed", sum(int(not torch.equal(trained[k], raw[k].to(trained[k].dtype))) for k in trained), "of", len(trained))
save_file(mixed, model_file, metadata={"format": "pt"})
