"""Numeric precision of training on the CPU: bf16 autocast where the CPU computes bf16 natively, fp32 elsewhere.

On a CPU with AVX512-BF16 (AMD EPYC Zen 4 here) or AMX-BF16 (Intel Sapphire Rapids and later), oneDNN runs bf16
matmuls at 2.5x (AVX512-BF16, measured here) to 4-6x (AMX) the fp32 rate. Autocast runs the matmuls (linear layers,
attention products) in bf16 while the master weights, the optimizer state, the norms' statistics, the attention
softmax (transformers' eager attention computes it in fp32) and the losses (callers cast logits with .float())
stay fp32. Without native bf16 the same code runs in fp32: emulated bf16 would be slower than fp32.

    with autocast(resolve("auto")):
        loss = model(...)
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp32")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


@dataclass(frozen=True)
class Precision:
    name: str  # what was asked: auto | bf16 | fp32
    dtype: torch.dtype | None  # the autocast dtype, None = plain fp32
    reason: str  # why, for the run record

    @property
    def label(self) -> str:
        return "bf16" if self.dtype is not None else "fp32"

    def record(self) -> dict:
        flags = cpu_flags()
        return {"asked": self.name, "used": self.label, "reason": self.reason,
                "cpu_bf16_flags": sorted(f for f in flags if f in BF16_FLAGS or f.startswith("amx"))}


def resolve(name: str, flags: set[str] | None = None) -> Precision:
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {name!r}")
    if name == "fp32":
        return Precision(name, None, "fp32 asked for")
    if name == "bf16":
        return Precision(name, torch.bfloat16, "bf16 asked for")
    flags = cpu_flags() if flags is None else flags
    if native_bf16(flags):
        found = ", ".join(f for f in BF16_FLAGS if f in flags)
        return Precision(name, torch.bfloat16, f"the CPU has {found}")
    return Precision(name, None, "the CPU has neither avx512_bf16 nor amx_bf16: bf16 would be emulated, so fp32")


def autocast(precision: Precision):
    """A context running matmuls in the precision's dtype (a no-op context for fp32)."""
    if precision.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=precision.dtype)


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW with torch's fused CPU kernel (one pass over each tensor instead of a chain of elementwise ops)."""
    return torch.optim.AdamW(params, fused=True, **kwargs)
