"""Plot of `npm run bench:replicas` (reports/replicas.json -> reports/replicas.png).

Top: closed-loop throughput (bars) and p50/p99 latency (lines) through 1, 2, 3 replicas. Below, one panel per
switch-and-kill run: latency per second (p50, p99, max; by when requests were due), failed requests per second, and
the switch, the SIGKILL, the load balancer taking the replica out, its /readyz 200 and its return to rotation.

    .venv/bin/python bench/plot-replicas.py reports/replicas.json reports/replicas.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(report_file: str, png: str) -> None:
    with open(report_file, encoding="utf-8") as f:
        report = json.load(f)
    closed = report["closed"]
    events = report["events"]
    rows = 1 + len(events)
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3.6 * rows), squeeze=False)
    machine = report["machine"]
    fig.suptitle(
        f"npm run bench:replicas: {report['catalogue']['items']} items, {machine['nproc']} cores ({machine['cpu_model']}), "
        f"{report['date'][:16].replace('T', ' ')} UTC, commit {report['git']['commit']}",
        fontsize=10,
    )

    ax = axes[0][0]
    if closed:
        n = [run["replicas"] for run in closed]
        bars = ax.bar(n, [run["rps"] for run in closed], width=0.5, color="#8fb3d9", label="requests/s")
        for bar, run in zip(bars, closed):
            ax.annotate(f"{run['rps']:.0f}/s", (bar.get_x() + bar.get_width() / 2, bar.get_height() / 2), ha="center", va="center", fontsize=9)
        ax.set_xticks(n)
        ax.set_xlabel("replicas")
        ax.set_ylabel("answered requests/s")
        ax.set_title(f"closed loop, {closed[0]['concurrency']} clients, {closed[0]['seconds']:.0f} s per run; failed: {sum(r['failed'] for r in closed)}", fontsize=9)
        twin = ax.twinx()
        twin.plot(n, [run["p50_ms"] for run in closed], "o-", color="#2a7f2a", label="p50 ms")
        twin.plot(n, [run["p99_ms"] for run in closed], "s-", color="#c0392b", label="p99 ms")
        twin.set_ylabel("latency ms")
        twin.set_ylim(bottom=0)
        handles = [bars] + twin.get_lines()
        ax.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize=8)

    for row, run in enumerate(events, start=1):
        ax = axes[row][0]
        t = [point["s"] + 0.5 for point in run["timeline"]]
        ax.plot(t, [point["p50_ms"] for point in run["timeline"]], color="#2a7f2a", lw=1, label="p50")
        ax.plot(t, [point["p99_ms"] for point in run["timeline"]], color="#c0392b", lw=1, label="p99")
        ax.plot(t, [point["max_ms"] for point in run["timeline"]], color="#999999", lw=0.8, ls=":", label="max")
        ax.set_yscale("log")
        ax.set_ylabel("latency ms (per second)")
        ax.set_xlabel("seconds (by when requests were due)")
        marks = run.get("marks_s", {})
        if "switch" in marks and "switched" in marks:
            ax.axvspan(marks["switch"], marks["switched"], color="#f5d76e", alpha=0.35, label=f"switch ({run['switch']['seconds']} s)")
        if "kill" in marks:
            ax.axvline(marks["kill"], color="black", lw=1.2, label="SIGKILL")
            back = marks.get("back", marks.get("end"))
            ax.axvspan(marks["kill"], back, color="#d0d0d0", alpha=0.45, label=f"kill to back in rotation ({run['kill']['back_in_rotation_s']} s)")
        if "out" in marks:
            ax.axvline(marks["out"], color="#555555", lw=0.8, ls="--", label="out of rotation")
        if "ready" in marks:
            ax.axvline(marks["ready"], color="#1f5fa8", lw=0.8, ls="--", label="/readyz 200")
        failed = [(point["s"] + 0.5, point["failed"]) for point in run["timeline"] if point["failed"] > 0]
        if failed:
            twin = ax.twinx()
            twin.bar([x for x, _ in failed], [y for _, y in failed], width=0.8, color="#e74c3c", alpha=0.6, label="failed")
            twin.set_ylabel("failed requests")
            twin.set_ylim(0, max(y for _, y in failed) * 4)
        ax.set_title(
            f"{run['replicas']} replicas, {run['rate']} requests/s open loop: {run['requests']} requests, {run['failed']} failed "
            f"({run['failed_unexpected']} other than on the killed replica); old version after the switch: {run['switch']['old_version_after']}",
            fontsize=9,
        )
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, ncol=7, frameon=False)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
