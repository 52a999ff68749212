"""Redaction benchmark: corpus secrets masked, false masks on real code, time per prompt while typing.

Run: .venv/bin/python benchmarks/redaction_bench.py [--prompt-lines 150] [--calls 1500]
Prints a table and writes benchmarks/results/redaction.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp import redact as redact_module  # noqa: E402
from codeassist_lsp.redact import redact  # noqa: E402

DATA = Path("/work/shared/data")
if not DATA.exists():
    DATA = ROOT.parent / "shared" / "data"
HUMANEVAL = DATA / "humaneval" / "HumanEval.jsonl.gz"
CORPUS = ROOT / "tests" / "data" / "secrets"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
RESULTS = ROOT / "benchmarks" / "results" / "redaction.json"
# Files whose windows make the typed prompts: ordinary code, and code full of secrets.
PROMPT_SOURCES = [STDLIB / "textwrap.py", STDLIB / "argparse.py", STDLIB / "smtplib.py", CORPUS / "settings.py"]


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run_recall() -> dict:  # type: ignore[type-arg]
    """Share of the corpus' manifest values gone from the redacted text, per file."""
    manifest = json.loads((CORPUS / "manifest.json").read_text())["files"]
    per_file = {}
    missed: list[dict[str, str]] = []
    for name, items in sorted(manifest.items()):
        text = (CORPUS / name).read_text()
        masked = redact(text).text
        gone = [item["value"] not in masked for item in items]
        missed += [{"file": name, "kind": item["kind"]} for item, ok in zip(items, gone) if not ok]
        per_file[name] = {"secrets": len(items), "masked": sum(gone)}
    total = sum(row["secrets"] for row in per_file.values())
    masked_total = sum(row["masked"] for row in per_file.values())
    return {"secrets": total, "masked": masked_total, "recall": masked_total / max(1, total),
            "per_file": per_file, "missed": missed}


def run_false_masks() -> dict:  # type: ignore[type-arg]
    """Files of real, secret-free code that redaction changed: HumanEval and top-level stdlib modules."""
    sources: dict[str, list[tuple[str, str]]] = {"humaneval": [], "stdlib": []}
    with gzip.open(HUMANEVAL, "rt") as handle:
        for row in map(json.loads, handle):
            sources["humaneval"].append((row["task_id"], row["prompt"] + row["canonical_solution"]))
    for path in sorted(STDLIB.glob("*.py")):
        sources["stdlib"].append((path.name, path.read_text(encoding="utf-8", errors="replace")))
    report = {}
    for source, texts in sources.items():
        changed = []
        for name, text in texts:
            result = redact(text)
            if result.text != text:
                changed.append({"file": name, "kinds": list(result.kinds), "count": result.count})
        report[source] = {"files": len(texts), "changed": len(changed), "examples": changed[:10]}
    return report


def typing_prompts(path: Path, lines: int, calls: int) -> list[str]:
    """Prompts of `lines` lines from one file as a user types: each differs from the one before in one line.

    A window of the file; its lines from the middle down are retyped a few characters at a time, one
    prompt per step (the prompt a keystroke sends).
    """
    source = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = max(0, min(len(source) - lines, 200))
    window = source[start:start + lines]
    typed = list(window)
    prompts: list[str] = []
    for row in range(len(window) // 2, len(window)):
        full = window[row]
        for cut in range(1, len(full), 3):
            typed[row] = full[:cut] + "\n"
            prompts.append("".join(typed))
        typed[row] = full
        if len(prompts) >= calls:
            break
    return prompts[:calls]


def run_latency(lines: int, calls: int) -> dict:  # type: ignore[type-arg]
    """Time per prompt: cold (empty line memo) and warm (the previous keystroke's prompt redacted)."""
    cold: list[float] = []
    warm: list[float] = []
    sizes: list[int] = []
    for path in PROMPT_SOURCES:
        prompts = typing_prompts(path, lines, calls // len(PROMPT_SOURCES))
        sizes += [len(prompt) for prompt in prompts]
        for prompt in prompts[:: max(1, len(prompts) // 25)]:
            redact_module._scan_line.cache_clear()
            began = time.perf_counter()
            redact(prompt)
            cold.append((time.perf_counter() - began) * 1000)
        redact_module._scan_line.cache_clear()
        redact(prompts[0])
        for prompt in prompts[1:]:
            began = time.perf_counter()
            redact(prompt)
            warm.append((time.perf_counter() - began) * 1000)
    return {"prompt_lines": lines, "prompt_chars_mean": round(statistics.fmean(sizes)),
            "sources": [str(path) for path in PROMPT_SOURCES],
            "cold_ms": {"p50": percentile(cold, 0.5), "p99": percentile(cold, 0.99), "n": len(cold)},
            "warm_ms": {"p50": percentile(warm, 0.5), "p99": percentile(warm, 0.99), "n": len(warm)},
            "line_memo": redact_module._scan_line.cache_info()._asdict()}


def main() -> None:
    """Run the benchmark once, print a table, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt-lines", type=int, default=150, help="lines per prompt")
    parser.add_argument("--calls", type=int, default=1500, help="typed prompts timed")
    args = parser.parse_args()
    began = time.time()
    recall = run_recall()
    false_masks = run_false_masks()
    latency = run_latency(args.prompt_lines, args.calls)
    report = {"recall": recall, "false_masks": false_masks, "latency": latency,
              "targets": {"recall": 1.0, "false_masks": 0, "warm_p50_ms": 2.0},
              "seconds": round(time.time() - began, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'corpus file':<22}{'secrets':>9}{'masked':>8}")
    for name, row in recall["per_file"].items():
        print(f"{name:<22}{row['secrets']:>9}{row['masked']:>8}")
    print(f"{'recall':<22}{recall['secrets']:>9}{recall['masked']:>8}{recall['recall']:>9.1%}")
    for kind in recall["missed"]:
        print(f"  missed: {kind['file']} {kind['kind']}")
    print(f"{'false masks':<22}{'files':>9}{'changed':>8}")
    for source, row in false_masks.items():
        print(f"{source:<22}{row['files']:>9}{row['changed']:>8}")
    cold, warm = latency["cold_ms"], latency["warm_ms"]
    print(f"time per {latency['prompt_lines']}-line prompt (~{latency['prompt_chars_mean']} chars), one line "
          f"changed per call: cold p50 {cold['p50']:.2f} ms p99 {cold['p99']:.2f} ms; "
          f"warm p50 {warm['p50']:.3f} ms p99 {warm['p99']:.3f} ms ({warm['n']} calls)")
    print(f"wrote {RESULTS.relative_to(ROOT)} in {report['seconds']} s")


if __name__ == "__main__":
    main()
