"""Process-wide verification counters, for the server's stats command and the README."""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counters: Counter[str] = Counter()
_total_ms = [0.0]


def record(status: str, checks: tuple[str, ...], not_checked: tuple[str, ...], severities: list[str], elapsed_ms: float) -> None:
    """Count one verdict."""
    with _lock:
        _counters["verified"] += 1
        _counters[f"status.{status}"] += 1
        for check in checks:
            _counters[f"checked.{check}"] += 1
        for check in not_checked:
            _counters[f"not_checked.{check}"] += 1
        for severity in severities:
            _counters[f"findings.{severity}"] += 1
        _total_ms[0] += elapsed_ms


def stats() -> dict[str, float]:
    """A snapshot of the counters: verdicts by status, checks run and skipped, findings by severity."""
    with _lock:
        snapshot: dict[str, float] = dict(_counters)
        verified = _counters["verified"]
        snapshot["mean_ms"] = round(_total_ms[0] / verified, 3) if verified else 0.0
    return snapshot


def reset() -> None:
    """Zero the counters (tests, benchmarks)."""
    with _lock:
        _counters.clear()
        _total_ms[0] = 0.0
