r"""Tuning a sequence-model method on validation: a small grid, so that a baseline is not a strawman.

    python -m training.llm2rec.cli tune --dataset ../shared/data/movielens-small --method id-sasrec \
        --grid learning_rate=1e-3,3e-4 --grid dropout=0.2,0.5 --grid max_history=10,50 --report reports/tuning.json

Each configuration of the grid (every combination of the values given) trains the method once (seed 0 unless --seed)
as an in-domain cell of `evaluate` would: the same protocol but for the fields tuned, the same leave-one-out split,
early stopping on validation Recall@20. The configuration with the best validation Recall@20 wins; test metrics are
never read. Tunable fields: evaluate.TUNABLE; the epochs are early stopping's choice under a cap that must not bind (a
capped configuration is flagged and loses to any converged one). A winner at the smallest or largest value of a field
the grid gave three or more values is at the grid's edge there: the optimum may lie outside, and the report says so
(two values bracket nothing, so a two-value field is listed as unbracketed instead, and a field given one value as
fixed: not tuned on that dataset); for each field given two or more values it records whether the winner sits at the
lowest, the highest or inside ("winner_at"): which way a wider grid would go, and `next_step` (the CLI's
`next-step`) names the configuration one step past the winner's end of a field. The command's arguments are read in
cli.py; this module runs the grid and writes the report.

The report (JSON, with a .md table and a .png plot beside it) keeps every (dataset, method) tuned so far: each
configuration's validation metrics, best epoch, epochs run and seconds, and where and in which precision it trained
(from its cell: a grid may span machines), the winner, and each command with the date and machine it ended on.
`record_in` reads the report again after the training, just before the entry goes in, so what another run wrote
meanwhile stays. A later grid for a (dataset, method) already there widens it when both ran under the same protocol
(all but the epoch cap, the seed, the training procedure and the fields tuned): its trials join the earlier ones, a
configuration trained again (e.g. under a higher cap) keeps its newer trial, and the winner is chosen over all of
them. A grid under a different protocol replaces the entry, whose trials could not be ranked with the new ones.
`evaluate --tuned REPORT` trains each (dataset, method) it lists with its winner. Resumable: each configuration's
finished cell is kept under CELLS/<dataset>/<method>/<configuration fingerprint>/ (default CELLS is OUT) and not
trained again; its epoch checkpoint, while it trains, under OUT/<dataset>/<method>/<configuration fingerprint>/. With
CELLS in the repository a grid that takes days survives a change of machine.
"""

import itertools
import json
from dataclasses import asdict, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from .config import ConfigError
from .evaluate import TUNABLE, Evaluation, Harness, Protocol
from .fingerprint import fingerprint
from .train_sequence import TRAINING_PROCEDURE
from .train_encoder import machine

SELECTION = "recall@20"  # the validation metric early stopping uses; the winner is chosen by it too


def parse_grid(items: list[str], option: str = "--grid") -> dict[str, list]:
    """`NAME=V1,V2,...` items as {field: [values]}, each value of the Protocol field's type; errors name them as
    given with `option`."""
    types = {f.name: type(getattr(Protocol(), f.name)) for f in fields(Protocol)}
    grid: dict[str, list] = {}
    for item in items:
        name, _, values = item.partition("=")
        if name not in TUNABLE:
            raise ConfigError(f"{option} {item!r}: {name!r} cannot be tuned (tunable: {', '.join(TUNABLE)})")
        if name in grid:
            raise ConfigError(f"{option} {item!r}: {name} is given twice")
        try:
            parsed = [types[name](value) for value in values.split(",") if value.strip()]
        except ValueError:
            raise ConfigError(f"{option} {item!r}: the values of {name} must be {types[name].__name__}s") from None
        if not parsed or len(set(parsed)) != len(parsed):
            raise ConfigError(f"{option} {item!r}: give distinct values, e.g. {name}=1,2")
        grid[name] = parsed
    if not grid:
        raise ConfigError(f"give at least one {option} NAME=V1,V2")
    return grid


def configurations(grid: dict[str, list]) -> list[dict]:
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]


