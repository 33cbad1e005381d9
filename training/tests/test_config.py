"""The one configuration system (training/llm2rec/config.py): typed, validated preset fields for both the LLM2Rec
training presets and the bundle presets, through the real command line."""

import json
import math
from pathlib import Path

import pytest

from training.llm2rec import cli
from training.llm2rec import presets as bundle_presets
from training.llm2rec import train_config
from training.llm2rec.config import ConfigError, UnknownSetting
from training.llm2rec.train_encoder import dry_run


@pytest.mark.parametrize("name", sorted(train_config.PRESETS))
def test_every_training_preset_is_valid(name):
    assert train_config.resolve(name) == train_config.PRESETS[name]


@pytest.mark.parametrize("name", sorted(bundle_presets.PRESETS))
def test_every_bundle_preset_is_valid(name):
    assert bundle_presets.resolve(name) == bundle_presets.PRESETS[name]


@pytest.mark.parametrize(("setting", "message"), [
    ("csft.steps=abc", r"csft\.steps = 'abc': Input should be a valid integer"),
    ("csft.steps=2.5", r"csft\.steps = 2\.5: Input should be a valid integer"),
    ("csft.steps=true", r"csft\.steps = True: Input should be a valid integer"),
    ("csft.steps=0", r"csft\.steps = 0: Input should be greater than 0"),
    ("mntp.learning_rate=-1e-4", r"mntp\.learning_rate = -0\.0001: Input should be greater than 0"),
    ("simcse.dropout=1.5", r"simcse\.dropout = 1\.5: Input should be less than 1"),
    ("mntp.mask_ratio=0", r"mntp\.mask_ratio = 0: Input should be greater than 0"),
    ("simcse.lora.enabled=1", r"simcse\.lora\.enabled = 1: Input should be a valid boolean"),
    ('precision="fp16"', r"precision = 'fp16': Input should be 'auto', 'bf16' or 'fp32'"),
    ("backbone.kind=gpt", r"backbone\.kind = 'gpt': Input should be 'smollm2', 'tiny' or 'hf'"),
    ('stages=["csft", "nope"]', r"stages\.1 = 'nope': Input should be 'csft', 'mntp' or 'simcse'"),
    ("csft=3", r"csft is a section"),
    ("csft.steps", r"write SECTION\.FIELD=VALUE"),
])
def test_bad_training_settings_are_refused_with_the_field_named(setting, message):
    with pytest.raises(ConfigError, match=message):
        train_config.resolve("tiny", sets=[setting])


def test_unknown_keys_are_refused_with_the_known_ones(tmp_path):
    with pytest.raises(UnknownSetting, match=r"unknown setting csft\.nope \(known: steps, max_minutes, "):
        train_config.resolve("tiny", sets=["csft.nope=1"])
    file = tmp_path / "typo.toml"
    file.write_text("[simcse]\ntemprature = 0.05\n")
    with pytest.raises(UnknownSetting, match=r"unknown setting simcse\.temprature"):
        train_config.resolve("cpu", file)
    with pytest.raises(UnknownSetting, match="unknown preset 'huge'"):
        train_config.resolve("huge")


def test_a_config_file_is_type_checked_too(tmp_path):
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"csft": {"batch_size": "16"}}))
    with pytest.raises(ConfigError, match=r"csft\.batch_size = '16': Input should be a valid integer"):
        train_config.resolve("cpu", file)


def test_good_overrides_keep_their_values_and_the_rest_of_the_preset():
    config = train_config.resolve("cpu", sets=["csft.steps=200", "simcse.max_minutes=null", "mntp.learning_rate=1",
                                               "backbone.layers=4", 'stages=["mntp", "simcse"]'])
    assert (config.csft.steps, config.simcse.max_minutes, config.mntp.learning_rate) == (200, None, 1)
    assert config.backbone.layers == 4 and config.stages == ["mntp", "simcse"]
    assert config.mntp.batch_size == train_config.PRESETS["cpu"].mntp.batch_size
    assert bundle_presets.resolve("quick", sets=["epochs=2", "max_users=50"]).epochs == 2


@pytest.mark.parametrize(("setting", "message"), [
    ("epochs=abc", r"epochs = 'abc': Input should be a valid integer"),
    ("rec_dim=0", r"rec_dim = 0: Input should be greater than 0"),
    ('attention="sideways"', r"attention = 'sideways': Input should be 'causal' or 'bidirectional'"),
    ("dropout=-0.1", r"dropout = -0\.1: Input should be greater than or equal to 0"),
])
def test_bad_bundle_settings_are_refused(setting, message):
    with pytest.raises(ConfigError, match=message):
        bundle_presets.resolve("tiny", sets=[setting])


@pytest.mark.parametrize("argv", [
    ["train", "--preset", "tiny", "--datasets", "x", "--set", "csft.steps=abc", "--dry-run"],
    ["bundle", "--preset", "tiny", "--datasets", "x", "--out", "y", "--set", "epochs=abc"],
])
def test_the_command_line_refuses_a_bad_setting_before_doing_anything(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "= 'abc': Input should be a valid integer" in error and "usage:" in error


@pytest.fixture
def catalogue_only(tmp_path):
    """The first 50 items of the shared office catalogue (a real dataset without interactions.csv)."""
    source = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon-office-catalog" / "items.jsonl"
    directory = tmp_path / "office-catalogue"
    directory.mkdir()
    (directory / "items.jsonl").write_text("".join(source.read_text().splitlines(keepends=True)[:50]))
    return directory


@pytest.mark.parametrize("command, message", [
    (["train", "--preset", "cpu", "--dry-run"], "the stage(s) simcse of this run learn from user histories"),
    (["train", "--preset", "tiny", "--dry-run"], "the stage(s) csft of this run learn from user histories"),
    (["evaluate", "--methods", "popularity", "--in-domain"], "has no interactions.csv rows: there is nothing to evaluate"),
])
def test_a_catalogue_without_interactions_is_refused_with_a_message_not_a_traceback(command, message, catalogue_only,
                                                                                     tmp_path, capsys):
    argv = [*command, str(catalogue_only), "--out", str(tmp_path / "out")]
    if command[0] == "train":
        argv = [*command, "--datasets", str(catalogue_only), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert message in error and str(catalogue_only) in error and "Traceback" not in error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.pt"))


def test_the_title_stages_train_on_a_catalogue_without_interactions(catalogue_only):
    config = train_config.resolve("tiny", sets=['stages=["mntp","simcse"]'])
    report = dry_run(config, [str(catalogue_only)])
    assert list(report) == ["mntp", "simcse"]
    assert all(math.isfinite(stage["loss"]) and stage["parameters_with_grad"] > 0 for stage in report.values())


def test_evaluate_refuses_a_dataset_where_no_user_has_a_test_item(tmp_path, capsys):
    directory = tmp_path / "short"
    directory.mkdir()
    (directory / "items.jsonl").write_text('{"id": 1, "title": "A"}\n{"id": 2, "title": "B"}\n')
    (directory / "interactions.csv").write_text("user_id,item_id,timestamp\nu,1,1\nu,2,2\nv,2,1\n")
    with pytest.raises(SystemExit) as exited:
        cli.main(["evaluate", "--in-domain", str(directory), "--methods", "popularity", "--out", str(tmp_path / "o"),
                  "--report", str(tmp_path / "o" / "q.json")])
    assert exited.value.code == 1
    assert "no user has 3 or more interactions" in capsys.readouterr().err
    assert not (tmp_path / "o" / "q.json").exists()
