#!/usr/bin/env python3
"""Accuracy against cumulative training time from a run's metrics.jsonl, as an SVG (no plotting library).

usage: scripts/plot_metrics.py RUN/metrics.jsonl OUT.svg [TITLE]
Plots clean accuracy and certified accuracy at every radius of the log against the sum of the epochs'
train_seconds (evaluation time excluded), in minutes.
"""
import json
import sys


def fail(message):
    print(f"plot_metrics: {message}", file=sys.stderr)
    sys.exit(2)


def load(path):
    rows = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    fail(f"{path}:{n}: not a JSON line ({e})")
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror})")
    if not rows:
        fail(f"{path}: no epochs logged")
    radii = [c.get("radius") for c in rows[0].get("certified", [])]
    for n, r in enumerate(rows, 1):
        if not isinstance(r.get("train_seconds"), (int, float)) or not isinstance(r.get("test_accuracy"), (int, float)):
            fail(f"{path}:{n}: needs the numbers train_seconds and test_accuracy (a lipkit train metrics.jsonl)")
        if [c.get("radius") for c in r.get("certified", [])] != radii:
            fail(f"{path}:{n}: certified radii {[c.get('radius') for c in r.get('certified', [])]} differ from line 1's {radii}")
    if sum(r["train_seconds"] for r in rows) <= 0:
        fail(f"{path}: train_seconds sum to 0: no training time to plot against")
    return rows


def series(rows):
    t, minutes = 0.0, []
    for r in rows:
        t += r["train_seconds"]
        minutes.append(t / 60)
    lines = {"clean": [r["test_accuracy"] for r in rows]}
    for i, c in enumerate(rows[0].get("certified", [])):
        lines[f"certified at {c['radius']:g}"] = [r["certified"][i]["accuracy"] for r in rows]
    return minutes, lines


def svg(minutes, lines, title):
    w, h, left, bottom, top, right = 640, 400, 60, 50, 40, 180
    x_max = max(minutes)
    sx = lambda m: left + (w - left - right) * m / x_max
    sy = lambda a: top + (h - top - bottom) * (1 - a)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="20" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{sy(0)}" x2="{sx(x_max)}" y2="{sy(0)}" stroke="black"/>',
           f'<line x1="{left}" y1="{sy(0)}" x2="{left}" y2="{sy(1)}" stroke="black"/>']
    for a in range(0, 11, 2):
        y = sy(a / 10)
        out.append(f'<line x1="{left}" y1="{y}" x2="{sx(x_max)}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{a * 10}%</text>')
    step = 10 if x_max > 30 else 5
    for m in range(0, int(x_max) + 1, step):
        out.append(f'<text x="{sx(m)}" y="{sy(0) + 18}" text-anchor="middle">{m}</text>')
    out.append(f'<text x="{(left + sx(x_max)) / 2}" y="{h - 10}" text-anchor="middle">training minutes (evaluation excluded)</text>')
    colours = ["#333", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for k, (name, acc) in enumerate(lines.items()):
        c = colours[k % len(colours)]
        pts = " ".join(f"{sx(m):.1f},{sy(a):.1f}" for m, a in zip(minutes, acc))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{sx(x_max) + 10}" y="{top + 20 * k + 10}" fill="{c}">{name}: {100 * acc[-1]:.2f}%</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    minutes, lines = series(load(sys.argv[1]))
    text = svg(minutes, lines, sys.argv[3] if len(sys.argv) == 4 else sys.argv[1])  # before the output is opened
    try:
        with open(sys.argv[2], "w") as f:
            f.write(text)
    except OSError as e:
        fail(f"{sys.argv[2]}: cannot write ({e.strerror})")


if __name__ == "__main__":
    main()