def bracketing(grid: dict[str, list], best: dict) -> dict:
    """Where the winner sits in each field's range: "winner_at" maps each field given two or more values to "lowest",
    "highest" or "inside" (which way a wider grid would go); "at_edge" lists fields of three or more values whose
    winning value is the smallest or largest given (widen the grid there), "unbracketed" the fields given only two
    values, "fixed" the fields given one value (not tuned on this dataset)."""
    winner_at = {name: ("lowest" if best[name] == min(values) else "highest" if best[name] == max(values) else "inside")
                 for name, values in grid.items() if len(values) >= 2}
    at_edge = [name for name, values in grid.items() if len(values) >= 3 and winner_at[name] != "inside"]
    unbracketed = [name for name, values in grid.items() if len(values) == 2]
    fixed = [name for name, values in grid.items() if len(values) == 1]
    return {"winner_at": winner_at, "at_edge": at_edge, "unbracketed": unbracketed, "fixed": fixed}


def next_step(entry: dict, ladders: list[tuple[str, str, list]]) -> dict | None:
    """The next configuration to train for a tuned (dataset, method) whose winner sits at the end of a field's range,
    or None when there is none. `ladders` are (field, "up" or "down", values), tried in their order: while the
    winner has the largest value tried for the field ("up"; the smallest for "down"; a field tried at one value is
    at both ends), the ladder's nearest value beyond it, at the winner's other settings. One field at a time: this
    does not search the whole grid (a value that wins only at other settings of another field is missed)."""
    best = entry["best"]
    for field, direction, values in ladders:
        if direction not in ("up", "down"):
            raise ConfigError(f"a ladder goes up or down, not {direction!r}")
        tried = entry["grid"].get(field)
        if tried is None:
            raise ConfigError(f"{field!r} is not a field of this grid ({', '.join(entry['grid'])})")
        end = max(tried) if direction == "up" else min(tried)
        beyond = [v for v in values if (v > end if direction == "up" else v < end)]
        if best[field] == end and beyond:
            return {**best, field: min(beyond) if direction == "up" else max(beyond)}
    return None


def tune(dataset: str, method: str, grid: dict[str, list], base: Protocol, out: Path, seed: int = 0,
         sources: dict[str, str] | None = None, quiet: bool = True, cells: Path | None = None) -> tuple[str, dict]:
    """Trains `method` on `dataset` under every configuration of `grid`; returns the dataset's name and the
    (dataset, method) record. Finished cells go under `cells` (default `out`), checkpoints under `out`."""
    trials, name = [], ""
    configs = configurations(grid)
    for number, config in enumerate(configs, start=1):
        protocol = replace(base, seeds=(seed,), **config)
        plan = Evaluation(protocol, in_domain=[dataset], methods=[method], sources=sources or {})
        key = fingerprint(config)
        harness = Harness(plan, out / key, quiet=quiet, split_shown="validation",
                          cells=(cells / key if cells is not None else None))
        name = harness.targets[0].dataset.name
        print(f"[{number}/{len(configs)}] {method} on {harness.targets[0].key} with {config}", flush=True)
        [cell] = harness.run()
        trials.append({"config": config, "validation": cell["validation"], "best_epoch": cell["best_epoch"],
                       "epochs_run": cell["epochs_run"], "capped": cell["capped"], "max_epochs": cell["max_epochs"],
                       "seconds": cell["seconds"], "precision": cell.get("precision", "not recorded"),
                       "computed_on": cell.get("machine", "not recorded")})  # a grid may span machines
        print(f"    validation {SELECTION} {cell['validation'][SELECTION]:.4f}, best epoch {cell['best_epoch']}"
              + (" (capped: not converged)" if cell["capped"] else ""), flush=True)
    best = winner(trials)
    return name, {"grid": grid, "seed": seed, "selection": f"validation {SELECTION}", "trials": trials,
                  "best": best,
                  "base_protocol": {k: v for k, v in asdict(base).items() if k != "seeds"},
                  "training": TRAINING_PROCEDURE}


def winner(trials: list[dict]) -> dict:
    """The winning configuration: a converged trial beats any capped one; among each, the best validation metric."""
    return max(trials, key=lambda t: (not t["capped"], t["validation"][SELECTION]))["config"]


