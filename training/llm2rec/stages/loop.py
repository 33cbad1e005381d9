"""What the three stages share: the model wrapper (full fine-tuning or LoRA), the training loop with resumable
checkpoints, and the loss plot.

A stage directory `runs/<preset>/<stage>/` holds, while the stage runs, `checkpoint.pt` (trainable weights,
optimizer, step, RNG states, loss history; rewritten atomically every few minutes and when stopped), and once the
stage is done `model/` (save_pretrained, LoRA merged), `summary.json` and `loss.png`; `summary.json` marks the
stage as finished and `checkpoint.pt` is then deleted.
"""

import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from ..encoder import ItemEncoder
from ..precision import Precision, adamw, autocast
from ..train_config import LoraSettings, StageConfig

CHECKPOINT = "checkpoint.pt"
SUMMARY = "summary.json"
SMOOTH = 20  # first/final loss are means over up to this many steps (a fifth of a short stage); raw values kept


class StageModel:
    """A causal LM being trained in one stage: the whole model, or LoRA adapters on it (peft), plus views of it as
    an ItemEncoder (our own 4D attention mask: causal or bidirectional) and its LM head."""

    def __init__(self, model: PreTrainedModel, lora: LoraSettings, train_embeddings: bool = True):
        self.lora = lora.enabled
        if not train_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        if self.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=list(lora.target_modules), bias="none"))
            self.base = model.get_base_model()  # the original model, LoRA layers injected in place
        else:
            self.base = model
        self.model = model

    def encoder(self, attention: str) -> ItemEncoder:
        decoder = self.base.get_decoder()
        return ItemEncoder(decoder, len(decoder.layers), attention)

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.base.get_output_embeddings()(hidden)

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def freeze_above(self, layers: int) -> None:
        """Train only decoder layers 0..layers-1: the layers above and the final norm stay as pretrained (CSFT
        through a deeper LM than the encoder, train_config.StageConfig.through_layers)."""
        decoder = self.base.get_decoder()
        for module in [*decoder.layers[layers:], decoder.norm]:
            for p in module.parameters():
                p.requires_grad_(False)

    def set_attention_dropout(self, p: float) -> None:
        for layer in self.base.get_decoder().layers:
            layer.self_attn.attention_dropout = p

    def merged(self) -> PreTrainedModel:
        """The plain model with the training folded in (LLM2Vec/LLM2Rec merge LoRA after every stage)."""
        return self.model.merge_and_unload() if self.lora else self.model


