"""The quality report of an evaluation: per dataset and method, the mean and spread over seeds of every metric
(`reports/quality*.json`), the same as markdown tables and as a bar plot. Reads the harness's cells; computes
nothing.
"""

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .data import leave_one_out
from .evaluate import METRICS, Harness, whole_catalogue_cutoffs
from .train_encoder import machine
from .train_sequence import MIX_SOFTMAX


def aggregate(harness: Harness, results: list[dict], command: str) -> dict:
    """reports/quality.json: per dataset key its setting and, per method, mean and std over seeds of each metric."""
    datasets = {}
    for target in harness.targets:
        split = leave_one_out(target.dataset.sequences)
        methods = {}
        for method in harness.methods:
            cells = [r for r in results if r["dataset"] == target.key and r["method"] == method.name]
            if not cells:
                missing = harness.unnamed_source(method.source)
                methods[method.name] = ({"not_run": f"its source cannot be opened here: {missing}",
                                         "source_not_here": True} if missing
                                        else {"not_run": "no seed of this cell has been computed yet"})
                continue
            if any("not_applicable" in c for c in cells):
                methods[method.name] = {"not_applicable": cells[0]["not_applicable"]}
                continue
            summary = {}
            for metric in METRICS:
                values = np.array([c["test"][metric] for c in cells])
                # sample standard deviation over seeds; None for a single seed (one run has no spread to measure)
                summary[metric] = {"mean": float(values.mean()),
                                   "std": float(values.std(ddof=1)) if len(values) > 1 else None}
            summary["seeds"] = len(cells)
            summary["validation_recall@20"] = float(np.mean([c["validation"]["recall@20"] for c in cells]))
            if method.model != "popularity":
                summary["best_epochs"] = [c["best_epoch"] for c in cells]
                summary["capped_seeds"] = sum(c["capped"] for c in cells)
                if summary["capped_seeds"]:  # the cap those seeds ran under (cells may predate a change of cap)
                    summary["capped_at"] = sorted({c["max_epochs"] for c in cells if c["capped"]})
            if tuned := harness.tuned_fields(target, method):
                summary["tuned"] = tuned
            summary["train_seconds"] = float(np.mean([c["seconds"] for c in cells]))
            summary["computed_on"] = sorted({c.get("machine", "not recorded") for c in cells})
            if method.model != "popularity":
                summary["precision"] = sorted({c.get("precision", "not recorded") for c in cells})
            if runs := sorted({c["encoder_run"] for c in cells if "encoder_run" in c}):
                summary["encoder_runs"] = runs
            methods[method.name] = summary
        datasets[target.key] = {
            "setting": target.setting, "path": target.dataset.path, "items": len(target.dataset.item_ids),
            "users": len(target.dataset.sequences), "test_users": len(split.test_targets),
            "sequence_order": target.dataset.order,
            "whole_catalogue_cutoffs": whole_catalogue_cutoffs(len(target.dataset.item_ids)),
            "trained_on": ([d.name for d in harness.zero_shot_train] if target.setting == "zero-shot"
                           else [target.dataset.name]),
            "methods": methods,
        }
    return {
        "protocol": {
            **asdict(harness.protocol),
            "split": "leave-one-out per user: last item test, second-to-last validation, the rest training; users "
                     "with fewer than 3 interactions left out",
            "ranking": "full ranking over every item of the dataset's catalogue (nothing sampled, nothing excluded)",
            "sequence_order": "each user's interactions ordered by the timestamp column where every row has a "
                              "number (a stable sort: equal timestamps keep file order), in file order where the "
                              "dataset has no timestamps; a partly missing or non-numeric column is refused "
                              "(data.py). Each dataset's `sequence_order` says which applied",
            "metrics": list(METRICS),
            "aggregate": "mean and sample standard deviation over seeds; the standard deviation is null for a "
                         "single seed",
            "model_selection": "the epoch with the best validation Recall@20; early stop after `patience` epochs "
                               "without improvement; `max_epochs` is a cap: a run it ended before early stopping "
                               "(fewer than `patience` epochs after the best one) has not converged and counts in "
                               "`capped_seeds`",
            "zero_shot_training": "one sequence model (and adapter) per method and seed, trained on the zero-shot "
                                  f"mix and shared by every zero-shot target; the training softmax is {MIX_SOFTMAX}",
        },
        "sources": {name: source_text(harness, name)
                    for name in sorted({m.source for m in harness.methods if m.source})},
        "command": command,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "datasets": datasets,
    }


def source_text(harness: Harness, name: str) -> str:
    """A source as the report describes it. A trained encoder is the run on the machine that wrote the report, but
    its rows' seeds may have embedded with other runs of the same recipe (encoders trained again by the same
    command): the text says so, and each row lists its runs (`encoder_runs`)."""
    if missing := harness.unnamed_source(name):
        return missing
    if harness.missing_source(name):
        record = harness.kept_record(name)
        return (f"{harness.source_specs[name]}: not on the machine that wrote this report; its rows are the cells of "
                f"the recipe of run {record['run_id']} ({harness.recipe(name)}: preset {record['preset']}, stages "
                f"{' -> '.join(record['stages'])}, finished {record['finished_at']}), whose record is kept beside "
                f"the cells (encoder-runs/); each row names its runs (`encoder_runs`)")
    source = harness.source(name)
    if source.trained_by is None:
        return source.description
    return (f"{source.description}. The encoder on the machine that wrote this report; a row's seeds may have "
            f"embedded with other runs of the same recipe ({source.recipe}: the command trained again elsewhere): "
            f"each row names its runs (`encoder_runs`, their records in the cells' encoder-runs/)")