def differences(previous: dict, entry: dict) -> list[str]:
    """Why two grids' trials of one (dataset, method) cannot be ranked together (empty: they can): the base protocol
    but for the epoch cap (only a cap: a converged trial is the same under any cap it did not reach), the seed, the
    training procedure, the fields tuned."""
    before, after = ({k: v for k, v in e.get("base_protocol", {}).items() if k != "max_epochs"}
                     for e in (previous, entry))
    found = [f"{k} {before.get(k)} -> {after.get(k)}" for k in sorted(before | after) if before.get(k) != after.get(k)]
    if previous.get("seed") != entry["seed"]:
        found.append(f"seed {previous.get('seed')} -> {entry['seed']}")
    if previous.get("training") != entry["training"]:
        found.append("the training procedure")
    if set(previous["grid"]) != set(entry["grid"]):
        found.append(f"the fields tuned {sorted(previous['grid'])} -> {sorted(entry['grid'])}")
    return found


def widen(previous: dict, entry: dict) -> dict:
    """`previous`'s trials and `entry`'s as one entry: a configuration in both keeps `entry`'s trial, in the earlier
    trial's place; each field's values are both grids' (no longer every combination: the trials say which ran); the
    winner is chosen again over all trials (where it sits, `write` works out). The first grid's command stays the
    entry's; `entry`'s joins `widened_by`."""
    newer = {fingerprint(t["config"]): t for t in entry["trials"]}
    trials = [newer.pop(fingerprint(t["config"]), t) for t in previous["trials"]] + list(newer.values())
    grid = {name: values + [v for v in entry["grid"][name] if v not in values]
            for name, values in previous["grid"].items()}
    best = winner(trials)
    run = {k: entry[k] for k in ("command", "machine", "created_at")} | {
        "grid": entry["grid"], "max_epochs": entry["base_protocol"]["max_epochs"]}
    return {**previous, "grid": grid, "trials": trials, "best": best,
            "widened_by": previous.get("widened_by", []) + [run]}


def load_report(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"description": "sequence-model methods tuned on validation (training/llm2rec/tune.py): per dataset and "
                           "method, every configuration of a small grid, one seed, the winner by validation "
                           f"{SELECTION}", "datasets": {}}


