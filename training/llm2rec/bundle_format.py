"""The model bundle format, read from src/inference/bundle-format.json: the one definition of a bundle that this
package (export and manifest) and the server (load and validate) both read. It holds the contract of each ONNX graph
(file, input and output names, element types, shapes) and the JSON Schema of manifest.json; docs/bundle-format.md
explains them. In a shape, a key of manifest.dimensions is an axis of that fixed size and any other name a dynamic
axis.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema

FORMAT_FILE = Path(__file__).resolve().parents[2] / "src" / "inference" / "bundle-format.json"
_FORMAT = json.loads(FORMAT_FILE.read_text(encoding="utf-8"))

FORMAT_VERSION: int = _FORMAT["format_version"]
# The names a shape may use for a fixed axis: the keys of manifest.dimensions.
FIXED_AXES = frozenset(_FORMAT["manifest"]["properties"]["dimensions"]["properties"])


@dataclass(frozen=True)
class Graph:
    file: str
    inputs: dict  # name -> {"type": ..., "shape": [...]}, in the graph's input order
    outputs: dict

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export's dynamic_axes: every axis of every input and output that is not a fixed dimension."""
        return {name: {axis: dim for axis, dim in enumerate(spec["shape"]) if dim not in FIXED_AXES}
                for name, spec in {**self.inputs, **self.outputs}.items()}


GRAPHS: dict[str, Graph] = {name: Graph(spec["file"], spec["inputs"], spec["outputs"])
                            for name, spec in _FORMAT["graphs"].items()}

_MANIFEST = jsonschema.Draft202012Validator(_FORMAT["manifest"])


class ManifestError(ValueError):
    """A manifest that does not match the format; the message lists what is wrong, by path."""


def check_manifest(manifest: dict) -> None:
    """Raise ManifestError unless `manifest` (as it will be written: JSON types) matches the format's schema."""
    errors = sorted(_MANIFEST.iter_errors(manifest), key=lambda error: [str(p) for p in error.absolute_path])
    if errors:
        raise ManifestError(f"manifest.json does not match format {FORMAT_VERSION}: " + "; ".join(
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}" for error in errors[:10]))
