"""ONNX export of the three graphs, their verification with onnxruntime, and the manifest (docs/bundle-format.md)."""

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import nn

from .backbone import sha256_file
from .bundle_format import GRAPHS, check_manifest

OPSET = 17
TOLERANCE = 1e-4  # max abs difference allowed between onnxruntime and PyTorch outputs

def export_graph(name: str, module: nn.Module, example_inputs: tuple[torch.Tensor, ...], out_dir: Path) -> Path:
    graph = GRAPHS[name]
    path = out_dir / graph.file
    module.eval()
    # The TorchScript-based exporter (dynamo=False) handles these small graphs reliably and needs no onnxscript;
    # torch 2.13 marks it deprecated, which we know. F.embedding's padding_idx range check warns while tracing;
    # it is a constant check, harmless.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="torch.nn.functional")
        torch.onnx.export(
            module,
            example_inputs,
            str(path),
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_axes=graph.dynamic_axes(),
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


@torch.no_grad()
def verify_graph(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], out_dir: Path) -> float:
    """Run the exported graph with onnxruntime on `inputs`; raise unless it matches PyTorch within TOLERANCE."""
    graph = GRAPHS[name]
    file = graph.file
    expected = module.eval()(*inputs).numpy()
    actual = run_onnx(out_dir / file, {key: tensor.numpy() for key, tensor in zip(graph.inputs, inputs)})
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        raise RuntimeError(f"{file}: onnxruntime gave shape {actual.shape} (finite: {np.isfinite(actual).all()}), "
                           f"PyTorch {expected.shape}")
    diff = float(np.abs(actual - expected).max())
    if diff > TOLERANCE:
        raise RuntimeError(f"{file}: onnxruntime differs from PyTorch by {diff:.2e} > {TOLERANCE:.0e}")
    return diff


def file_entries(out_dir: Path) -> dict:
    return {path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
            for path in sorted(out_dir.iterdir()) if path.is_file() and path.name != "manifest.json"}


def write_manifest(out_dir: Path, manifest: dict) -> dict:
    """Add `files` (sha256 and size of every other file in the bundle), check the result against the format's schema
    (ManifestError if it does not match) and write manifest.json."""
    manifest = {**manifest, "files": file_entries(out_dir)}
    text = json.dumps(manifest, indent=2) + "\n"
    check_manifest(json.loads(text))
    (out_dir / "manifest.json").write_text(text)
    return manifest
