"""The tiny preset end to end: bundle layout, manifest, and onnxruntime against PyTorch."""

import copy
import json
import random
import re

import numpy as np
import onnx
import pytest
import torch
from tokenizers import Tokenizer

from training.llm2rec.backbone import sha256_file
from training.llm2rec.bundle_format import FIXED_AXES, GRAPHS, ManifestError, check_manifest
from training.llm2rec.cli import build_bundle
from training.llm2rec.data import load_items
from training.llm2rec.export import TOLERANCE, run_onnx, write_manifest
from training.llm2rec.presets import PRESETS
from training.llm2rec.tokenize_titles import main as tokenize_titles
from training.llm2rec.tokens import TitleTokenizer
from training.llm2rec.train_sequence import left_pad

BUNDLE_FILES = {"manifest.json", "tokenizer.json", "encoder.onnx", "adapter.onnx", "sequence_model.onnx"}


@pytest.fixture(scope="module")
def manifest(tiny_bundle):
    return json.loads((tiny_bundle.path / "manifest.json").read_text())


def test_bundle_files_and_sha256(tiny_bundle, manifest):
    assert {p.name for p in tiny_bundle.path.iterdir()} == BUNDLE_FILES
    assert set(manifest["files"]) == BUNDLE_FILES - {"manifest.json"}
    for name, entry in manifest["files"].items():
        path = tiny_bundle.path / name
        assert entry == {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def test_manifest_fields(manifest):
    assert manifest["format_version"] == 1
    assert manifest["preset"] == "tiny"
    assert manifest["model_version"].startswith("tiny-amazon-games-")
    assert manifest["created_at"].endswith("Z")
    assert manifest["backbone"]["architecture"] == "llama"
    assert manifest["backbone"]["layers"] == 2 and manifest["backbone"]["attention"] == "causal"
    assert len(manifest["backbone"]["weights_sha256"]) == 64
    assert manifest["encoder"] == {"kind": "raw", "run_id": None}  # the preset's backbone, no LLM2Rec run
    assert manifest["dimensions"] == {"item_embedding": 64, "recommendation": 128}
    assert manifest["tokenizer"] == {"file": "tokenizer.json", "max_length": 32, "pad_token_id": 2,
                                     "add_special_tokens": True}
    assert manifest["pooling"] == "mean"
    assert manifest["sequence_model"] == {"kind": "sasrec", "max_history": 10}
    assert manifest["graphs"] == {
        "encoder": {"file": "encoder.onnx", "inputs": ["input_ids", "attention_mask"], "outputs": ["item_embedding"]},
        "adapter": {"file": "adapter.onnx", "inputs": ["item_embedding"], "outputs": ["recommendation_vector"]},
        "sequence_model": {"file": "sequence_model.onnx", "inputs": ["history", "history_mask"],
                           "outputs": ["user_vector"]},
    }
    [data] = manifest["training_data"]
    assert data["name"] == "amazon-games" and 100 < data["items"] < 2000 and data["interactions"] > data["items"]
    metrics = manifest["metrics"]["amazon-games"]
    assert metrics["split"] == "test"
    for values in (metrics, metrics["validation"], metrics["popularity"]["test"]):
        assert 0.0 <= values["recall@10"] <= 1.0 and 0.0 <= values["ndcg@10"] <= values["recall@10"]


def bundle_tokenizer(tiny_bundle, manifest) -> TitleTokenizer:
    settings = manifest["tokenizer"]
    return TitleTokenizer(Tokenizer.from_file(str(tiny_bundle.path / settings["file"])), settings["max_length"],
                          settings["pad_token_id"], settings["add_special_tokens"])


def test_samples_reproduce_with_onnx(tiny_bundle, manifest):
    samples = manifest["samples"]
    assert len(samples) == 10
    tokenizer = bundle_tokenizer(tiny_bundle, manifest)
    assert [s["input_ids"] for s in samples] == tokenizer.encode([s["title"] for s in samples])
    assert max(len(s["input_ids"]) for s in samples) == 32  # one sample is truncated
    for sample in samples:
        input_ids = np.array([sample["input_ids"]], dtype=np.int64)
        embedding = run_onnx(tiny_bundle.path / "encoder.onnx",
                             {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)})
        assert len(sample["item_embedding_head"]) == 8
        np.testing.assert_allclose(embedding[0, :8], sample["item_embedding_head"], atol=TOLERANCE, rtol=0)


@torch.no_grad()
def test_onnx_matches_pytorch_on_real_titles(tiny_bundle, manifest, games_dir):
    _, titles = load_items(games_dir)
    picked = random.Random(0).sample(titles, 63) + [max(titles, key=len)]
    tokenizer = bundle_tokenizer(tiny_bundle, manifest)
    input_ids, attention_mask = tokenizer.pad(tokenizer.encode(picked))
    expected = tiny_bundle.encoder(input_ids, attention_mask)
    actual = run_onnx(tiny_bundle.path / "encoder.onnx",
                      {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})
    np.testing.assert_allclose(actual, expected.numpy(), atol=TOLERANCE, rtol=0)
    vectors = run_onnx(tiny_bundle.path / "adapter.onnx", {"item_embedding": expected.numpy()})
    np.testing.assert_allclose(vectors, tiny_bundle.adapter(expected).numpy(), atol=TOLERANCE, rtol=0)


