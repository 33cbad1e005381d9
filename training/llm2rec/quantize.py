"""An int8 variant of a bundle's item encoder, added to the bundle only if it keeps the fp32 encoder's results.

    python -m training.llm2rec.quantize --bundle bundles/quick [--method weight-only|dynamic] [--datasets ...]

Writes `encoder.int8.onnx` next to `encoder.onnx` and rewrites manifest.json: `graphs.encoder_int8` (same inputs and
outputs as `graphs.encoder`), the file in `files` (sha256, bytes), and `variants.encoder_int8` with its size, its
speed relative to fp32 and its fidelity:

- `min_cosine`: the smallest cosine between the int8 and the fp32 item embedding over every title of `--datasets`
  (default: every dataset in ../shared/data);
- `top10_overlap`: mean |top-10 fp32 ∩ top-10 int8| / 10 over every leave-one-out test user of `--overlap-dataset`
  (default amazon-games): history = the user's last `max_history` items before the test item, the whole history
  excluded from the candidates (as the server does), items ranked over the dataset's whole catalogue; adapter and
  sequence model stay fp32, every vector goes through onnxruntime;
- `item_embedding_heads`: the int8 encoder's first 8 values for each manifest sample (one batch, like the server's
  load check), so a server loading the int8 variant can check its runtime against this one.

The variant is refused (nothing written, exit status 1) when min_cosine < 0.99 or top10_overlap < 0.9.

Methods (measured on the quick bundle, SmolLM2 6 layers; see the report printed at the end of a run):

- `weight-only` (default): every MatMul with a constant weight becomes a `MatMulNBits` (com.microsoft) with 8-bit
  symmetric weights in blocks of 32 along the input axis; activations stay fp32 (`accuracy_level` 0, or 4 for int8
  compute with activations quantized per row block). The token embedding table is stored int8 with one scale per
  block of 32 values of a row and dequantized after the Gather (only the rows looked up), in plain ONNX ops.
- `dynamic`: onnxruntime's quantize_dynamic on the MatMuls (QInt8 weights, activations quantized per tensor at run
  time). About twice as fast here (AVX512-VNNI), but one activation scale per tensor cannot hold the hidden states
  of an LLM (a few outlier channels and tokens set the scale for the whole batch, so a title's embedding even depends
  on the titles batched with it): on quick, min cosine 0.94 on 600 amazon-games titles, and top-10 overlap 0.76 on
  the amazon-games test users even with the MLP down-projections (the worst layers) left in fp32. The gate refuses
  it; it is kept to compare. Per-channel weights did not help (min cosine 0.95).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper

from .data import load_dataset, load_items, leave_one_out
from .export import write_manifest
from .tokens import TitleTokenizer
from .train_sequence import left_pad

INT8_FILE = "encoder.int8.onnx"
MIN_COSINE = 0.99
MIN_OVERLAP = 0.9
BLOCK = 32
BATCH = 64
TOP_K = 10


# ---------------------------------------------------------------------------------------------- the int8 graphs

def _quantize_blocks(weight: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Symmetric int8 per block of `block` values along axis 0 of a [K, N] matrix: (int8 [N, blocks, block] as
    uint8 offset by 128 for MatMulNBits, scales float32 [N, blocks], blocks)."""
    k, n = weight.shape
    blocks = -(-k // block)
    padded = np.zeros((blocks * block, n), dtype=np.float32)
    padded[:k] = weight
    grouped = padded.T.reshape(n, blocks, block)
    scales = np.abs(grouped).max(axis=2) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(grouped / scales[:, :, None]), -127, 127).astype(np.int16)
    # MatMulNBits without zero points uses 2^(bits-1) = 128 as the zero point of its unsigned 8-bit weights.
    return (q + 128).astype(np.uint8), scales.astype(np.float32), blocks


