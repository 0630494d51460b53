#!/usr/bin/env python3
"""Turns bench/results/latest.json into a PNG bar chart.

One panel per scenario metric, one bar per server, normalized so that axum's
median is 1.0 (raw hyper only appears where it runs: burst, live, fanout, paced; axum_tuned,
axum's WebSocket with batched writes and 4 KiB read buffers, in the ws_* and cable_fanout scenarios); each bar
is annotated with its absolute median. Usage: chart.py [JSON] [PNG]
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"rill": "#d62728", "axum": "#1f77b4", "axum_tuned": "#17becf", "hyper": "#7f7f7f"}
# Counts that are 0 for a healthy server make poor ratios: show them raw.
RAW = {"failures", "over_1s", "listen_overflows", "listen_drops", "softnet_drops"}


def human(x):
    if x is None:
        return "-"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json"
    dst = sys.argv[2] if len(sys.argv) > 2 else "bench/results/latest.png"
    with open(src) as f:
        report = json.load(f)
    panels = []
    for sc in report["scenarios"]:
        for m in sc["metrics"]:
            panels.append((sc, m))
    if not panels:
        sys.exit("no scenarios in " + src)
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (sc, m) in zip(axes.flat, panels):
        servers = [s for s in ("rill", "axum", "axum_tuned", "hyper") if s in m["servers"]]
        medians = [m["servers"][s]["median"] for s in servers]
        axum = m["servers"].get("axum", {}).get("median")
        raw = m["name"] in RAW or not axum
        heights = [
            0.0 if v is None else (v if raw else v / axum) for v in medians
        ]
        bars = ax.bar(servers, heights, color=[COLORS[s] for s in servers])
        for bar, v in zip(bars, medians):
            ax.annotate(human(v), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        better = "higher" if m["higher_is_better"] else "lower"
        ax.set_title(f"{sc['id']}: {m['name']}\n({m['unit']}, {better} is better)", fontsize=9)
        ax.set_ylabel(m["unit"] if raw else "× axum", fontsize=8)
        if not raw:
            ax.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
        ax.margins(y=0.2)
        failed = sorted({e["server"] for e in sc.get("errors", [])})
        if failed:
            ax.text(0.5, 0.92, "errors: " + ", ".join(failed), transform=ax.transAxes,
                    ha="center", fontsize=7, color="darkred")
    meta = report.get("meta", {})
    fig.suptitle(f"rill vs axum (and tuned) vs raw hyper — medians of {meta.get('rounds', '?')} round(s)"
                 f"{' (quick)' if meta.get('quick') else ''}; bars normalized to axum = 1.0")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(dst, dpi=80)
    print("wrote " + dst)


if __name__ == "__main__":
    main()
