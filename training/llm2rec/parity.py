"""Parity of a bundle's ONNX graphs: PyTorch vs onnxruntime in Python vs onnxruntime-node, on real titles and
histories from ../shared/data. Three steps, run together by `scripts/parity-report.sh` (`npm run parity`):

    python -m training.llm2rec.parity prepare --bundle bundles/quick --work .tmp/parity
    node --import tsx src/cli/parity.ts --bundle bundles/quick --work .tmp/parity
    python -m training.llm2rec.parity report --work .tmp/parity --out reports/parity.json

`prepare` rebuilds the bundle's PyTorch modules, picks titles and histories, runs PyTorch and onnxruntime on them
and writes both outputs (raw little-endian float32 files) with the inputs for Node; the Node step
(src/cli/parity.ts) runs the server's own RecommendationModel on the same inputs and writes its measurements;
`report` merges everything into reports/parity.json and exits 1 if a bound is missed.

The PyTorch reference is rebuilt independently of the ONNX files where it can be: the encoder from the backbone the
manifest names (SmolLM2 from the cache, or the tiny random model from its seed; its weights_sha256 must match the
manifest's), cut to the manifest's layers and attention. The adapter and the sequence model exist only in the ONNX
files (training does not keep checkpoints), so their PyTorch modules (training/llm2rec/sasrec.py) are built with the
preset's shape and their parameters are read back from the ONNX initializers: a fresh export of the same module
with random parameters shows which initializer (as is or transposed) and which node input holds every parameter, and
the bundle's graph gives the value at the same node input (nodes are named after module paths). The parity itself then shows that the PyTorch module computes what the ONNX graph computes.

Selection (fixed seed): per dataset with interactions, `--users` leave-one-out test users (their last max_history
items before the test item are the histories, and those items' titles are encoded); per dataset, `--titles` more
random titles and the title with the most tokens (truncation). The tokenizer is compared on every title of every
dataset (unless --sample-tokenizer).
"""

import argparse
import json
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from . import backbone as backbones
from .data import load_dataset, load_items, leave_one_out
from .encoder import ItemEncoder
from .bundle_format import GRAPHS
from .export import TOLERANCE, export_graph
from .presets import PRESETS
from .quantize import INT8_FILE, MIN_COSINE, MIN_OVERLAP, cosines, encode, length_batches, session
from .sasrec import SASRec, Adapter
from .tokenize_titles import SHARED_DATA
from .tokens import TitleTokenizer
from .train_sequence import left_pad


# ---------------------------------------------------------------------------------------------- PyTorch reference

def reference_encoder(manifest: dict, encoder_run: Path | None = None) -> ItemEncoder:
    """The item encoder rebuilt from the backbone the manifest names; refuses a backbone with other weights."""
    spec = manifest["backbone"]
    if encoder_run is not None:
        backbone, _ = backbones.load_trained(encoder_run)
    elif spec["name"] == backbones.SMOLLM2_NAME:
        backbone = backbones.load_smollm2()
    elif spec["name"].startswith("tiny-random-"):
        architecture = spec["name"].removeprefix("tiny-random-")
        seed_match = re.search(r"seed (\d+)", spec["source"])
        seed = int(seed_match.group(1)) if seed_match else PRESETS["tiny"].seed
        backbone = backbones.build_tiny(seed) if architecture == "llama" else backbones.build_tiny(seed, architecture)
    elif (run := re.search(r"weights (\S+)/simcse/model/model\.safetensors", spec["source"])) is not None:
        backbone, _ = backbones.load_trained(Path(run.group(1)))
    else:
        raise ValueError(f"cannot rebuild the backbone {spec['name']!r} ({spec['source']}); pass --encoder-run")
    if backbone.weights_sha256 != spec.get("weights_sha256"):
        raise ValueError(f"the backbone rebuilt for {spec['name']!r} has weights sha256 {backbone.weights_sha256}, "
                         f"the manifest says {spec.get('weights_sha256')}: not the weights the bundle was built from")
    return ItemEncoder(backbone.model.get_decoder(), spec["layers"], spec["attention"]).eval()