def record(report: dict, dataset_name: str, method: str, entry: dict, command: str) -> str:
    """Puts `entry` into `report`: widening the (dataset, method) already there when it ran under the same protocol,
    replacing it otherwise. Returns what happened, for the command's output."""
    entry = {**entry, "command": command, "machine": machine(),
             "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    methods = report["datasets"].setdefault(dataset_name, {})
    previous = methods.get(method)
    if previous is None:
        methods[method] = entry
        return "recorded"
    changed = differences(previous, entry)
    if changed:
        methods[method] = entry
        return f"replaced the earlier grid, run under another protocol ({'; '.join(changed)})"
    if all(same_trial(trial, previous["trials"]) for trial in entry["trials"]):
        return "already recorded: no configuration is new or trained again"
    methods[method] = widen(previous, entry)
    return f"widened the earlier grid to {len(methods[method]['trials'])} configurations"


def record_in(path: Path, dataset_name: str, method: str, entry: dict, command: str) -> tuple[str, dict]:
    """`record` into the report at `path`, rewritten; returns what happened and the (dataset, method) entry as it now
    stands. The report is read here, after the training, so what another run wrote meanwhile stays."""
    report = load_report(path)
    outcome = record(report, dataset_name, method, entry, command)
    write(report, path)
    return outcome, report["datasets"][dataset_name][method]


def same_trial(trial: dict, trials: list[dict]) -> bool:
    """Whether `trials` holds `trial`'s result (a cell trained before and read again)."""
    result = ("config", "validation", "best_epoch", "epochs_run", "capped")
    return any(all(t.get(k) == trial.get(k) for k in result) for t in trials)


def tuned_settings(report: dict) -> dict[str, dict[str, dict]]:
    """{dataset: {method: winning configuration}}: what `evaluate --tuned` applies."""
    return {dataset: {method: entry["best"] for method, entry in methods.items()}
            for dataset, methods in report["datasets"].items()}


def capped_mark(trial: dict) -> str:
    """How the report's table and plot mark a configuration the epoch cap ended before early stopping."""
    return " (capped)" if trial["capped"] else ""


def trained_on(trial: dict) -> str:
    """Where a configuration trained and in which precision, from its cell (trials recorded before the report kept
    them say so)."""
    return f"{trial.get('precision', 'not recorded')}, {trial.get('computed_on', 'not recorded')}"


def markdown(report: dict) -> str:
    lines = ["# Sequence-model methods tuned on validation", "",
             "Written by `python -m training.llm2rec.cli tune`. The winner (bold) has the best validation "
             f"{SELECTION} among the configurations early stopping ended (capped ones are marked). Each command "
             "is shown with the date and machine it ended on, when it recorded its rows; a grid may span machines "
             "and sessions, so each row says where its configuration trained and in which precision.", ""]
    for dataset, methods in report["datasets"].items():
        for method, entry in methods.items():
            names = list(entry["grid"])
            lines += [f"## {method} on {dataset}", "", f"`{entry['command']}` (ended {entry['created_at']} on "
                      f"{entry['machine']['cpu']}, seed {entry['seed']})", ""]
            for run in entry.get("widened_by", []):
                lines += [f"Widened by `{run['command']}` (ended {run['created_at']} on {run['machine']['cpu']})",
                          ""]
            lines += ["| " + " | ".join(names) + f" | validation {SELECTION} | validation ndcg@10 | best epoch | "
                      "seconds | trained on |", "|" + "---|" * (len(names) + 5)]
            for trial in entry["trials"]:
                values = [str(trial["config"][name]) for name in names]
                metric = f"{trial['validation'][SELECTION]:.4f}"
                if trial["config"] == entry["best"]:
                    metric = f"**{metric}**"
                epoch = f"{trial['best_epoch']} of {trial['epochs_run']}{capped_mark(trial)}"
                lines.append("| " + " | ".join(values) + f" | {metric} | {trial['validation']['ndcg@10']:.4f} | "
                             f"{epoch} | {trial['seconds']:.0f} | {trained_on(trial)} |")
            lines += ["", edge_note(entry), ""]
    return "\n".join(lines)


def edge_note(entry: dict) -> str:
    """The report's sentence on where the winner sits (derived from the grid, so entries older than the check have
    one too)."""
    where = bracketing(entry["grid"], entry["best"])
    ranged = [name for name, values in entry["grid"].items() if len(values) >= 3]
    notes = []
    if where["at_edge"]:
        at_edge = ", ".join(f"{name} = {entry['best'][name]} (the {where['winner_at'][name]} given)"
                            for name in where["at_edge"])
        notes.append(f"The winner is at the grid's edge for {at_edge}: a wider grid there may do better.")
    elif ranged:
        notes.append(f"The winner is inside the grid for {', '.join(ranged)}.")
    if where["unbracketed"]:
        notes.append("Given two values only, so not bracketed: " + ", ".join(
            f"{name} (winner at the {where['winner_at'][name]})" for name in where["unbracketed"]) + ".")
    if where["fixed"]:
        notes.append("Given one value, so not tuned here: "
                     + ", ".join(f"{name} = {entry['grid'][name][0]}" for name in where["fixed"]) + ".")
    combinations = len(configurations(entry["grid"]))
    if len(entry["trials"]) < combinations:
        notes.append(f"A widened grid: {len(entry['trials'])} of the {combinations} combinations of these values were "
                     "trained, the rows above.")
    return " ".join(notes)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(dataset, method, entry) for dataset, methods in report["datasets"].items()
              for method, entry in methods.items()]
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 0.35 * max(len(e["trials"]) for *_, e in panels)
                                                             * len(panels)), squeeze=False)
    for ax, (dataset, method, entry) in zip(axes[:, 0], panels):
        labels = [", ".join(f"{k}={v}" for k, v in t["config"].items()) + capped_mark(t) for t in entry["trials"]]
        values = [t["validation"][SELECTION] for t in entry["trials"]]
        colors = ["tab:green" if t["config"] == entry["best"] else "tab:gray" for t in entry["trials"]]
        ax.barh(labels, values, color=colors)
        ax.set_title(f"{method} on {dataset}: validation {SELECTION} (winner green)", fontsize=9)
        ax.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")  # long configuration labels stay inside the image
    plt.close(figure)


def write(report: dict, path: Path) -> None:
    for methods in report["datasets"].values():  # where each winner sits, kept current for every entry, old ones too
        for entry in methods.values():
            entry.update(bracketing(entry["grid"], entry["best"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report, indent=1) + "\n")
    temporary.replace(path)
    path.with_suffix(".md").write_text(markdown(report))
    plot(report, path.with_suffix(".png"))