def weight_only_int8(model: onnx.ModelProto, block: int = BLOCK, accuracy_level: int = 0) -> onnx.ModelProto:
    """MatMuls with constant weights -> MatMulNBits (8 bits, blocks of `block`); the input_ids embedding table ->
    int8 rows with a scale per block, dequantized after the Gather."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    inputs = {value.name for value in graph.input}
    nodes, dropped, added = [], set(), []
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        table = initializers.get(node.input[0]) if node.op_type == "Gather" and node.input[1] in inputs else None
        if weight is not None and len(weight.dims) == 2:
            w = numpy_helper.to_array(weight).astype(np.float32)
            q, scales, _ = _quantize_blocks(w, block)
            dropped.add(weight.name)
            added += [numpy_helper.from_array(q, weight.name + "_int8"), numpy_helper.from_array(scales, weight.name + "_scales")]
            attributes = {"K": w.shape[0], "N": w.shape[1], "bits": 8, "block_size": block}
            if accuracy_level:
                attributes["accuracy_level"] = accuracy_level
            nodes.append(helper.make_node("MatMulNBits", [node.input[0], weight.name + "_int8", weight.name + "_scales"],
                                          list(node.output), name=node.name + "_int8", domain="com.microsoft",
                                          **attributes))
        elif table is not None and len(table.dims) == 2:
            nodes += _int8_embedding(node, numpy_helper.to_array(table), block, added)
            dropped.add(table.name)
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [init for init in graph.initializer if init.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def _int8_embedding(node: onnx.NodeProto, table: np.ndarray, block: int, added: list) -> list[onnx.NodeProto]:
    """Gather(table, ids) -> Gather(int8 table, ids) * Gather(scales, ids), a scale per block of a row."""
    vocab, dim = table.shape
    if dim % block:
        block = dim  # one scale per row
    blocks = dim // block
    grouped = table.astype(np.float32).reshape(vocab, blocks, block)
    scales = np.abs(grouped).max(axis=2, keepdims=True) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.rint(grouped / scales), -127, 127).astype(np.int8).reshape(vocab, dim)
    name, out = node.input[0], node.output[0]
    added += [numpy_helper.from_array(q, name + "_int8"), numpy_helper.from_array(scales.astype(np.float32), name + "_scales"),
              numpy_helper.from_array(np.array([0, 0, blocks, block], dtype=np.int64), name + "_blocked"),
              numpy_helper.from_array(np.array([0, 0, dim], dtype=np.int64), name + "_rows")]
    prefix = node.name or name
    return [
        helper.make_node("Gather", [name + "_int8", node.input[1]], [out + "_int8"], name=prefix + "_int8"),
        helper.make_node("Cast", [out + "_int8"], [out + "_cast"], to=onnx.TensorProto.FLOAT, name=prefix + "_cast"),
        helper.make_node("Reshape", [out + "_cast", name + "_blocked"], [out + "_blocked"], name=prefix + "_blocked"),
        helper.make_node("Gather", [name + "_scales", node.input[1]], [out + "_scales"], name=prefix + "_scales"),
        helper.make_node("Mul", [out + "_blocked", out + "_scales"], [out + "_dequantized"], name=prefix + "_dequantize"),
        helper.make_node("Reshape", [out + "_dequantized", name + "_rows"], [out], name=prefix + "_rows"),
    ]


def dynamic_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                     per_channel=False, extra_options={"MatMulConstBOnly": True})


def write_int8(bundle: Path, method: str, accuracy_level: int = 0) -> Path:
    src, dst = bundle / "encoder.onnx", bundle / INT8_FILE
    if method == "dynamic":
        dynamic_int8(src, dst)
    else:
        onnx.save(weight_only_int8(onnx.load(str(src)), accuracy_level=accuracy_level), str(dst))
    onnx.checker.check_model(str(dst))
    return dst


# ---------------------------------------------------------------------------------------------- measurements

def session(path: Path, threads: int = 2) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def length_batches(ids: list[list[int]], batch_size: int = BATCH) -> list[list[int]]:
    """Indices grouped into batches of similar token length (little padding), as training encodes catalogues."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def encode(encoder: onnxruntime.InferenceSession, tokenizer: TitleTokenizer, ids: list[list[int]],
           batches: list[list[int]] | None = None) -> np.ndarray:
    out = None
    for batch in batches or length_batches(ids):
        input_ids, attention_mask = tokenizer.pad([ids[i] for i in batch])
        result = encoder.run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[0]
        if out is None:
            out = np.zeros((len(ids), result.shape[1]), dtype=np.float32)
        out[batch] = result
    return out


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def user_vectors(sequence_model: onnxruntime.InferenceSession, vectors: np.ndarray, histories: list[list[int]],
                 max_history: int, chunk: int = 4096) -> np.ndarray:
    users = []
    for start in range(0, len(histories), chunk):
        indices, mask = left_pad([h[-max_history:] for h in histories[start:start + chunk]], max_history)
        users.append(sequence_model.run(None, {"history": vectors[indices.numpy()], "history_mask": mask.numpy()})[0])
    return np.concatenate(users)


def top_k(users: np.ndarray, items: np.ndarray, exclude: list[list[int]], k: int = TOP_K, chunk: int = 2048) -> np.ndarray:
    """Indices of each user's k best-scoring items (dot product), the items in `exclude[user]` left out."""
    tops = []
    for start in range(0, len(users), chunk):
        scores = users[start:start + chunk] @ items.T
        for row, seen in enumerate(exclude[start:start + chunk]):
            scores[row, seen] = -np.inf
        tops.append(np.argpartition(-scores, k, axis=1)[:, :k])
    return np.concatenate(tops)