def _initializers(path: Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, int]], dict[tuple[str, int], str]]:
    """(initializer arrays by name, name -> (first consumer node, input slot), (node, slot) -> initializer name)."""
    graph = onnx.load(str(path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumer, by_use = {}, {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if name in arrays:
                consumer.setdefault(name, (node.name, slot))
                by_use[(node.name, slot)] = name
    return arrays, consumer, by_use


@torch.no_grad()
def load_onnx_parameters(name: str, module: torch.nn.Module, example_inputs: tuple, bundle: Path) -> torch.nn.Module:
    """Set `module`'s parameters to the values in the bundle's ONNX graph `name` (see the module docstring)."""
    module.eval()
    generator = torch.Generator().manual_seed(1234)
    for parameter in module.parameters():
        parameter.copy_(torch.randn(parameter.shape, generator=generator))
    file = GRAPHS[name].file
    with tempfile.TemporaryDirectory() as tmp:
        export_graph(name, module, example_inputs, Path(tmp))
        fresh, fresh_consumer, _ = _initializers(Path(tmp) / file)
    trained, _, trained_by_use = _initializers(bundle / file)
    for parameter_name, parameter in module.named_parameters():
        value = parameter.numpy()
        found = [(key, False) for key, array in fresh.items() if array.shape == value.shape and np.array_equal(array, value)]
        if value.ndim == 2:
            found += [(key, True) for key, array in fresh.items()
                      if array.shape == value.T.shape and np.array_equal(array, value.T)]
        # The same initializer in the bundle: the one the same node (named after the module path) reads in the same
        # input slot; folded initializers are numbered (onnx::MatMul_253), and the numbers move between versions.
        key = trained_by_use.get(fresh_consumer.get(found[0][0])) if len(found) == 1 else None
        if key is None or trained[key].shape != fresh[found[0][0]].shape:
            raise ValueError(f"{file}: cannot find the initializer of parameter {parameter_name} in the bundle's graph")
        transposed = found[0][1]
        parameter.copy_(torch.from_numpy((trained[key].T if transposed else trained[key]).copy()))
    return module


def reference_modules(bundle: Path, manifest: dict, encoder_run: Path | None = None) -> tuple[ItemEncoder, Adapter, SASRec]:
    preset = PRESETS.get(manifest["preset"].split("+")[0])
    if preset is None:
        raise ValueError(f"unknown preset {manifest['preset']!r}: the sequence model's shape is not known")
    item_dim, rec_dim = manifest["dimensions"]["item_embedding"], manifest["dimensions"]["recommendation"]
    max_history = manifest["sequence_model"]["max_history"]
    encoder = reference_encoder(manifest, encoder_run)
    adapter = load_onnx_parameters("adapter", Adapter(item_dim, rec_dim), (torch.zeros(2, item_dim),), bundle)
    history, mask = torch.zeros(2, max_history, rec_dim), torch.ones(2, max_history, dtype=torch.int64)
    sasrec = SASRec(rec_dim, max_history, preset.sasrec_layers, preset.sasrec_heads, preset.dropout)
    sasrec = load_onnx_parameters("sequence_model", sasrec, (history, mask), bundle)
    return encoder, adapter, sasrec


# ---------------------------------------------------------------------------------------------- selection

def select(dataset_dirs: list[Path], tokenizer, users: int, titles: int, max_history: int, seed: int):
    """(titles, their token ids, histories as indices into titles, per-dataset counts)."""
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    histories: list[list[int]] = []
    counts = []
    for directory in dataset_dirs:
        _, dataset_titles = load_items(directory)
        index: dict[int, int] = {}

        def take(item: int) -> int:
            if item not in index:
                index[item] = len(chosen)
                chosen.append(dataset_titles[item])
            return index[item]

        picked_users = 0
        if (Path(directory) / "interactions.csv").exists():
            test_histories = leave_one_out(load_dataset(directory).sequences).test_histories
            picked = sorted(rng.choice(len(test_histories), size=min(users, len(test_histories)), replace=False))
            for n, user in enumerate(picked):
                histories.append([take(item) for item in test_histories[user][-max_history:]])
                if n < 3:  # the shortest histories too: one and two items
                    histories.append(histories[-1][-(n % 2 + 1):])
            picked_users = len(picked)
        ids = tokenizer.encode(dataset_titles)
        for item in rng.choice(len(dataset_titles), size=min(titles, len(dataset_titles)), replace=False):
            take(int(item))
        take(max(range(len(ids)), key=lambda i: len(ids[i])))
        counts.append({"name": Path(directory).name, "titles": len(index), "users": picked_users})
    return chosen, tokenizer.encode(chosen), histories, counts


# ---------------------------------------------------------------------------------------------- prepare

def write_f32(path: Path, array: np.ndarray) -> None:
    np.ascontiguousarray(array, dtype="<f4").tofile(path)


def read_f32(path: Path, columns: int) -> np.ndarray:
    return np.fromfile(path, dtype="<f4").reshape(-1, columns)


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(a - b).max()) if a.size else 0.0


@torch.no_grad()
def prepare(bundle: Path, work: Path, dataset_dirs: list[Path], users: int, titles: int, seed: int = 0,
            all_tokenizer_titles: bool = True, encoder_run: Path | None = None) -> dict:
    bundle, work = Path(bundle), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((bundle / "manifest.json").read_text())
    tokenizer = TitleTokenizer.from_bundle(bundle, manifest)
    max_history = manifest["sequence_model"]["max_history"]
    item_dim, rec_dim = manifest["dimensions"]["item_embedding"], manifest["dimensions"]["recommendation"]
    encoder, adapter, sasrec = reference_modules(bundle, manifest, encoder_run)

    chosen, ids, histories, counts = select(dataset_dirs, tokenizer, users, titles, max_history, seed)
    batches = length_batches(ids)
    graphs = manifest["graphs"]
    sessions = {name: session(bundle / graphs[name]["file"]) for name in ("encoder", "adapter", "sequence_model")}

    # Encoder: the same length-sorted batches through PyTorch and onnxruntime.
    torch_items = np.zeros((len(ids), item_dim), dtype=np.float32)
    for batch in batches:
        input_ids, attention_mask = tokenizer.pad([ids[i] for i in batch])
        torch_items[batch] = encoder(input_ids, attention_mask).numpy()
    ort_items = encode(sessions["encoder"], tokenizer, ids, batches)
    # Adapter and sequence model: both runtimes get the PyTorch inputs, so each graph is measured on its own.
    torch_vectors = adapter(torch.from_numpy(torch_items)).numpy()
    ort_vectors = np.concatenate([sessions["adapter"].run(None, {"item_embedding": torch_items[s:s + 256]})[0]
                                  for s in range(0, len(torch_items), 256)])
    indices, mask = left_pad(histories, max_history)
    history = torch.from_numpy(torch_vectors)[indices]
    torch_users = sasrec(history, mask).numpy()
    ort_users = sessions["sequence_model"].run(None, {"history": history.numpy(), "history_mask": mask.numpy()})[0]

    measurements = {
        "encoder_fp32": {"titles": len(ids), "max_abs_diff": max_abs(torch_items, ort_items)},
        "adapter": {"rows": len(ids), "max_abs_diff": max_abs(torch_vectors, ort_vectors)},
        "sequence_model": {"histories": len(histories), "max_abs_diff": max_abs(torch_users, ort_users),
                           "history_lengths": sorted({len(h) for h in histories})},
        "dynamic_axes": dynamic_axes(encoder, adapter, sasrec, sessions, tokenizer, ids, history, mask, max_history),
    }
    if "encoder_int8" in graphs:
        int8_items = encode(session(bundle / graphs["encoder_int8"]["file"]), tokenizer, ids, batches)
        write_f32(work / "onnxruntime.item_embedding_int8.f32", int8_items)
        measurements["encoder_int8"] = {"titles": len(ids), "min_cosine_vs_pytorch": float(cosines(torch_items, int8_items).min())}

    for runtime, arrays in (("pytorch", (torch_items, torch_vectors, torch_users)),
                            ("onnxruntime", (ort_items, ort_vectors, ort_users))):
        for output, array in zip(("item_embedding", "recommendation_vector", "user_vector"), arrays):
            write_f32(work / f"{runtime}.{output}.f32", array)
    if all_tokenizer_titles:
        every = [t for d in sorted(p for p in SHARED_DATA.iterdir() if (p / "items.jsonl").exists()) for t in load_items(d)[1]]
    else:
        every = chosen
    (work / "tokens.json").write_text(json.dumps({"titles": every, "ids": tokenizer.encode(every)}, ensure_ascii=False))
    case = {
        "bundle": str(bundle.resolve()), "model_version": manifest["model_version"], "titles": chosen,
        "batches": batches, "histories": histories, "datasets": counts, "seed": seed,
        "dimensions": {"item_embedding": item_dim, "recommendation": rec_dim}, "max_history": max_history,
        "int8": "encoder_int8" in graphs, "tokens": "tokens.json", "tokenizer_titles": len(every),
    }
    (work / "case.json").write_text(json.dumps(case, ensure_ascii=False))
    (work / "python.json").write_text(json.dumps(measurements, indent=2))
    return measurements


def dynamic_axes(encoder, adapter, sasrec, sessions, tokenizer, ids, history, mask, max_history) -> dict:
    """Shapes other than the export examples (encoder [10, 32], adapter [2], sequence model [2, 10]): single titles,
    a batch right-padded to more tokens than it needs, sequence widths shorter and longer than max_history."""
    probes, worst = [], 0.0
    for batch, width in (([0], None), ([1], None), ([2, 3, 4], None), (list(range(min(7, len(ids)))), tokenizer.max_length + 5)):
        input_ids, attention_mask = tokenizer.pad([ids[i] for i in batch])
        if width is not None and width > input_ids.shape[1]:
            extra = width - input_ids.shape[1]
            input_ids = torch.nn.functional.pad(input_ids, (0, extra), value=tokenizer.pad_token_id)
            attention_mask = torch.nn.functional.pad(attention_mask, (0, extra), value=0)
        expected = encoder(input_ids, attention_mask).numpy()
        actual = sessions["encoder"].run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[0]
        worst = max(worst, max_abs(expected, actual))
        probes.append({"graph": "encoder", "shape": list(input_ids.shape)})
    for rows in (1, 3):
        embeddings = encoder(*tokenizer.pad([ids[i] for i in range(min(rows, len(ids)))]))
        actual = sessions["adapter"].run(None, {"item_embedding": embeddings.numpy()})[0]
        worst = max(worst, max_abs(adapter(embeddings).numpy(), actual))
        probes.append({"graph": "adapter", "shape": list(embeddings.shape)})
    for rows, width in ((1, max_history), (5, 4), (5, max_history + 3)):
        h, m = history[:rows], mask[:rows]
        if width < max_history:
            h, m = h[:, -width:], m[:, -width:]
        elif width > max_history:  # left-pad with more empty positions
            h = torch.cat([torch.zeros(h.shape[0], width - max_history, h.shape[2]), h], dim=1)
            m = torch.cat([torch.zeros(m.shape[0], width - max_history, dtype=m.dtype), m], dim=1)
        actual = sessions["sequence_model"].run(None, {"history": h.numpy(), "history_mask": m.numpy()})[0]
        worst = max(worst, max_abs(sasrec(h, m).numpy(), actual))
        probes.append({"graph": "sequence_model", "shape": list(h.shape[:2])})
    return {"probes": probes, "max_abs_diff": worst}


# ---------------------------------------------------------------------------------------------- report

def report(work: Path, out: Path) -> tuple[dict, list[str]]:
    work = Path(work)
    case = json.loads((work / "case.json").read_text())
    python = json.loads((work / "python.json").read_text())
    node = json.loads((work / "node.json").read_text())
    manifest = json.loads((Path(case["bundle"]) / "manifest.json").read_text())

    def graph(name: str, count_key: str) -> dict:
        p, n = python[name], node[name]
        return {
            "max_abs_diff": max(p["max_abs_diff"], n["max_abs_diff_vs_pytorch"]),
            count_key: p[count_key],
            "pytorch_vs_onnxruntime_python": p["max_abs_diff"],
            "pytorch_vs_onnxruntime_node": n["max_abs_diff_vs_pytorch"],
            "onnxruntime_python_vs_node": n["max_abs_diff_vs_onnxruntime_python"],
        }

    result = {
        "bundle": {"path": case["bundle"], "model_version": case["model_version"], "preset": manifest["preset"]},
        "tolerance": TOLERANCE,
        "encoder_fp32": graph("encoder_fp32", "titles"),
        "adapter": graph("adapter", "rows"),
        "sequence_model": {**graph("sequence_model", "histories"), "history_lengths": python["sequence_model"]["history_lengths"]},
        "tokenizer": {"titles": node["tokenizer"]["titles"], "mismatches": node["tokenizer"]["mismatches"],
                      **({"examples": node["tokenizer"]["examples"]} if node["tokenizer"]["mismatches"] else {})},
        "dynamic_axes": python["dynamic_axes"],
        "selection": {"datasets": case["datasets"], "seed": case["seed"],
                      "note": "per dataset: test users' last max_history items before the test item, random titles, "
                              "the title with the most tokens; encoded in length-sorted batches of 64"},
    }
    if case["int8"]:
        variant = manifest.get("variants", {}).get("encoder_int8", {})
        same_file = manifest["files"].get(INT8_FILE, {}).get("sha256")
        node_cos, python_cos = node["encoder_int8"]["min_cosine_vs_pytorch"], python["encoder_int8"]["min_cosine_vs_pytorch"]
        result["encoder_int8"] = {
            "min_cosine": min(variant.get("min_cosine", 1.0), node_cos, python_cos),
            "top10_overlap": variant.get("top10_overlap"),
            "every_title": {"min_cosine": variant.get("min_cosine"), "titles": variant.get("titles"),
                            "datasets": variant.get("datasets"), "reference": "onnxruntime fp32 encoder (Python)",
                            "measured_by": f"training.llm2rec.quantize on {INT8_FILE} sha256 {same_file}"},
            "top10": {"overlap": variant.get("top10_overlap"), "p5": variant.get("top10_overlap_p5"),
                      "dataset": variant.get("overlap_dataset"), "users": variant.get("users"),
                      "users_sampled": variant.get("users_sampled")},
            "parity_titles": {"titles": python["encoder_int8"]["titles"], "min_cosine_onnxruntime_python_vs_pytorch": python_cos,
                              "min_cosine_onnxruntime_node_vs_pytorch": node_cos,
                              "onnxruntime_python_vs_node_max_abs_diff": node["encoder_int8"]["max_abs_diff_vs_onnxruntime_python"]},
            "method": variant.get("method"), "quantization": variant.get("quantization"),
            "bytes": variant.get("bytes"), "fp32_bytes": variant.get("fp32_bytes"), "speedup": variant.get("speedup"),
            "speed": variant.get("speed"),
        }
    result["environment"] = {"torch": torch.__version__, "onnxruntime_python": metadata.version("onnxruntime"),
                             "onnxruntime_node": node.get("onnxruntime_node"), "provider": node.get("provider"),
                             "threads": 2}
    failures = [f"{name}: max abs diff {result[name]['max_abs_diff']:.2e} > {TOLERANCE:.0e}"
                for name in ("encoder_fp32", "adapter", "sequence_model") if not result[name]["max_abs_diff"] <= TOLERANCE]
    if not python["dynamic_axes"]["max_abs_diff"] <= TOLERANCE:
        failures.append(f"dynamic axes: max abs diff {python['dynamic_axes']['max_abs_diff']:.2e}")
    if result["tokenizer"]["mismatches"]:
        failures.append(f"tokenizer: {result['tokenizer']['mismatches']} titles tokenize differently")
    if "encoder_int8" in result:
        int8 = result["encoder_int8"]
        if not int8["min_cosine"] >= MIN_COSINE:
            failures.append(f"encoder_int8: min cosine {int8['min_cosine']:.4f} < {MIN_COSINE}")
        if not (int8["top10_overlap"] or 0) >= MIN_OVERLAP:
            failures.append(f"encoder_int8: top-10 overlap {int8['top10_overlap']} < {MIN_OVERLAP}")
    result["passed"] = not failures
    result["failures"] = failures
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result, failures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.llm2rec.parity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("prepare", help="PyTorch and onnxruntime outputs + the Node inputs")
    step.add_argument("--bundle", type=Path, required=True)
    step.add_argument("--work", type=Path, required=True)
    step.add_argument("--datasets", nargs="+", type=Path, help="default: every dataset in ../shared/data")
    step.add_argument("--users", type=int, default=200, help="test users per dataset with interactions")
    step.add_argument("--titles", type=int, default=500, help="extra random titles per dataset")
    step.add_argument("--seed", type=int, default=0)
    step.add_argument("--sample-tokenizer", action="store_true", help="compare the tokenizer on the picked titles only")
    step.add_argument("--encoder-run", type=Path, help="the `train` run directory of a bundle with a trained encoder")
    merged = commands.add_parser("report", help="merge the measurements into the report")
    merged.add_argument("--work", type=Path, required=True)
    merged.add_argument("--out", type=Path, default=Path("reports/parity.json"))
    args = parser.parse_args(argv)
    if args.command == "prepare":
        datasets = args.datasets or sorted(p for p in SHARED_DATA.iterdir() if (p / "items.jsonl").exists())
        measured = prepare(args.bundle, args.work, datasets, args.users, args.titles, args.seed,
                           not args.sample_tokenizer, args.encoder_run)
        print(json.dumps(measured, indent=2))
    else:
        result, failures = report(args.work, args.out)
        print(json.dumps({k: v for k, v in result.items() if k not in ("selection", "dynamic_axes")}, indent=2))
        if failures:
            print("parity FAILED: " + "; ".join(failures), file=sys.stderr)
            sys.exit(1)
        print(f"parity report written to {args.out}")


if __name__ == "__main__":
    main()
