"""Plot of `npm run bench:hot-swap` (reports/hot-swap.json -> reports/hot-swap.png).

Per rate of the sweep, the p99 and the max latency (from when requests were due) of each phase: before the
switches, during the same-encoder switches, between them, during the new-encoder switch, after; the target line is
3x the p99 before, and 200 ms for the max during a switch. Log scale: a rate the server did not keep up with queues for seconds.

    .venv/bin/python bench/plot-hot-swap.py reports/hot-swap.json reports/hot-swap.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PHASES = [("before", "before"), ("during_same_encoder", "same-encoder switches"), ("between", "between"),
          ("during_new_encoder", "new-encoder switch"), ("after", "after")]
COLOURS = ["#9e9e9e", "#1f77b4", "#c7c7c7", "#ff7f0e", "#6e6e6e"]


def main(report_file: str, png: str) -> None:
    with open(report_file, encoding="utf-8") as f:
        report = json.load(f)
    runs = report["runs"]
    machine = report["machine"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    fig.suptitle(
        f"npm run bench:hot-swap: {report['catalogue']['items']} items, {machine['nproc']} cores ({machine['cpu_model']}), "
        f"{report['date'][:16].replace('T', ' ')} UTC, commit {report['git']['commit']}; "
        f"{report['failed']} of {report['requests']} requests failed",
        fontsize=10,
    )
    width = 0.8 / len(PHASES)
    for ax, statistic, title in ((axes[0], "p99_ms", "p99 latency per phase"), (axes[1], "max_ms", "max latency per phase")):
        for k, ((phase, label), colour) in enumerate(zip(PHASES, COLOURS)):
            xs = [i + (k - (len(PHASES) - 1) / 2) * width for i in range(len(runs))]
            values = [run["phases"].get(phase, {}).get(statistic, float("nan")) for run in runs]
            ax.bar(xs, values, width=width, color=colour, label=label)
        if statistic == "p99_ms":
            for i, run in enumerate(runs):
                ax.hlines(3 * run["phases"]["before"]["p99_ms"], i - 0.4, i + 0.4, colors="red", linestyles="dashed",
                          label="3x p99 before (target)" if i == 0 else None)
        else:
            ax.axhline(200, color="red", linestyle="dashed", label="200 ms (target during a switch)")
            ax.legend(fontsize=8, loc="upper left")
        ax.set_yscale("log")
        ax.set_xticks(range(len(runs)), [f"{run['rate']} req/s" for run in runs])
        ax.set_ylabel("ms (from when due)")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