@torch.no_grad()
def test_left_padded_histories(tiny_bundle):
    sasrec = tiny_bundle.sasrec
    torch.manual_seed(0)
    vectors = tiny_bundle.adapter(torch.randn(20, 64))
    histories = [[3], [4, 5], list(range(10)), list(range(20)), []]  # lengths 1, 2, full, longer than the window, 0
    indices, mask = left_pad(histories, sasrec.max_history)
    history = vectors[indices]
    onnx_users = run_onnx(tiny_bundle.path / "sequence_model.onnx",
                          {"history": history.numpy(), "history_mask": mask.numpy()})
    assert np.isfinite(onnx_users).all()
    np.testing.assert_allclose(onnx_users, sasrec(history, mask).numpy(), atol=TOLERANCE, rtol=0)

    # A padded history gives the same user vector as the bare history, whatever the padding positions hold.
    garbage = history.clone()
    garbage[mask == 0] = 1e3
    np.testing.assert_allclose(run_onnx(tiny_bundle.path / "sequence_model.onnx",
                                        {"history": garbage.numpy(), "history_mask": mask.numpy()}),
                               onnx_users, atol=TOLERANCE, rtol=0)
    for row, items in enumerate(histories[:3]):
        bare = vectors[items][None]
        alone = run_onnx(tiny_bundle.path / "sequence_model.onnx",
                         {"history": bare.numpy(), "history_mask": np.ones((1, len(items)), dtype=np.int64)})
        np.testing.assert_allclose(alone[0], onnx_users[row], atol=TOLERANCE, rtol=0)


def test_tokenize_titles_script(tiny_bundle, manifest, tmp_path, games_dir):
    out = tmp_path / "ids.json"
    tokenize_titles(["--tokenizer", str(tiny_bundle.path / "tokenizer.json"), "--out", str(out),
                     "--datasets", str(games_dir)])
    reference = json.loads(out.read_text())
    _, titles = load_items(games_dir)
    assert reference["titles"] == titles
    assert reference["ids"] == bundle_tokenizer(tiny_bundle, manifest).encode(titles)
    assert all(1 <= len(ids) <= 32 for ids in reference["ids"])


def test_two_datasets_share_training_and_are_evaluated_apart(tmp_path, games_dir):
    scientific = games_dir.parent / "amazon-scientific"
    built = build_bundle(PRESETS["tiny"], [str(games_dir), str(scientific)], tmp_path / "two", use_cache=False)
    assert [d["name"] for d in built.manifest["training_data"]] == ["amazon-games", "amazon-scientific"]
    assert set(built.manifest["metrics"]) == {"amazon-games", "amazon-scientific"}
    assert built.manifest["model_version"].startswith("tiny-amazon-games+amazon-scientific-")


def test_the_bundle_matches_the_one_format_definition(tiny_bundle, manifest):
    """src/inference/bundle-format.json, which the server reads too: the manifest matches its schema and each exported
    graph has its input and output names, element types and axes."""
    check_manifest(manifest)
    types = {"int64": onnx.TensorProto.INT64, "float32": onnx.TensorProto.FLOAT}
    for name, graph in GRAPHS.items():
        model = onnx.load(str(tiny_bundle.path / graph.file), load_external_data=False)
        assert manifest["graphs"][name] == {"file": graph.file, "inputs": list(graph.inputs), "outputs": list(graph.outputs)}
        for declared, values in ((graph.inputs, model.graph.input), (graph.outputs, model.graph.output)):
            assert [value.name for value in values] == list(declared)
            for value in values:
                spec = declared[value.name]
                assert value.type.tensor_type.elem_type == types[spec["type"]], value.name
                axes = value.type.tensor_type.shape.dim
                assert len(axes) == len(spec["shape"]), value.name
                for axis, dim in zip(axes, spec["shape"]):
                    if dim in FIXED_AXES:
                        assert axis.dim_value == manifest["dimensions"][dim], (value.name, dim)
                    else:
                        assert axis.dim_param and not axis.dim_value, (value.name, dim)  # dynamic


@pytest.mark.parametrize("damage, message", [
    (lambda m: m.pop("dimensions"), "(root): 'dimensions' is a required property"),
    (lambda m: m["graphs"]["encoder"].pop("inputs"), "graphs/encoder: 'inputs' is a required property"),
    (lambda m: m.update(pooling="max"), "pooling: 'mean' was expected"),
    (lambda m: m["files"]["encoder.onnx"].update(sha256="abc"), "files/encoder.onnx/sha256: 'abc' does not match"),
])
def test_a_manifest_off_the_format_is_refused(manifest, damage, message):
    broken = copy.deepcopy(manifest)
    damage(broken)
    with pytest.raises(ManifestError, match=re.escape(message)):
        check_manifest(broken)


def test_a_manifest_off_the_format_is_not_written(manifest, tmp_path):
    (tmp_path / "encoder.onnx").write_bytes(b"graph")
    broken = {key: value for key, value in manifest.items() if key not in ("files", "pooling")}
    with pytest.raises(ManifestError, match="'pooling' is a required property"):
        write_manifest(tmp_path, broken)
    assert not (tmp_path / "manifest.json").exists()
    write_manifest(tmp_path, {**broken, "pooling": "mean"})
    assert json.loads((tmp_path / "manifest.json").read_text())["files"]["encoder.onnx"]["bytes"] == 5
