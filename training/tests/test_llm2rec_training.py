"""LLM2Rec embedding training on the tiny preset: every stage lowers its loss, runs resume exactly, CSFT never sees
held-out items, and the trained encoder exported into a bundle is bidirectional in the ONNX graph itself."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from training.llm2rec.backbone import build_tiny, load_trained, sha256_file
from training.llm2rec.cli import build_bundle
from training.llm2rec.data import Dataset
from training.llm2rec.export import run_onnx
from training.llm2rec.precision import resolve as resolve_precision
from training.llm2rec.presets import PRESETS
from training.llm2rec.stages.csft import IGNORE, CSFTData
from training.llm2rec.stages.loop import StageModel, Stop, run_stage
from training.llm2rec.stages.mntp import MNTPData
from training.llm2rec.train_config import STAGES, LoraSettings, StageConfig, resolve
from training.llm2rec.train_encoder import dry_run, stage_loss, title_tokenizer, train


def test_every_stage_reduces_its_loss(tiny_run):
    run_dir, record = tiny_run
    assert record["stages"] == list(STAGES)
    for name in STAGES:
        stage = record[name]
        assert stage["steps"] == resolve("tiny").__getattribute__(name).steps
        assert stage["final_loss"] < stage["first_loss"], name
        assert stage["seconds"] > 0
        assert (run_dir / name / "model" / "model.safetensors").exists()
        assert not (run_dir / name / "checkpoint.pt").exists()  # deleted once the stage is done
        assert (run_dir / "report" / f"training-loss-{name}.png").stat().st_size > 1000
    assert record["csft"]["attention"] == "causal"
    assert record["mntp"]["attention"] == record["simcse"]["attention"] == "bidirectional"
    assert [d["name"] for d in record["datasets"]] == ["amazon-games", "movielens-small"]
    assert json.loads((run_dir / "report" / "training-run.json").read_text())["run_id"] == record["run_id"]


def test_finished_stages_are_skipped(tiny_run, games_dir, capsys):
    run_dir, record = tiny_run
    again = train(resolve("tiny"), [str(games_dir), str(games_dir.parent / "movielens-small")], run_dir)
    assert "already finished" in capsys.readouterr().out
    assert again["run_id"] == record["run_id"] and again["csft"]["seconds"] == record["csft"]["seconds"]
    with pytest.raises(ValueError, match="different configuration"):
        train(resolve("tiny", sets=["csft.steps=5"]), [str(games_dir)], run_dir)


def _mntp_stage(tiny_backbone_seed, config):
    backbone = build_tiny(tiny_backbone_seed)
    data = MNTPData(["Fire Emblem: The Sacred Stones", "Toy Story (1995)", "Metal Gear Solid 3: Snake Eater",
                     "GBA 6-Pak Care Case - Game Boy Advance", "Heat (1995)", "Jumanji (1995)"],
                    title_tokenizer(backbone.tokenizer, resolve("tiny")), config, seed=0)
    stage = StageModel(backbone.model, config.lora)
    return stage, lambda step: stage_loss("mntp", resolve("tiny"), stage, data.batch(step))


FP32 = resolve_precision("fp32")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_interrupted_stage_resumes_exactly(tmp_path, precision):
    config = StageConfig(steps=6, batch_size=4, learning_rate=1e-2, warmup_steps=2)
    precision = resolve_precision(precision)
    torch.manual_seed(0)
    stage, loss = _mntp_stage(0, config)
    straight = run_stage("mntp", stage, config, loss, tmp_path / "straight", 60, Stop(None), precision)

    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    torch.manual_seed(0)
    stage, loss = _mntp_stage(0, config)
    first = run_stage("mntp", stage, config, loss, tmp_path / "resumed", 60, stop_after_three, precision)
    assert not first.finished and (tmp_path / "resumed" / "checkpoint.pt").exists()
    torch.manual_seed(123)  # a different process state: the checkpoint must restore everything that matters
    stage, loss = _mntp_stage(0, config)
    second = run_stage("mntp", stage, config, loss, tmp_path / "resumed", 60, Stop(None), precision)
    assert second.finished and second.summary["resumed"] == 1
    np.testing.assert_allclose(second.summary["losses"], straight.summary["losses"], rtol=1e-5)


def test_lora_is_merged_into_the_saved_model(tmp_path):
    config = StageConfig(steps=3, batch_size=4, learning_rate=1e-2, lora=LoraSettings(enabled=True, r=4, alpha=8))
    stage, loss = _mntp_stage(0, config)
    assert all("lora_" in name for name in stage.trainable())
    ids = torch.tensor([[10, 20, 30, 40]])
    outcome = run_stage("mntp", stage, config, loss, tmp_path, 60, Stop(None), FP32)
    assert outcome.finished
    merged = stage.model  # merge_and_unload ran in place; the saved model is a plain Llama again
    from training.llm2rec.backbone import load_causal_lm

    saved = load_causal_lm(tmp_path / "model").eval()
    assert not any("lora" in name for name in saved.state_dict())
    trained = StageModel(saved, LoraSettings()).encoder("bidirectional")
    original = StageModel(build_tiny(0).model, LoraSettings()).encoder("bidirectional")
    with torch.no_grad():
        assert not torch.allclose(trained(ids, torch.ones_like(ids)), original(ids, torch.ones_like(ids)))
    del merged


def _dataset(sequences: list[list[int]]) -> Dataset:
    items = sorted({i for s in sequences for i in s})
    titles = [f"Item {i} title" for i in range(max(items) + 1)]
    return Dataset("synthetic", "synthetic", [str(i) for i in range(len(titles))], titles, sequences)


def test_csft_never_sees_the_last_two_items(tiny_backbone):
    sequences = [list(range(100 * u, 100 * u + n)) for u, n in enumerate([3, 4, 5, 12, 13, 25])]
    held_out = {i for s in sequences for i in s[-2:]}
    data = CSFTData([_dataset(sequences + [[7, 8]])], tiny_backbone.tokenizer, StageConfig(batch_size=4), seed=0)
    seen = set()
    for row in range(len(data)):
        history, target = data.items(row)
        seen |= set(history) | {target}
    assert not held_out & seen
    # every training item after a user's first is a target exactly once
    assert sorted(data.items(r)[1] for r in range(len(data))) == sorted(i for s in sequences for i in s[1:-2])


def test_csft_batch_is_history_then_target_and_eos(tiny_backbone):
    tokenizer = tiny_backbone.tokenizer
    config = StageConfig(batch_size=1, max_history=3, max_prompt_tokens=12, max_target_tokens=32)
    data = CSFTData([_dataset([list(range(8))])], tokenizer, config, seed=0)
    input_ids, attention_mask, labels = data.batch(0)
    prompt, target = data.texts(int(np.random.default_rng([0, 0]).choice(len(data), 1, replace=False)[0]))
    ids = input_ids[0][attention_mask[0] == 1].tolist()
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-12:]  # cut from the left
    assert ids == prompt_ids + target_ids
    assert prompt.endswith(",") and target.startswith(" Item")
    # position j is labelled with token j + 1, only over the target (+ EOS)
    assert labels[0][labels[0] != IGNORE].tolist() == target_ids
    assert labels[0, len(prompt_ids) - 1].item() == target_ids[0]


def test_mntp_masks_a_fifth_of_each_title_never_the_first_token(tiny_backbone):
    config = StageConfig(batch_size=64, mask_ratio=0.2)
    titles = [f"Title number {i} of a long catalogue of video games and movies" for i in range(100)]
    data = MNTPData(titles, title_tokenizer(tiny_backbone.tokenizer, resolve("tiny")), config, seed=0)
    inputs, attention_mask, original, masked = data.batch(0)
    assert data.mask_id == tiny_backbone.tokenizer.convert_tokens_to_ids("_")
    assert not masked[:, 0].any() and not (masked & (attention_mask == 0)).any()
    assert (inputs[masked] == data.mask_id).all() and (inputs[~masked] == original[~masked]).all()
    counts = masked.sum(dim=1).double()
    lengths = attention_mask.sum(dim=1).double()
    assert torch.equal(counts, (lengths * 0.2).round().clamp(min=1))


def test_config_file_and_set_override_a_preset(tmp_path):
    file = tmp_path / "override.toml"
    file.write_text('seed = 7\n[csft]\nsteps = 12\n[simcse.lora]\nenabled = true\n')
    config = resolve("cpu", file, ["mntp.learning_rate=1e-4", "backbone.layers=4"])
    assert (config.seed, config.csft.steps, config.simcse.lora.enabled) == (7, 12, True)
    assert (config.mntp.learning_rate, config.backbone.layers) == (1e-4, 4)
    assert config.csft.batch_size == resolve("cpu").csft.batch_size
    with pytest.raises(KeyError):
        resolve("cpu", sets=["csft.nope=1"])


def test_paper_preset_dry_run(games):
    config = resolve("paper")
    assert config.backbone.name_or_path == "Qwen/Qwen2-0.5B"
    assert (config.csft.learning_rate, config.csft.batch_size, config.csft.steps) == (3e-4, 128, 10_000)
    assert (config.mntp.batch_size, config.mntp.steps) == (32, 1_000)
    assert (config.simcse.learning_rate, config.simcse.batch_size, config.simcse.steps) == (2e-4, 256, 1_000)
    report = dry_run(resolve("paper", sets=["csft.max_prompt_tokens=128", "title_max_tokens=32"]), [games])
    assert report["csft"]["batch_shapes"][0][0] == 128
    assert report["mntp"]["batch_shapes"][0][0] == 32 and report["mntp"]["lora"]
    assert report["simcse"]["batch_shapes"][0][0] == 2 * 256  # both views of each title in one batch
    for stage in report.values():
        assert np.isfinite(stage["loss"]) and stage["parameters_with_grad"] > 0


@pytest.mark.parametrize("architecture", ["qwen2", "gemma"])
def test_other_architectures_run_every_stage(architecture, games):
    config = resolve("tiny", sets=[f'backbone.architecture="{architecture}"', "csft.batch_size=2",
                                   "mntp.batch_size=4", "simcse.batch_size=4"])
    report = dry_run(config, [games])
    assert all(np.isfinite(s["loss"]) for s in report.values())


def _token_states(path, out_dir, input_ids: np.ndarray) -> np.ndarray:
    """Per-token hidden states inside encoder.onnx (the input of the mean pooling), exposed as an extra output."""
    model = onnx.load(str(path))
    producers = {out: node for node in model.graph.node for out in node.output}
    pooled_sum = next(node for node in model.graph.node if node.op_type == "ReduceSum"
                      and producers[node.input[0]].op_type == "Mul")
    hidden = producers[pooled_sum.input[0]].input[0]
    model.graph.output.append(helper.make_tensor_value_info(hidden, onnx.TensorProto.FLOAT, None))
    patched = out_dir / "encoder-with-states.onnx"
    onnx.save(model, str(patched))
    import onnxruntime

    session = onnxruntime.InferenceSession(str(patched), providers=["CPUExecutionProvider"])
    return session.run([hidden], {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)})[0]


@pytest.fixture(scope="session")
def trained_bundle(tiny_run, games_dir, tmp_path_factory):
    run_dir, _ = tiny_run
    return build_bundle(PRESETS["tiny"], [str(games_dir)], tmp_path_factory.mktemp("bundles") / "trained",
                        use_cache=False, encoder_run=run_dir)


def test_trained_encoder_bundle_manifest(trained_bundle, tiny_run):
    run_dir, record = tiny_run
    backbone = trained_bundle.manifest["backbone"]
    assert backbone["attention"] == "bidirectional" and backbone["layers"] == 2
    assert backbone["weights_sha256"] == sha256_file(run_dir / "simcse" / "model" / "model.safetensors")
    assert record["run_id"] in backbone["source"] and record["backbone"]["weights_sha256"] in backbone["source"]
    assert trained_bundle.manifest["preset"] == "tiny+llm2rec-tiny"
    assert "amazon-games" in trained_bundle.manifest["metrics"]
    [downstream] = json.loads((run_dir / "downstream.json").read_text())  # kept next to the run
    assert downstream["metrics"] == trained_bundle.manifest["metrics"]


def test_exported_encoder_is_bidirectional_in_onnx(trained_bundle, tiny_bundle, tmp_path):
    ids = np.array([trained_bundle.tokenizer.encode(["Fire Emblem: The Sacred Stones - Game Boy Advance"])[0]])
    changed = ids.copy()
    changed[0, -1] = (changed[0, -1] + 1) % 1000  # change only the last token
    for built, bidirectional in ((trained_bundle, True), (tiny_bundle, False)):  # tiny_bundle: raw, causal
        before = _token_states(built.path / "encoder.onnx", tmp_path, ids)
        after = _token_states(built.path / "encoder.onnx", tmp_path, changed)
        with torch.no_grad():
            torch_states = built.encoder.hidden_states(torch.from_numpy(ids), torch.ones(ids.shape, dtype=torch.int64))
        np.testing.assert_allclose(before, torch_states.numpy(), atol=1e-4)  # it really is the pooling input
        earlier_changed = not np.allclose(before[:, :-1], after[:, :-1], atol=1e-6)
        assert earlier_changed == bidirectional


def test_causal_iem_run_exports_a_causal_encoder(games_dir, tmp_path):
    """iem_attention=causal: the contrastive stage trains, and the bundle exports, the backbone's causal attention."""
    run_dir = tmp_path / "causal"
    record = train(resolve("tiny", sets=['stages=["simcse"]', "iem_attention=causal", "simcse.positives=next-item"]),
                   [str(games_dir)], run_dir)
    assert record["simcse"]["attention"] == record["backbone"]["attention"] == "causal"
    assert load_trained(run_dir, "simcse")[1]["backbone"]["attention"] == "causal"
    built = build_bundle(PRESETS["tiny"], [str(games_dir)], tmp_path / "bundle", use_cache=False, encoder_run=run_dir)
    assert built.manifest["backbone"]["attention"] == "causal"
    ids = np.array([built.tokenizer.encode(["Fire Emblem: The Sacred Stones - Game Boy Advance"])[0]])
    changed = ids.copy()
    changed[0, -1] = (changed[0, -1] + 1) % 1000
    before = _token_states(built.path / "encoder.onnx", tmp_path, ids)
    after = _token_states(built.path / "encoder.onnx", tmp_path, changed)
    np.testing.assert_allclose(before[:, :-1], after[:, :-1], atol=1e-6)  # no earlier token sees the last one