class Stop:
    """Stop cleanly (after the current step, with a checkpoint) at a deadline or on SIGTERM/SIGINT."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.signalled = False
        self.previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread (e.g. some test runners): deadline only
                pass

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        print(f"\nsignal {signum}: stopping after this step with a checkpoint", flush=True)
        self.signalled = True

    def __call__(self) -> bool:
        return self.signalled or (self.deadline is not None and time.time() > self.deadline)


def learning_rate(config: StageConfig, step: int, seconds: float = 0.0) -> float:
    """Linear warm-up for warmup_steps, then linear decay to 0 at the end of the stage: at config.steps, or, with a
    time cap, at the cap if that comes first (the decay follows whichever of steps and time is further along)."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    if config.max_minutes:
        progress = max(progress, seconds / (config.max_minutes * 60))
    return config.learning_rate * max(0.0, 1.0 - progress)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_atomically(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_step(compute_loss: Callable[[], torch.Tensor], params: list[torch.nn.Parameter],
               optimizer: torch.optim.Optimizer, precision: Precision, grad_clip: float | None) -> torch.Tensor:
    """One optimisation step: the forward pass under the precision's autocast, the backward pass (autocast's
    recorded casts run backwards in the same dtypes), gradient clipping, the optimizer update. Returns the loss."""
    with autocast(precision):
        loss = compute_loss()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return loss


@dataclass
class Outcome:
    finished: bool
    summary: dict | None


def run_stage(name: str, stage: StageModel, config: StageConfig, batch_loss: Callable[[int], torch.Tensor],
              out_dir: Path, checkpoint_minutes: float, stop: Stop, precision: Precision,
              extra_summary: dict | None = None, save_tokenizer=None) -> Outcome:
    """Train `stage` for config.steps steps of `batch_loss(step)` (the batch is a function of the step, so a
    resumed run sees exactly the batches it would have seen), the forward pass under `precision`'s autocast.
    Resumes from out_dir/checkpoint.pt if present."""
    out_dir.mkdir(parents=True, exist_ok=True)
    params = stage.trainable()
    optimizer = adamw(params.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
    state = {"step": 0, "losses": [], "seconds": 0.0, "resumed": 0}
    checkpoint_file = out_dir / CHECKPOINT

    if checkpoint_file.exists():
        saved = torch.load(checkpoint_file, weights_only=False)
        with torch.no_grad():
            for key, value in saved["trainable"].items():
                params[key].copy_(value)
        optimizer.load_state_dict(saved["optimizer"])
        set_rng_state(saved["rng"])
        state = saved["state"]
        state["resumed"] += 1
        print(f"[{name}] resuming at step {state['step']}/{config.steps} from {checkpoint_file}", flush=True)

    def checkpoint() -> None:
        started = time.time()
        save_atomically({"trainable": {k: p.detach().clone() for k, p in params.items()},
                         "optimizer": optimizer.state_dict(), "rng": rng_state(), "state": state}, checkpoint_file)
        print(f"\n[{name}] checkpoint at step {state['step']} ({time.time() - started:.1f}s)", flush=True)

    stage.model.train()
    last_checkpoint = last_line = time.time()
    progress = tqdm(total=config.steps, initial=state["step"], desc=name, unit="step", dynamic_ncols=True,
                    mininterval=5.0)
    while state["step"] < config.steps:
        if config.max_minutes is not None and state["seconds"] > config.max_minutes * 60:
            print(f"\n[{name}] time cap of {config.max_minutes} min reached at step {state['step']}/{config.steps}",
                  flush=True)
            state["time_capped"] = True
            break
        if stop():
            checkpoint()
            progress.close()
            return Outcome(False, None)
        started = time.time()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, state["step"], state["seconds"])
        loss = train_step(lambda: batch_loss(state["step"]), list(params.values()), optimizer, precision,
                          config.grad_clip)
        state["step"] += 1
        state["losses"].append(float(loss.item()))
        state["seconds"] += time.time() - started
        progress.update(1)
        progress.set_postfix(loss=f"{np.mean(state['losses'][-SMOOTH:]):.3f}", refresh=False)
        if not math.isfinite(state["losses"][-1]):
            raise FloatingPointError(f"[{name}] loss is {state['losses'][-1]} at step {state['step']}")
        if time.time() - last_line > 60:  # a plain line a minute, for logs (tqdm redraws with \r)
            per_step = state["seconds"] / max(1, state["step"])
            print(f"\n[{name}] step {state['step']}/{config.steps} loss {np.mean(state['losses'][-SMOOTH:]):.4f} "
                  f"lr {optimizer.param_groups[0]['lr']:.2e} {per_step:.2f} s/step, {state['seconds'] / 60:.1f} min",
                  flush=True)
            last_line = time.time()
        if time.time() - last_checkpoint > checkpoint_minutes * 60 and state["step"] < config.steps:
            checkpoint()
            last_checkpoint = time.time()
    progress.close()

    started = time.time()
    stage.model.eval()
    model = stage.merged()
    model.save_pretrained(out_dir / "model")
    if save_tokenizer is not None:
        save_tokenizer(out_dir / "model")
    losses = state["losses"]
    window = max(1, min(SMOOTH, len(losses) // 5))
    summary = {
        "stage": name,
        "steps": state["step"],
        "planned_steps": config.steps,
        "stopped_by_time_cap": state.get("time_capped", False),
        "first_loss": float(np.mean(losses[:window])),
        "final_loss": float(np.mean(losses[-window:])),
        "first_step_loss": losses[0],
        "last_step_loss": losses[-1],
        "loss_smoothing": f"first/final_loss = mean over the first/last {window} steps",
        "seconds": round(state["seconds"], 1),
        "seconds_per_step": round(state["seconds"] / max(1, len(losses)), 3),
        "resumed": state["resumed"],
        "lora": stage.lora,
        "precision": precision.record(),
        "trainable_parameters": sum(p.numel() for p in params.values()),
        **(extra_summary or {}),
        "losses": losses,
    }
    plot_losses(name, losses, out_dir / "loss.png")
    (out_dir / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    checkpoint_file.unlink(missing_ok=True)
    print(f"[{name}] done: {summary['steps']} steps, loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f}, "
          f"{summary['seconds']:.0f}s (+{time.time() - started:.1f}s to save)", flush=True)
    return Outcome(True, summary)


def plot_losses(name: str, losses: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(losses) + 1)
    window = max(1, min(50, len(losses) // 10))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="per step")
    ax.plot(steps[window - 1:], smooth, color="tab:blue", linewidth=1.8, label=f"mean of {window} steps")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{name} training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