def top10_overlap(bundle: Path, manifest: dict, fp32_items: np.ndarray, int8_items: np.ndarray,
                  histories: list[list[int]]) -> np.ndarray:
    """Per user: |top-10 with fp32 item embeddings ∩ top-10 with int8 ones| / 10; adapter and sequence model fp32."""
    adapter = session(bundle / manifest["graphs"]["adapter"]["file"])
    sequence_model = session(bundle / manifest["graphs"]["sequence_model"]["file"])
    max_history = manifest["sequence_model"]["max_history"]
    tops = []
    for items in (fp32_items, int8_items):
        vectors = adapter.run(None, {"item_embedding": items})[0]
        tops.append(top_k(user_vectors(sequence_model, vectors, histories, max_history), vectors, histories))
    return np.array([len(set(a) & set(b)) / TOP_K for a, b in zip(*tops)])


def test_histories(dataset_dir: Path, users: int | None, seed: int = 0) -> tuple[list[str], list[list[int]]]:
    """(catalogue titles, leave-one-out test histories), all users or `users` of them drawn with a fixed seed."""
    dataset = load_dataset(dataset_dir)
    histories = leave_one_out(dataset.sequences).test_histories
    if users is not None and users < len(histories):
        picked = np.random.default_rng(seed).choice(len(histories), size=users, replace=False)
        histories = [histories[i] for i in sorted(picked)]
    return dataset.titles, histories


def speed(fp32: onnxruntime.InferenceSession, int8: onnxruntime.InferenceSession, tokenizer: TitleTokenizer,
          ids: list[list[int]], rounds: int = 3) -> dict:
    """Seconds per 1,000 titles of each encoder, measured in alternation on the same titles (a shared machine's load
    falls on both), median of `rounds`."""
    times = {"fp32": [], "int8": []}
    batches = length_batches(ids)
    encode(fp32, tokenizer, ids[:BATCH]), encode(int8, tokenizer, ids[:BATCH])  # warm-up
    for _ in range(rounds):
        for name, encoder in (("fp32", fp32), ("int8", int8)):
            started = time.perf_counter()
            encode(encoder, tokenizer, ids, batches)
            times[name].append(time.perf_counter() - started)
    per_1000 = {name: statistics.median(values) * 1000 / len(ids) for name, values in times.items()}
    return {"fp32_s_per_1000_titles": round(per_1000["fp32"], 3), "int8_s_per_1000_titles": round(per_1000["int8"], 3),
            "speedup": round(per_1000["fp32"] / per_1000["int8"], 3), "titles": len(ids), "batch_size": BATCH,
            "threads": 2}


def fidelity(bundle: Path, manifest: dict, int8_path: Path, dataset_dirs: list[Path], overlap_dataset: Path,
             users: int | None = None) -> dict:
    """Cosine int8 vs fp32 on every title of `dataset_dirs`; top-10 overlap on the test users of `overlap_dataset`."""
    tokenizer = TitleTokenizer.from_bundle(bundle, manifest)
    fp32 = session(bundle / manifest["graphs"]["encoder"]["file"])
    int8 = session(int8_path)
    per_dataset = [load_items(directory)[1] for directory in dataset_dirs]
    titles = [title for dataset_titles in per_dataset for title in dataset_titles]
    ids = tokenizer.encode(titles)
    fp32_items, int8_items = encode(fp32, tokenizer, ids), encode(int8, tokenizer, ids)
    cos = cosines(fp32_items, int8_items)
    worst = int(np.argmin(cos))
    catalogue, histories = test_histories(overlap_dataset, users)
    resolved = [Path(d).resolve() for d in dataset_dirs]
    if Path(overlap_dataset).resolve() in resolved:  # its titles were just encoded: reuse them
        position = resolved.index(Path(overlap_dataset).resolve())
        start = sum(len(t) for t in per_dataset[:position])
        catalogue_fp32 = fp32_items[start:start + len(catalogue)]
        catalogue_int8 = int8_items[start:start + len(catalogue)]
    else:
        catalogue_ids = tokenizer.encode(catalogue)
        catalogue_fp32, catalogue_int8 = encode(fp32, tokenizer, catalogue_ids), encode(int8, tokenizer, catalogue_ids)
    overlap = top10_overlap(bundle, manifest, catalogue_fp32, catalogue_int8, histories)
    sample = np.random.default_rng(0).choice(len(ids), size=min(512, len(ids)), replace=False)
    return {
        "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()), "titles": len(titles),
        "datasets": [Path(d).name for d in dataset_dirs], "worst_title": titles[worst],
        "titles_below_0.99": int((cos < MIN_COSINE).sum()),
        "top10_overlap": float(overlap.mean()), "top10_overlap_p5": float(np.percentile(overlap, 5)),
        "top10_overlap_min": float(overlap.min()), "overlap_dataset": Path(overlap_dataset).name,
        "users": len(histories), "users_sampled": users is not None,
        "speed": speed(fp32, int8, tokenizer, [ids[i] for i in sample]),
    }


