"""Recipe search for the `cpu` preset: train one variant (a trial), score every stage it finished with the proxy
(proxy.py), and record it as a row of reports/training-trials.json, drawn in reports/training-trials.png.

    python -m training.llm2rec.trials --name simcse-only --set stages='["simcse"]' --set simcse.steps=300 \
        --datasets ../shared/data/amazon-games ../shared/data/movielens-small \
        --proxy-dataset ../shared/data/amazon-games --proxy-dataset ../shared/data/amazon-scientific

A trial trains into runs/trials/<name> with `train` (resumable: the same command continues it), then scores the
model after each of its stages. `--baseline NAME=SPEC` rows (e.g. raw=backbone:quick, minilm=minilm) are scored
once and drawn as reference lines. `--plot-only` redraws the plot from the record.
"""

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from .proxy import open_proxy_source, score
from .data import load_dataset
from .train_config import resolve
from .train_encoder import machine, train

RECORD = Path("reports/training-trials.json")


def load_record(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"about": "LLM2Rec recipe trials for the cpu preset: settings, training minutes, and the proxy "
                     "(training/llm2rec/proxy.py) after each stage; baselines are untrained encoders",
            "trials": {}, "baselines": {}}


def save_record(record: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown(record))
    plot(record, path.with_suffix(".png"))


def markdown(record: dict) -> str:
    """The record as one table: a row per baseline and per (trial, stage); NDCG@10 of the proxies."""
    datasets = sorted({d for b in record["baselines"].values() for d in b["proxy"]}
                      | {d for t in record["trials"].values() for s in t["proxy"].values() for d in s})
    columns = []
    for d in datasets:
        columns += [f"{d} cosine", f"{d} adapter"] + ([f"{d} zero-shot adapter"] if d != datasets[0] else []) \
            + [f"{d} eff. rank"]

    def cells(scores: dict) -> list[str]:
        out = []
        for d in datasets:
            m = scores.get(d)
            if m is None:
                out += ["-"] * (4 if d != datasets[0] else 3)
                continue
            out += [f"{m['ndcg@10']:.4f}", f"{m['adapter']['ndcg@10']:.4f}"]
            if d != datasets[0]:
                out.append(f"{m['zero-shot']['ndcg@10']:.4f}" if "zero-shot" in m else "-")
            out.append(f"{m['effective_rank']:.0f}")
        return out

    lines = ["| encoder | training min | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for name, baseline in record["baselines"].items():
        lines.append(f"| {name} (untrained) | 0 | " + " | ".join(cells(baseline["proxy"])) + " |")
    for name, trial in record["trials"].items():
        elapsed = 0.0
        for stage, scores in trial["proxy"].items():
            elapsed += trial["stages"][stage]["seconds"] / 60
            lines.append(f"| {name} after {stage} ({trial['stages'][stage]['steps']} steps) | {elapsed:.1f} | "
                         + " | ".join(cells(scores)) + " |")
    notes = [f"- **{name}**: {trial['note']} (`{' '.join(trial['settings'])}`)" for name, trial in record["trials"].items()]
    return ("# LLM2Rec recipe trials (proxy NDCG@10 on validation pairs)\n\nWritten by `python -m training.llm2rec.trials` "
            "from `reports/training-trials.json`; each row's command, machine and date are in the JSON.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n")


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({d for t in record["trials"].values() for s in t.get("proxy", {}).values() for d in s}
                      | {d for b in record["baselines"].values() for d in b["proxy"]})
    if not datasets:
        return
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), dpi=100, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        names, values, colors = [], [], []
        for name, trial in record["trials"].items():
            for stage, scores in trial.get("proxy", {}).items():
                if dataset in scores:
                    names.append(f"{name}@{stage}")
                    values.append(scores[dataset]["ndcg@10"])
                    colors.append({"csft": "tab:orange", "mntp": "tab:green", "simcse": "tab:blue"}.get(stage, "gray"))
        ax.barh(range(len(names)), values, color=colors)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for (name, baseline), style in zip(record["baselines"].items(), ("--", ":", "-.", "-")):
            if dataset in baseline["proxy"]:
                ax.axvline(baseline["proxy"][dataset]["ndcg@10"], color="black", linestyle=style, label=name)
        ax.invert_yaxis()
        ax.set_xlabel("proxy NDCG@10 (cosine next-item retrieval, validation)")
        ax.set_title(dataset)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="the trial (its run directory is runs/trials/<name>)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="a.b=v")
    parser.add_argument("--datasets", nargs="+", default=[])
    parser.add_argument("--proxy-dataset", action="append", default=[])
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=SPEC")
    parser.add_argument("--note", default="", help="why this trial, for the record")
    parser.add_argument("--record", type=Path, default=RECORD)
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args(argv)
    record = load_record(args.record)
    if args.plot_only:
        plot(record, args.record.with_suffix(".png"))
        return
    proxy_datasets = [load_dataset(path) for path in args.proxy_dataset]
    command = "python -m training.llm2rec.trials " + " ".join(argv or sys.argv[1:])
    for item in args.baseline:
        name, _, spec = item.partition("=")
        proxy = score(open_proxy_source(spec), proxy_datasets)
        record = load_record(args.record)
        record["baselines"][name] = {"spec": spec, "proxy": proxy, "command": command}
        save_record(record, args.record)
    if not args.name:
        return
    config = resolve(args.preset, sets=args.set)
    run_dir = Path("runs/trials") / args.name
    result = train(config, args.datasets, run_dir)
    if result is None:
        raise SystemExit("stopped before the last stage: run the same command again to continue")
    proxy = {stage: score(open_proxy_source(f"run:{run_dir}@{stage}"), proxy_datasets) for stage in config.stages}
    record = load_record(args.record)  # again: another trial may have finished meanwhile
    record["trials"][args.name] = {
        "note": args.note,
        "settings": args.set,
        "stages": {stage: {k: result[stage][k] for k in ("steps", "seconds", "seconds_per_step", "first_loss",
                                                           "final_loss", "precision")}
                   for stage in config.stages},
        "training_minutes": round(result["total_seconds"] / 60, 1),
        "proxy": proxy,
        "run_id": result["run_id"],
        "machine": machine(),
        "load_average": os.getloadavg(),
        "command": command,
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    save_record(record, args.record)
    for stage, scores in proxy.items():
        print(f"{args.name}@{stage}: " + ", ".join(f"{d} N@10 {m['ndcg@10']:.4f} rank {m['effective_rank']:.0f}"
                                                   for d, m in scores.items()), flush=True)


if __name__ == "__main__":
    main()