def seeds_text(count: int) -> str:
    return f"{count} seed{'s' if count > 1 else ''}"


def row_provenance(method: str, values: dict) -> str:
    """How a row of the tables was computed, as one list item: seeds, best epochs, tuned settings, precision, the
    encoder runs, the machines and the mean training time of a seed (seeds of one row may come from different
    machines and from encoders trained again by the same command)."""
    parts = [seeds_text(values["seeds"])]
    if "best_epochs" in values:
        parts.append(f"best epochs {', '.join(map(str, values['best_epochs']))}")
    if values.get("tuned"):
        parts.append("tuned: " + ", ".join(f"{k} {v}" for k, v in values["tuned"].items()))
    if values.get("precision"):
        parts.append(" and ".join(values["precision"]))
    if values.get("encoder_runs"):
        runs = values["encoder_runs"]
        parts.append(f"encoder run{'s' if len(runs) > 1 else ''} {', '.join(runs)}")
    parts.append(f"{values['train_seconds']:.0f} s a seed on {'; '.join(values['computed_on'])}")
    return f"- {method}: " + "; ".join(parts)


def markdown_tables(report: dict) -> str:
    """The command and date, then one table per dataset key: mean ± std of every metric per method (the mean alone
    from a single seed), the best mean of each column in bold, a † on methods whose training the epoch cap ended in
    some seed (footnote), and how each row was computed."""
    lines = [f"Test split. `{report['command']}` ({report['created_at']}); each row's seeds, machines and precision "
             "are listed under its table.", ""]
    for key, entry in report["datasets"].items():
        lines += [f"### {key} ({entry['setting']}; {entry['test_users']} test users, {entry['items']} items)", "",
                  "| method | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        applicable = {m: v for m, v in entry["methods"].items() if "recall@10" in v}
        best = {metric: max((v[metric]["mean"] for v in applicable.values()), default=None) for metric in METRICS}
        for method, values in entry["methods"].items():
            if "recall@10" not in values:
                text = "n/a" if "not_applicable" in values else "not run"
                lines.append(f"| {method} | " + " | ".join(text for _ in METRICS) + " |")
                continue
            cells = []
            for metric in METRICS:
                text = f"{values[metric]['mean']:.4f}"
                if values[metric]["std"] is not None:
                    text += f" ± {values[metric]['std']:.4f}"
                if values["seeds"] < len(report["protocol"]["seeds"]):
                    text += f" ({seeds_text(values['seeds'])})"
                cells.append(f"**{text}**" if values[metric]["mean"] == best[metric] else text)
            name = f"{method} †" if values.get("capped_seeds") else method
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        capped_methods = [f"{m} ({v['capped_seeds']} of {seeds_text(v['seeds'])}, "
                          f"{' and '.join(map(str, v['capped_at']))} epochs)"
                          for m, v in applicable.items() if v.get("capped_seeds")]
        if entry.get("whole_catalogue_cutoffs"):
            lines += ["", f"Recall@k is 1 by construction at k = {', '.join(map(str, entry['whole_catalogue_cutoffs']))}"
                          f" (the cutoff takes in all {entry['items']} items)"]
        if capped_methods:
            lines += ["", "† the epoch cap ended training before early stopping (not converged; raise --max-epochs "
                          "and run again: a capped cell continues from its last epoch): "
                          f"{', '.join(capped_methods)}"]
        unopened = [f"- {m}: not run, {v['not_run']}" for m, v in entry["methods"].items() if v.get("source_not_here")]
        if applicable or unopened:
            lines += ["", *(row_provenance(m, v) for m, v in applicable.items()), *unopened]
        lines.append("")
    return "\n".join(lines)


def plot(report: dict, path: Path, metrics: tuple[str, ...] = ("recall@10", "ndcg@10")) -> None:
    """Grouped bars: one panel per dataset key, one bar per method and metric, error bars = std over seeds (none for
    a method with a single seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(report["datasets"])
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        methods = {m: v for m, v in report["datasets"][key]["methods"].items() if "recall@10" in v}
        ax.set_title(f"{key} ({report['datasets'][key]['setting']})", fontsize=10)
        if not methods:  # a dataset none of whose cells is computed yet
            ax.text(0.5, 0.5, "no cell computed yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        x = np.arange(len(methods))
        width = 0.8 / len(metrics)
        for i, metric in enumerate(metrics):
            ax.bar(x + i * width, [v[metric]["mean"] for v in methods.values()], width,
                   yerr=[np.nan if v[metric]["std"] is None else v[metric]["std"] for v in methods.values()],
                   capsize=2, label=metric)
        ax.set_xticks(x + width * (len(metrics) - 1) / 2, list(methods), rotation=40, ha="right", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(harness: Harness, results: list[dict], command: str, report_file: Path) -> dict:
    report = aggregate(harness, results, command)
    report_file.parent.mkdir(parents=True, exist_ok=True)
    report_file.write_text(json.dumps(report, indent=2) + "\n")
    report_file.with_suffix(".md").write_text(markdown_tables(report))
    plot(report, report_file.with_suffix(".png"))
    print(f"report: {report_file} (+ {report_file.with_suffix('.md').name}, {report_file.with_suffix('.png').name})")
    return report
