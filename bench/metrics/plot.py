#!/usr/bin/env python3
"""Plot two Edgeway metrics over a bench run, as a real Prometheus server
scraped them, queried through its HTTP API (/api/v1/query_range) with the
same PromQL the Grafana dashboard (deploy/grafana/edgeway.json) uses.
Writes an SVG (no plotting library needed).

usage: plot.py PROMETHEUS_URL START END OUT.svg
"""
import json
import sys
import urllib.parse
import urllib.request

# The dashboard's queries, with its $__rate_interval fixed for a 1 s scrape
# and its instance variables dropped (one core, one edge).
QUERIES = [
    ("REGISTER/s by code (core, MRA port)",
     'sum by (code) (rate(edgeway_core_register_responses_total{port="mra"}[5s]))', "{code}"),
    ("Registrations (core bindings)",
     "sum(edgeway_core_bindings)", "bindings"),
]


def query_range(base, expr, start, end, step=1):
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{q}") as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"query {expr!r}: {body}")
    return body["data"]["result"]


def panel(svg, x0, y0, w, h, title, series, t0, t1):
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]
    ymax = max([v for _, pts in series for _, v in pts] + [1.0]) * 1.1
    svg.append(f'<text x="{x0}" y="{y0 - 8}" font-size="14" font-weight="bold">{title}</text>')
    svg.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for i in range(5):
        yv = ymax * i / 4
        y = y0 + h - h * i / 4
        svg.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        svg.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{yv:.0f}</text>')
    span = max(t1 - t0, 1)
    for i in range(0, int(span) + 1, max(int(span) // 6, 1)):
        x = x0 + w * i / span
        svg.append(f'<text x="{x:.1f}" y="{y0 + h + 14}" font-size="11" text-anchor="middle">{i}s</text>')
    for k, (label, pts) in enumerate(series):
        c = colors[k % len(colors)]
        path = " ".join(f"{x0 + w * (t - t0) / span:.1f},{y0 + h - h * v / ymax:.1f}" for t, v in pts)
        svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.8" points="{path}"/>')
        svg.append(f'<text x="{x0 + w + 10}" y="{y0 + 14 + 16 * k}" font-size="12" fill="{c}">{label}</text>')


def main():
    base, start, end, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    W, H, PH = 900, 560, 190
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for i, (title, expr, legend) in enumerate(QUERIES):
        series = []
        for r in query_range(base, expr, start, end):
            label = legend.format(**r["metric"]) if "{" in legend else legend
            pts = [(float(t), float(v)) for t, v in r["values"] if v not in ("NaN", "+Inf", "-Inf")]
            if pts and max(v for _, v in pts) > 0:
                series.append((label, pts))
        series.sort(key=lambda s: s[0])
        panel(svg, 70, 50 + i * (PH + 80), 680, PH, title, series, start, end)
        svg.append(f'<text x="70" y="{50 + i * (PH + 80) + PH + 32}" font-size="10" fill="#555">{expr.replace("<", "&lt;")}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