def test_time_cap_ends_a_stage_early_and_says_so(tmp_path):
    config = StageConfig(steps=50, max_minutes=1e-9, batch_size=4, learning_rate=1e-3)
    stage, loss = _mntp_stage(0, config)
    outcome = run_stage("mntp", stage, config, loss, tmp_path, 60, Stop(None), FP32)
    assert outcome.finished and outcome.summary["steps"] == 1 and outcome.summary["planned_steps"] == 50
    assert outcome.summary["stopped_by_time_cap"] and (tmp_path / "model" / "model.safetensors").exists()


def test_ablations_run_only_their_stages(tiny_run, games_dir, tmp_path):
    run_dir, _ = tiny_run
    datasets = [str(games_dir), str(games_dir.parent / "movielens-small")]
    # Without CSFT: MNTP starts from the backbone.
    no_csft = train(resolve("tiny", sets=['stages=["mntp", "simcse"]']), datasets, tmp_path / "no-csft")
    assert no_csft["stages"] == ["mntp", "simcse"] and "csft" not in no_csft
    assert not (tmp_path / "no-csft" / "csft").exists()
    # Without MNTP: SimCSE continues the full run's CSFT model.
    no_mntp = train(resolve("tiny", sets=['stages=["simcse"]', f"init_from={run_dir / 'csft'}"]), datasets,
                    tmp_path / "no-mntp")
    assert no_mntp["backbone"]["initialized_from"] == str(run_dir / "csft")
    assert no_mntp["backbone"]["weights_sha256"] == json.loads((run_dir / "run.json").read_text())["backbone"]["weights_sha256"]
    # Without SimCSE: the full run's model after MNTP.
    backbone, record = load_trained(run_dir, "mntp")
    assert record["stages"] == ["csft", "mntp"] and record["backbone"]["attention"] == "bidirectional"
    assert backbone.weights_sha256 == sha256_file(run_dir / "mntp" / "model" / "model.safetensors")
    assert load_trained(run_dir, "csft")[1]["backbone"]["attention"] == "causal"
    with pytest.raises(ValueError, match="no stage"):
        load_trained(tmp_path / "no-csft", "csft")
    with pytest.raises(ValueError, match="ordered selection"):
        resolve("tiny", sets=['stages=["simcse", "csft"]'])
