"""Offline acceptance evaluation: replay real files, count the suggestions the file's own next text takes.

A simulated user writes a region of each file from the top: at every word boundary the real
pipeline (CompletionService: gate, context, Gemma, shaping, verification; defaults but no time budget,
so suggestions are the same on a loaded machine) suggests at the cursor with the file up to there as
the document. A suggestion is *accepted* when the text the file really has next starts with it: the
user presses Tab (1 keystroke) and the cursor jumps past it; *partial* when only its first line or
first word matches. Otherwise the user types to the next word boundary (those characters are keystrokes).
While what the user types is the start of the suggestion on screen, the editor keeps showing its
rest, as the service does (typed-ahead: the same suggestion, no model call), so no new one is counted.

The gating model (codeassist_lsp/feedback/gating.py) is fitted on the suggestions of the fit files
and the replay is repeated on the other files under several acceptance thresholds (the model's
answers are memoised per position, so each threshold costs only the positions its path adds):
acceptance rate of shown suggestions, accepted characters per 100 keystrokes, and both relative to
no gating. The fitted prior is written to codeassist_lsp/feedback/prior.json (--write-prior).

Prints a table and writes benchmarks/results/acceptance_bench.json and the trade-off chart beside it (.svg).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp.config import Settings  # noqa: E402
from codeassist_lsp.engine.tiers import make_completion_backend  # noqa: E402
from codeassist_lsp.feedback import gating  # noqa: E402
from codeassist_lsp.feedback.outcomes import SuggestionFeatures  # noqa: E402
from codeassist_lsp.feedback.stats import tradeoff_svg  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
NPM = Path("/usr/lib/node_modules/npm/lib")
GO = Path("/usr/share/doc/git/contrib/persistent-https")
# None of these is replayed or tuned on by another benchmark (typing_replay uses textwrap.py,
# json/encoder.py, npm's display.js and install.js, and client.go).
FIT_FILES = [
    (STDLIB / "shlex.py", "python"), (STDLIB / "fnmatch.py", "python"),
    (NPM / "commands" / "cache.js", "javascript"), (NPM / "commands" / "outdated.js", "javascript"),
    (GO / "proxy.go", "go"),
]
HELD_OUT_FILES = [
    (STDLIB / "glob.py", "python"), (STDLIB / "heapq.py", "python"),
    (NPM / "commands" / "ls.js", "javascript"), (NPM / "commands" / "dedupe.js", "javascript"),
    (GO / "socket.go", "go"), (GO / "main.go", "go"),
]
NO_TIME_BUDGET_MS = 600_000
# Part of the stored answers' key: bumped whenever the pipeline's answers or their features change
# (2: token healing; 3: confidence features over the shown tokens only). (The typed-ahead rule in
# `replay` changes only which positions ask, not the answers.)
PIPELINE_VERSION = 3
THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)
# The default threshold is the highest of THRESHOLDS that keeps this share of the fit files' accepted
# characters in their own replay (a margin over the 85 % the held-out files must keep).
KEEP_ON_FIT = 0.9
FIRST_WORD = re.compile(r"\s*(\w+|[^\w\s]+)")


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def next_boundary(text: str, p: int) -> int:
    """Where the user next pauses: the end of the identifier, run of spaces or punctuation mark at p."""
    q = p + 1
    while q < len(text) and ((_is_word(text[q - 1]) and _is_word(text[q]))
                             or (text[q - 1] in " \t" and text[q] in " \t")):
        q += 1
    return q


def regions(text: str, count: int, chars: int) -> list[tuple[int, int]]:
    """`count` regions of about `chars` characters, starting at line starts spread over the file."""
    spans = []
    for k in range(count):
        start = text.rfind("\n", 0, int(len(text) * (k + 1) / (count + 1))) + 1
        end = text.find("\n", start + chars)
        spans.append((start, len(text) if end < 0 else end + 1))
    return spans


class Replayer:
    """The real pipeline at a cursor, memoised per (file, position), and on disk across runs with `store`
    (the answers are a function of the file, the position, the model and the settings: no time budget)."""

    def __init__(self, settings: Settings, store: Path | None = None) -> None:
        # The completion tier only: the code model would load (and be probed) on the same model thread.
        self.service = CompletionService(settings, backend_factory=lambda: make_completion_backend(settings))
        self.service.wait_until_loaded()
        self.memo: dict[tuple[str, int], tuple[str, SuggestionFeatures] | None] = {}
        self.store = store
        self.store_key = json.dumps([self.service.backend.model_id if self.service.backend else None,
                                     attrs.asdict(settings.completion), PIPELINE_VERSION], sort_keys=True, default=str)
        if store is not None and store.exists():
            for line in store.read_text().splitlines():
                row = json.loads(line)
                if row["key"] == self.store_key:
                    self.memo[(row["path"], row["p"])] = (
                        (row["text"], SuggestionFeatures(**row["features"])) if row["text"] else None)
        self.model_ms: list[float] = []
        self.gate_model: gating.GatingModel | None = None
        self.gate_us: list[float] = []
        """Features and P(accept) as the service computes them, per suggestion the model wrote in this run."""
        self.probability_us: list[float] = []
        """P(accept) alone, per gated decision (answers from the store included)."""
        """What gating adds to a suggestion: its features and P(accept), as the service computes them."""

    def suggest(self, path: Path, language: str, text: str, p: int) -> tuple[str, SuggestionFeatures] | None:
        key = (str(path), p)
        if key not in self.memo:
            document = text[:p]
            started = time.perf_counter()
            prepared = self.service.prepare(document, p, path=str(path), language_id=language)
            job = self.service.submit(prepared)
            result = job.future.result() if job is not None else None
            if job is not None and result is not None and result.finish_reason == "budget":
                job.cancel("the replay shows the early part only")
            suggestion = self.service.finish(prepared, result)
            if job is not None:
                self.model_ms.append((time.perf_counter() - started) * 1000)
                if len(self.model_ms) % 50 == 0:
                    print(f"  {len(self.model_ms)} model calls, last {self.model_ms[-1]:.0f} ms", file=sys.stderr)
            features = self.service._feedback_features(prepared, suggestion)
            if self.gate_model is not None and suggestion.text:
                started = time.perf_counter()
                self.gate_model.probability(self.service._feedback_features(prepared, suggestion, hashed=False),
                                            len(suggestion.text))
                self.gate_us.append((time.perf_counter() - started) * 1e6)
            self.memo[key] = (suggestion.text, features) if suggestion.text else None
            if self.store is not None:
                with self.store.open("a") as out:
                    out.write(json.dumps({"key": self.store_key, "path": str(path), "p": p, "text": suggestion.text,
                                          "features": attrs.asdict(features)}) + "\n")
        return self.memo[key]


def judge(rest: str, suggestion: str) -> str:
    """accepted, partial or rejected, by the file's real next text."""
    if rest.startswith(suggestion):
        return "accepted"
    first_line = suggestion.split("\n", 1)[0]
    if "\n" in suggestion and first_line.strip() and rest.startswith(first_line + "\n"):
        return "partial"
    word = FIRST_WORD.match(suggestion)
    if word and word.group(0).strip() and len(word.group(0)) < len(suggestion) and rest.startswith(word.group(0)):
        return "partial"
    return "rejected"