def sample_heads(int8_path: Path, tokenizer: TitleTokenizer, samples: list[dict]) -> list[list[float]]:
    """The int8 encoder's first 8 values for the manifest samples, encoded as one batch (as the server checks them)."""
    if not samples:
        return []
    input_ids, attention_mask = tokenizer.pad([s["input_ids"] for s in samples])
    out = session(int8_path).run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[0]
    return [[float(v) for v in row[:8]] for row in out]


# ---------------------------------------------------------------------------------------------- the command

def quantize_bundle(bundle: Path, method: str = "weight-only", accuracy_level: int = 0,
                    dataset_dirs: list[Path] | None = None, overlap_dataset: Path | None = None,
                    users: int | None = None, min_cosine: float = MIN_COSINE, min_overlap: float = MIN_OVERLAP) -> dict:
    """Adds the int8 encoder to `bundle` if it passes the fidelity gate; returns variants.encoder_int8.
    Raises ValueError (the bundle left as it was) when it does not."""
    from .tokenize_titles import SHARED_DATA
    bundle = Path(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    dataset_dirs = dataset_dirs or sorted(p for p in SHARED_DATA.iterdir() if (p / "items.jsonl").exists())
    overlap_dataset = overlap_dataset or SHARED_DATA / "amazon-games"

    started = time.time()
    path = write_int8(bundle, method, accuracy_level)
    seconds = time.time() - started
    try:
        measured = fidelity(bundle, manifest, path, dataset_dirs, overlap_dataset, users)
        if measured["min_cosine"] < min_cosine or measured["top10_overlap"] < min_overlap:
            raise ValueError(f"int8 encoder ({method}) refused: min cosine {measured['min_cosine']:.4f} "
                             f"(needs >= {min_cosine}, worst title {measured['worst_title']!r}), top-10 overlap "
                             f"{measured['top10_overlap']:.4f} (needs >= {min_overlap})")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    fp32_bytes = (bundle / manifest["graphs"]["encoder"]["file"]).stat().st_size
    variant = {
        "file": INT8_FILE,
        "method": method,
        "quantization": ("onnxruntime quantize_dynamic: MatMul weights QInt8 per tensor, activations uint8 per "
                         "tensor at run time" if method == "dynamic" else
                         f"MatMulNBits 8-bit symmetric weights, blocks of {BLOCK}, accuracy_level {accuracy_level}; "
                         f"token embedding table int8 with a scale per block of {BLOCK}"),
        "bytes": path.stat().st_size,
        "fp32_bytes": fp32_bytes,
        "size_ratio": round(path.stat().st_size / fp32_bytes, 4),
        "speedup": measured["speed"]["speedup"],
        **measured,
        "quantize_seconds": round(seconds, 1),
        "item_embedding_heads": sample_heads(path, TitleTokenizer.from_bundle(bundle, manifest),
                                             manifest.get("samples", [])),
    }
    encoder = manifest["graphs"]["encoder"]
    manifest["graphs"]["encoder_int8"] = {"file": INT8_FILE, "inputs": encoder["inputs"], "outputs": encoder["outputs"]}
    manifest["variants"] = {**manifest.get("variants", {}), "encoder_int8": variant}
    manifest.pop("files", None)
    write_manifest(bundle, manifest)
    return variant


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.llm2rec.quantize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--method", choices=["weight-only", "dynamic"], default="weight-only")
    parser.add_argument("--accuracy-level", type=int, choices=[0, 4], default=0,
                        help="weight-only: 0 = fp32 compute (default), 4 = int8 compute, activations per row block")
    parser.add_argument("--datasets", nargs="+", type=Path, help="titles for the cosine (default: every shared dataset)")
    parser.add_argument("--overlap-dataset", type=Path, help="test users for the top-10 overlap (default amazon-games)")
    parser.add_argument("--users", type=int, help="draw this many test users (seed 0) instead of taking all")
    parser.add_argument("--min-cosine", type=float, default=MIN_COSINE)
    parser.add_argument("--min-overlap", type=float, default=MIN_OVERLAP)
    args = parser.parse_args(argv)
    try:
        variant = quantize_bundle(args.bundle, args.method, args.accuracy_level, args.datasets, args.overlap_dataset,
                                  args.users, args.min_cosine, args.min_overlap)
    except ValueError as error:
        print(f"quantize: {error}", file=sys.stderr)
        sys.exit(1)
    shown = {k: v for k, v in variant.items() if k != "item_embedding_heads"}
    print(json.dumps(shown, indent=2))
    print(f"{INT8_FILE} added to {args.bundle}")


if __name__ == "__main__":
    main()
