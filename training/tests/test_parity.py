"""Parity on the tiny bundle: the PyTorch reference rebuilt from a bundle, PyTorch vs onnxruntime within 1e-4 on real
titles and histories, and the int8 encoder variant with its fidelity gate."""

import json
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from training.llm2rec.backbone import sha256_file
from training.llm2rec.export import TOLERANCE
from training.llm2rec.parity import prepare, read_f32, reference_modules
from training.llm2rec.quantize import INT8_FILE, quantize_bundle, weight_only_int8


@pytest.fixture(scope="module")
def scientific(games_dir):
    return games_dir.parent / "amazon-scientific"


@torch.no_grad()
def test_reference_modules_are_the_exported_ones(tiny_bundle):
    manifest = json.loads((tiny_bundle.path / "manifest.json").read_text())
    encoder, adapter, sasrec = reference_modules(tiny_bundle.path, manifest)
    for rebuilt, trained in ((adapter, tiny_bundle.adapter), (sasrec, tiny_bundle.sasrec), (encoder, tiny_bundle.encoder)):
        expected = trained.state_dict()
        for name, value in rebuilt.state_dict().items():
            assert torch.equal(value, expected[name]), name


def test_pytorch_and_onnxruntime_agree_on_real_titles_and_histories(tiny_bundle, games_dir, scientific, tmp_path):
    measured = prepare(tiny_bundle.path, tmp_path, [games_dir, scientific], users=10, titles=20,
                       all_tokenizer_titles=False)
    for graph in ("encoder_fp32", "adapter", "sequence_model", "dynamic_axes"):
        assert measured[graph]["max_abs_diff"] <= TOLERANCE, graph
    assert measured["encoder_fp32"]["titles"] > 60
    assert measured["sequence_model"]["histories"] >= 20 and 1 in measured["sequence_model"]["history_lengths"]
    shapes = {tuple(p["shape"]) for p in measured["dynamic_axes"]["probes"] if p["graph"] == "sequence_model"}
    assert {s[1] for s in shapes} == {4, 10, 13}  # shorter and longer than max_history
    case = json.loads((tmp_path / "case.json").read_text())
    items = read_f32(tmp_path / "pytorch.item_embedding.f32", case["dimensions"]["item_embedding"])
    assert items.shape == (len(case["titles"]), 64) and np.isfinite(items).all()
    assert sorted(i for batch in case["batches"] for i in batch) == list(range(len(case["titles"])))


def test_weight_only_int8_is_a_blockwise_dequantization():
    rng = np.random.default_rng(0)
    table, weight = rng.normal(size=(50, 64)).astype(np.float32), rng.normal(size=(64, 24)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["h"]), helper.make_node("MatMul", ["h", "weight"], ["y"])], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", 24])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(weight, "weight")])
    model = weight_only_int8(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert [n.op_type for n in model.graph.node].count("MatMulNBits") == 1
    ids = rng.integers(0, 50, size=(3, 5))
    actual = onnxruntime.InferenceSession(model.SerializeToString()).run(None, {"ids": ids})[0]

    def dequantize(matrix):  # symmetric int8, one scale per 32 values along axis 0
        blocks = matrix.reshape(-1, 32, matrix.shape[1])
        scales = np.abs(blocks).max(axis=1, keepdims=True) / 127
        return (np.rint(blocks / scales) * scales).reshape(matrix.shape)

    expected = dequantize(table.T).T[ids] @ dequantize(weight)
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    assert np.abs(actual - table[ids] @ weight).max() > 1e-3  # it is quantized


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle.path, copy)
    return copy


def test_quantize_adds_the_int8_variant(bundle_copy, scientific):
    variant = quantize_bundle(bundle_copy, dataset_dirs=[scientific], overlap_dataset=scientific, users=200)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    assert manifest["graphs"]["encoder_int8"] == {**manifest["graphs"]["encoder"], "file": INT8_FILE}
    assert manifest["files"][INT8_FILE] == {"sha256": sha256_file(bundle_copy / INT8_FILE),
                                            "bytes": (bundle_copy / INT8_FILE).stat().st_size}
    assert manifest["variants"]["encoder_int8"] == variant
    assert variant["min_cosine"] >= 0.99 and variant["top10_overlap"] >= 0.9
    assert variant["titles"] == 4385 and variant["users"] == 200
    assert variant["bytes"] < variant["fp32_bytes"] / 2 and variant["speedup"] > 0
    onnx.checker.check_model(str(bundle_copy / INT8_FILE))
    heads = np.array(variant["item_embedding_heads"])
    assert heads.shape == (len(manifest["samples"]), 8)
    fp32_heads = np.array([s["item_embedding_head"] for s in manifest["samples"]])
    assert 0 < np.abs(heads - fp32_heads).max() < 0.1


def test_quantize_refuses_a_variant_below_the_bar(bundle_copy, scientific):
    before = (bundle_copy / "manifest.json").read_text()
    with pytest.raises(ValueError, match=r"int8 encoder \(dynamic\) refused: min cosine"):
        quantize_bundle(bundle_copy, method="dynamic", dataset_dirs=[scientific], overlap_dataset=scientific, users=50,
                        min_cosine=1.01)
    assert not (bundle_copy / INT8_FILE).exists()
    assert (bundle_copy / "manifest.json").read_text() == before