def replay(replayer: Replayer, files: list[tuple[Path, str]], model: gating.GatingModel | None, threshold: float,
           region_count: int, region_chars: int, rows: list[tuple[SuggestionFeatures, int, bool]] | None = None
           ) -> dict[str, Any]:
    """The simulated user over every region of every file; counts (and, with `rows`, the fit data)."""
    totals = {"shown": 0, "accepted": 0, "partial": 0, "accepted_chars": 0, "keystrokes": 0, "gated": 0}
    per_language: dict[str, dict[str, int]] = {}
    for path, language in files:
        text = path.read_text()
        stats = per_language.setdefault(language, {"shown": 0, "accepted": 0, "accepted_chars": 0, "keystrokes": 0})
        for start, end in regions(text, region_count, region_chars):
            replayer.service.forget(str(path))
            p = start
            on_screen: tuple[int, str] | None = None  # where the suggestion still showing was made, and it
            while p < end:
                if on_screen is not None:
                    typed = text[on_screen[0]:p]
                    if len(typed) < len(on_screen[1]) and on_screen[1].startswith(typed):
                        # Typing through the suggestion on screen: the editor shows its rest (the
                        # service's typed-ahead answer, same suggestion id, no model call), not a new one.
                        q = min(next_boundary(text, p), end)
                        totals["keystrokes"] += q - p
                        stats["keystrokes"] += q - p
                        p = q
                        continue
                    on_screen = None
                answer = replayer.suggest(path, language, text, p)
                if answer is not None:
                    suggestion, features = answer
                    verdict = judge(text[p:], suggestion)
                    if rows is not None:
                        rows.append((features, len(suggestion), verdict == "accepted"))
                    if model is not None and threshold > 0:
                        started = time.perf_counter()
                        chance = model.probability(features, len(suggestion))
                        replayer.probability_us.append((time.perf_counter() - started) * 1e6)
                        if chance < threshold:
                            totals["gated"] += 1
                            answer = None
                if answer is not None:
                    totals["shown"] += 1
                    stats["shown"] += 1
                    on_screen = (p, suggestion)
                    if verdict == "accepted":
                        for bucket in (totals, stats):
                            bucket["accepted"] += 1
                            bucket["accepted_chars"] += len(suggestion)
                            bucket["keystrokes"] += 1  # Tab
                        p += len(suggestion)
                        continue
                    totals["partial"] += verdict == "partial"
                q = min(next_boundary(text, p), end)
                totals["keystrokes"] += q - p
                stats["keystrokes"] += q - p
                p = q
    return {**totals, "per_language": per_language}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    shown = run["shown"] or 1
    return {**run, "acceptance_rate": round(run["accepted"] / shown, 4),
            "accepted_chars_per_100_keys": round(100 * run["accepted_chars"] / max(run["keystrokes"], 1), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", type=int, default=6, help="regions replayed per file")
    parser.add_argument("--region-chars", type=int, default=200, help="characters per region (to a line end)")
    parser.add_argument("--write-prior", action="store_true", help="save the fitted model as the shipped prior")
    parser.add_argument("--store", default=str(Path.home() / ".cache" / "codeassist" / "acceptance-replay.jsonl"),
                        help="answers kept across runs (same model and settings); '' for none")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "acceptance_bench.json"))
    args = parser.parse_args()
    fit_files = [entry for entry in FIT_FILES if entry[0].is_file()]
    held_out = [entry for entry in HELD_OUT_FILES if entry[0].is_file()]
    settings = Settings()
    # No time budget (the same answers on a loaded machine); the early cut at a guess stays, as in the editor.
    settings.completion.line_budget_ms = settings.completion.block_budget_ms = NO_TIME_BUDGET_MS
    settings.cache.enabled = False
    settings.completion.acceptance_threshold = 0.0  # the replay gates itself, at each threshold in turn
    replayer = Replayer(settings, Path(args.store) if args.store else None)
    started = time.time()
    rows: list[tuple[SuggestionFeatures, int, bool]] = []
    fit_run = summarise(replay(replayer, fit_files, None, 0.0, args.regions, args.region_chars, rows))
    model = gating.fit(rows)
    replayer.gate_model = model
    if args.write_prior:
        gating.PRIOR_PATH.write_text(json.dumps(model.to_json(), indent=2) + "\n")
    fit_kept = {}
    for threshold in THRESHOLDS[1:]:
        gated = replay(replayer, fit_files, model, threshold, args.regions, args.region_chars)
        fit_kept[threshold] = round(gated["accepted_chars"] / max(fit_run["accepted_chars"], 1), 3)
    chosen = max([t for t, kept in fit_kept.items() if kept >= KEEP_ON_FIT], default=0.0)
    default = Settings().completion.acceptance_threshold
    curve = []
    base: dict[str, Any] | None = None
    for threshold in sorted(set(THRESHOLDS) | {default}):
        run = summarise(replay(replayer, held_out, model, threshold, args.regions, args.region_chars))
        base = base or run
        run["threshold"] = threshold
        run["rate_vs_ungated"] = round(run["acceptance_rate"] / max(base["acceptance_rate"], 1e-9), 3)
        run["accepted_chars_kept"] = round(run["accepted_chars"] / max(base["accepted_chars"], 1), 3)
        curve.append(run)
    at_default = next(run for run in curve if run["threshold"] == default)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "model": replayer.service.backend.model_id if replayer.service.backend else None,
        "settings": {"regions": args.regions, "region_chars": args.region_chars, "line_budget_ms": NO_TIME_BUDGET_MS,
                     "guess_below": settings.completion.guess_below},
        "fit_files": [str(p) for p, _ in fit_files], "held_out_files": [str(p) for p, _ in held_out],
        "fit": {"suggestions": len(rows), "accepted": sum(1 for *_, a in rows if a), "replay": fit_run,
                "model": model.to_json()},
        "held_out_curve": curve,
        "threshold_choice": {"rule": f"highest threshold keeping >= {KEEP_ON_FIT} of the fit files' accepted chars",
                             "fit_chars_kept": fit_kept, "chosen_on_fit": chosen, "configured_default": default},
        "at_default": {"threshold": default, "rate_vs_ungated": at_default["rate_vs_ungated"],
                       "accepted_chars_kept": at_default["accepted_chars_kept"],
                       "bar_met": at_default["rate_vs_ungated"] >= 1.5 and at_default["accepted_chars_kept"] >= 0.85},
        # Measured on the answers the model wrote in this run (none when every answer came from the store).
        "gating_cost_us": None if not replayer.gate_us else {"suggestions": len(replayer.gate_us),
                           "p50": round(percentile(replayer.gate_us, 0.5), 1),
                           "p99": round(percentile(replayer.gate_us, 0.99), 1),
                           "probability_only": {"decisions": len(replayer.probability_us),
                                                "p50": round(percentile(replayer.probability_us, 0.5), 1),
                                                "p99": round(percentile(replayer.probability_us, 0.99), 1)}},
        "model_calls": len(replayer.model_ms),
        "seconds": round(time.time() - started, 1),
    }
    replayer.service.close()
    print(f"fit: {len(rows)} suggestions on {len(fit_files)} files, {report['fit']['accepted']} accepted")
    print("held out: threshold | shown | accepted | rate | rate x | accepted chars | kept | chars/100 keys")
    for run in curve:
        print(f"  {run['threshold']:.2f} | {run['shown']:5d} | {run['accepted']:4d} | {run['acceptance_rate']:.3f} | "
              f"{run['rate_vs_ungated']:.2f} | {run['accepted_chars']:5d} | {run['accepted_chars_kept']:.2f} | "
              f"{run['accepted_chars_per_100_keys']:.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    # The chart `codeassist stats --html` draws from a user's own outcomes, here from the held-out replay.
    chart = out.with_suffix(".svg")
    chart.write_text(tradeoff_svg([{"threshold": run["threshold"], "rate": run["acceptance_rate"],
                                    "acceptedCharsKept": run["accepted_chars_kept"], "shown": run["shown"]}
                                   for run in curve], "acceptanceThreshold trade-off, held-out replay") + "\n")
    print(f"threshold chosen on the fit files: {chosen} (fit chars kept {fit_kept}); configured default {default}: "
          f"held-out rate {at_default['rate_vs_ungated']:.2f}x with {at_default['accepted_chars_kept']:.0%} of the "
          f"accepted chars (bar: >= 1.5x with >= 85%: {'met' if report['at_default']['bar_met'] else 'NOT met'})")
    cost = report["gating_cost_us"]
    if cost:
        print(f"gating: features + P(accept) p50 {cost['p50']} us, p99 {cost['p99']} us over {cost['suggestions']} new "
              f"answers; P(accept) alone p50 {cost['probability_only']['p50']} us, p99 {cost['probability_only']['p99']} us")
    print(f"{report['model_calls']} model calls in {report['seconds']} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
