"""Acceptance statistics from the feedback store: tables by language, mode and confidence, and a page."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from codeassist_lsp.feedback.gating import GatingModel
from codeassist_lsp.feedback.outcomes import SuggestionFeatures
from codeassist_lsp.feedback.store import FEATURE_FIELDS

# Mean token log-probability bands (0 = certain); suggestions without one (cache hits) are "n/a".
CONFIDENCE_BANDS = ((-0.25, "high (> -0.25)"), (-0.75, "medium (-0.75..-0.25)"), (float("-inf"), "low (< -0.75)"))
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def taken(row: dict[str, Any]) -> bool:
    """Whether the user took the whole suggestion (accepted it or typed it through)."""
    return row["outcome"] in ("accepted", "typed")


def confidence_band(row: dict[str, Any]) -> str:
    """The row's confidence band by its mean token log-probability."""
    mean = row.get("mean_logprob")
    if mean is None:
        return "n/a"
    return next(name for floor, name in CONFIDENCE_BANDS if mean > floor)


def _tally(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    accepted = sum(1 for r in rows if taken(r))
    return {"shown": len(rows), "accepted": accepted, "partial": sum(1 for r in rows if r["outcome"] == "partial"),
            "rejected": sum(1 for r in rows if r["outcome"] == "rejected"),
            "rate": round(accepted / len(rows), 3) if rows else 0.0,
            "acceptedChars": sum(r["accepted_chars"] for r in rows if taken(r))}


def acceptance_by(rows: Sequence[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    """Tallies per value of `key(row)`, largest group first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(key(row) or "?"), []).append(row)
    return {name: _tally(group) for name, group in sorted(groups.items(), key=lambda kv: -len(kv[1]))}


def threshold_tradeoff(rows: Sequence[dict[str, Any]], model: GatingModel | None) -> list[dict[str, Any]]:
    """What each threshold would have shown of these outcomes: kept share, acceptance rate, accepted chars kept."""
    if model is None:
        return []
    scored = [(model.probability(SuggestionFeatures(**{n: row[n] for n in FEATURE_FIELDS}), row["shown_chars"]), row)
              for row in rows if row.get("mean_logprob") is not None]
    base = _tally(row for _, row in scored)
    curve = []
    for threshold in THRESHOLDS:
        kept = _tally(row for chance, row in scored if chance >= threshold)
        curve.append({"threshold": threshold, "shown": kept["shown"], "rate": kept["rate"],
                      "acceptedCharsKept": round(kept["acceptedChars"] / base["acceptedChars"], 3)
                      if base["acceptedChars"] else 0.0})
    return curve


def acceptance_over_time(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Acceptance rate per day."""
    days = acceptance_by(rows, lambda r: time.strftime("%Y-%m-%d", time.localtime(r["shown_at"])))
    return [{"day": day, **tally} for day, tally in sorted(days.items())]


def report(rows: Sequence[dict[str, Any]], model: GatingModel | None, unseen: int = 0) -> dict[str, Any]:
    """Everything `codeassist stats` shows (`unseen`: suggestions the editor reported it never showed)."""
    return {"total": _tally(rows), "unseen": unseen, "byLanguage": acceptance_by(rows, lambda r: r["language"]),
            "byMode": acceptance_by(rows, lambda r: r["mode"]), "byConfidence": acceptance_by(rows, confidence_band),
            "byReason": {r: n["shown"] for r, n in acceptance_by(rows, lambda r: f"{r['outcome']}:{r['reason']}").items()},
            "overTime": acceptance_over_time(rows), "thresholds": threshold_tradeoff(rows, model)}


def render_text(stats: dict[str, Any]) -> str:
    """The report as plain-text tables."""
    lines = []
    total = stats["total"]
    lines.append(f"{total['shown']} suggestions decided: {total['accepted']} taken whole ({total['rate']:.0%}), "
                 f"{total['partial']} in part, {total['rejected']} rejected; {total['acceptedChars']} characters taken"
                 + (f" ({stats['unseen']} more the editor never showed: not counted)" if stats.get("unseen") else ""))
    for title, key in (("language", "byLanguage"), ("mode", "byMode"), ("confidence", "byConfidence")):
        lines.append(f"\n{'by ' + title + ':':28} shown  taken   rate  partial  chars")
        for name, tally in stats[key].items():
            lines.append(f"  {name:26} {tally['shown']:5d}  {tally['accepted']:5d}  {tally['rate']:5.0%}  "
                         f"{tally['partial']:7d}  {tally['acceptedChars']:5d}")
    if stats["thresholds"]:
        lines.append("\nacceptanceThreshold trade-off (on these outcomes): threshold  shown   rate  chars kept")
        for point in stats["thresholds"]:
            lines.append(f"  {point['threshold']:.1f}  {point['shown']:5d}  {point['rate']:5.0%}  "
                         f"{point['acceptedCharsKept']:5.0%}")
    return "\n".join(lines)


def _svg_chart(title: str, points: Sequence[tuple[str, Sequence[tuple[float, float]]]], x_label: str,
               y_label: str, x_ticks: Sequence[tuple[float, str]]) -> str:
    """A small line chart (each series: (x, y) in 0..1) as inline SVG; no plotting library needed."""
    width, height, pad, legend = 680, 260, 40, 170  # the legend sits right of the plot, clear of the lines
    colours = ("#1f77b4", "#d62728", "#2ca02c")

    def at(x: float, y: float) -> str:
        return f"{pad + x * (width - 2 * pad - legend):.1f},{height - pad - y * (height - 2 * pad):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><text x="{pad}" y="16" font-size="13">{html.escape(title)}</text>',
             f'<polyline points="{at(0, 1)} {at(0, 0)} {at(1, 0)}" fill="none" stroke="#888"/>']
    for value in (0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="4" y="{at(0, value).split(",")[1]}">{value:.0%}</text>')
    for x, label in x_ticks:
        x_pos, y_pos = at(x, 0).split(",")
        parts.append(f'<text x="{x_pos}" y="{float(y_pos) + 14}" text-anchor="middle">{html.escape(label)}</text>')
    for index, (name, series) in enumerate(points):
        colour = colours[index % len(colours)]
        if series:
            parts.append(f'<polyline points="{" ".join(at(x, y) for x, y in series)}" fill="none" '
                         f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{width - legend}" y="{pad + 14 * index}" fill="{colour}">{html.escape(name)}</text>')
    parts.append(f'<text x="{(width - legend) / 2}" y="{height - 6}" text-anchor="middle">{html.escape(x_label)}</text>'
                 f'<text x="{width - legend}" y="{height - pad}">y: {html.escape(y_label)}</text></svg>')
    return "".join(parts)


def tradeoff_svg(curve: Sequence[dict[str, Any]], title: str = "acceptanceThreshold trade-off") -> str:
    """The threshold trade-off (rate, accepted characters kept, suggestions shown) as an SVG chart."""
    top = max((p["threshold"] for p in curve), default=1.0) or 1.0
    return _svg_chart(title,
                      [("acceptance rate", [(p["threshold"] / top, p["rate"]) for p in curve]),
                       ("accepted characters kept", [(p["threshold"] / top, p["acceptedCharsKept"]) for p in curve]),
                       ("suggestions shown", [(p["threshold"] / top, p["shown"] / max(curve[0]["shown"], 1))
                                              for p in curve])],
                      "threshold", "share", [(p["threshold"] / top, f"{p['threshold']:.1f}") for p in curve])


def write_html(stats: dict[str, Any], path: Path) -> Path:
    """A page with the acceptance curve over time and the threshold trade-off (inline SVG)."""
    days = stats["overTime"]
    span = max(len(days) - 1, 1)
    over_time = _svg_chart("Acceptance rate of shown suggestions, per day",
                           [("taken whole", [(i / span, d["rate"]) for i, d in enumerate(days)])], "day", "rate",
                           [(i / span, d["day"][5:]) for i, d in enumerate(days)][:: max(1, len(days) // 6)])
    tradeoff = tradeoff_svg(stats["thresholds"])
    page = (f"<!doctype html><meta charset=utf-8><title>codeassist acceptance</title>"
            f"<body style='font-family:sans-serif'><h1>codeassist: what you accept</h1>"
            f"<pre>{html.escape(render_text(stats))}</pre>{over_time}<br>{tradeoff}</body>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
