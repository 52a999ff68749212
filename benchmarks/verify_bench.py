"""Verification benchmark: CyberSecEval insecure lines flagged, false positives on clean code, latency.

Run: .venv/bin/python benchmarks/verify_bench.py [--full-sample N] [--clean-lines N]
Prints a table and writes benchmarks/results/verify.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp.context.languages import language_for  # noqa: E402
from codeassist_lsp.verify import verify_suggestion  # noqa: E402
from codeassist_lsp.verify.syntax import check_syntax  # noqa: E402

DATA = Path("/work/shared/data")
if not DATA.exists():
    DATA = ROOT.parent / "shared" / "data"
CYBERSECEVAL = DATA / "cyberseceval" / "autocomplete.json"
HUMANEVAL = DATA / "humaneval" / "HumanEval.jsonl.gz"
RESULTS = ROOT / "benchmarks" / "results" / "verify.json"
# CyberSecEval language names to our languageIds.
LANGUAGE_ID = {"c": "c", "cpp": "cpp", "csharp": "csharp", "java": "java", "javascript": "javascript",
               "php": "php", "python": "python", "rust": "rust"}
# Real source files on this machine for "ordinary lines" (language id, glob roots).
CLEAN_SOURCES = [
    ("python", [Path(sys.base_prefix) / "lib" / "python3.11"], "*.py"),
    ("javascript", [Path("/usr/lib/node_modules"), Path("/usr/share/nodejs")], "*.js"),
    ("c", [Path("/usr/include")], "*.h"),
    ("c", [Path("/usr/share"), Path("/usr/lib")], "*.c"),
    ("php", [Path("/usr/share"), Path("/usr/lib")], "*.php"),
]


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def splice_record(record: dict) -> tuple[str, int, str] | None:  # type: ignore[type-arg]
    """The document without the insecure line, the cursor after its indentation, and the line."""
    code, line = record["origin_code"], record["line_text"]
    marker = "just the code.\n\n"
    prompt = record["test_case_prompt"]
    prefix = prompt[prompt.find(marker) + len(marker):] if marker in prompt else ""
    index = code.find(line, max(0, len(prefix) - len(line) - 1))
    if index < 0:
        index = code.find(line)
    if index < 0:
        return None
    indent = len(line) - len(line.lstrip())
    document = code[: index + indent] + code[index + len(line):]
    return document, index + indent, line.strip()


def run_cyberseceval(mode: str, sample: int | None) -> dict:  # type: ignore[type-arg]
    """Share of insecure lines flagged per language and split, with latencies."""
    records = json.loads(CYBERSECEVAL.read_text())
    indices = list(range(len(records)))
    if sample:
        by_language: dict[str, list[int]] = defaultdict(list)
        for index in indices:
            by_language[records[index]["language"]].append(index)
        rng = random.Random(7)
        indices = sorted(i for group in by_language.values() for i in rng.sample(group, min(sample, len(group))))
    per: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"dev": [0, 0], "heldout": [0, 0]})
    latencies: list[float] = []
    statuses: dict[str, int] = defaultdict(int)
    for index in indices:
        record = records[index]
        spliced = splice_record(record)
        if spliced is None:
            continue
        document, offset, suggestion = spliced
        language = language_for(LANGUAGE_ID[record["language"]])
        verdict = verify_suggestion(document, offset, suggestion, language=language, mode=mode)
        latencies.append(verdict.elapsed_ms)
        statuses[verdict.status] += 1
        split = "dev" if index % 2 == 0 else "heldout"  # rules were written looking at even records only
        per[record["language"]][split][0] += bool(verdict.findings)
        per[record["language"]][split][1] += 1
    table = {}
    for language, splits in sorted(per.items()):
        flagged = sum(s[0] for s in splits.values())
        total = sum(s[1] for s in splits.values())
        table[language] = {
            "flagged": flagged, "total": total, "share": flagged / total,
            "dev_share": splits["dev"][0] / max(1, splits["dev"][1]),
            "heldout_share": splits["heldout"][0] / max(1, splits["heldout"][1]),
        }
    flagged = sum(v["flagged"] for v in table.values())
    total = sum(v["total"] for v in table.values())
    heldout = [s["heldout"] for s in per.values()]
    return {
        "mode": mode, "records": total, "flagged": flagged, "share": flagged / max(1, total),
        "heldout_share": sum(h[0] for h in heldout) / max(1, sum(h[1] for h in heldout)),
        "per_language": table, "statuses": dict(statuses),
        "latency_ms": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
                       "mean": statistics.fmean(latencies) if latencies else float("nan")},
    }


def _clean_lines(language_id: str, roots: list[Path], pattern: str, count: int, rng: random.Random) -> list[tuple[str, int, str]]:
    files = sorted(p for root in roots if root.exists() for p in root.rglob(pattern)
                   if p.is_file() and "test" not in p.name.lower() and p.stat().st_size < 200_000)
    rng.shuffle(files)
    language = language_for(language_id)
    out = []
    for path in files:
        if len(out) >= count:
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines = text.splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if len(line.strip()) > 8
                      and not line.lstrip().startswith(tuple(m for m in ("#", "//", "/*", "*", '"""', "'''") if m))]
        if not candidates:
            continue
        for i in rng.sample(candidates, min(3, len(candidates))):
            start = sum(len(line) for line in lines[:i])
            line = lines[i].rstrip("\n")
            indent = len(line) - len(line.lstrip())
            document = text[: start + indent] + text[start + len(line):]
            out.append((document, start + indent, line.strip()))
        del language
        language = language_for(language_id)
    return out[:count]


def run_clean(lines_per_source: int) -> dict:  # type: ignore[type-arg]
    """False positives: HumanEval canonical solutions and ordinary lines of real source files."""
    results: dict[str, dict] = {}  # type: ignore[type-arg]
    latencies: list[float] = []
    cases: dict[str, list[tuple[str, str, int, str]]] = defaultdict(list)
    with gzip.open(HUMANEVAL, "rt") as handle:
        for row in map(json.loads, handle):
            cases["humaneval-python"].append(("python", row["prompt"] + row["canonical_solution"], len(row["prompt"]), row["canonical_solution"]))
    rng = random.Random(11)
    for language_id, roots, pattern in CLEAN_SOURCES:
        for document, offset, suggestion in _clean_lines(language_id, roots, pattern, lines_per_source, rng):
            cases[f"lines-{language_id}{pattern[1:]}"].append((language_id, document, offset, suggestion))
    for source, items in cases.items():
        flagged = syntax_changed = 0
        examples = []
        for language_id, document, offset, suggestion in items:
            if source.startswith("humaneval"):
                document = document[:offset] + document[offset + len(suggestion):]
            verdict = verify_suggestion(document, offset, suggestion, language=language_for(language_id), mode="inline")
            latencies.append(verdict.elapsed_ms)
            if verdict.findings:
                flagged += 1
                if len(examples) < 8:
                    examples.append({"line": suggestion[:160], "rules": [f.rule_id for f in verdict.findings]})
            syntax_changed += verdict.cut or verdict.status == "dropped"
        results[source] = {"total": len(items), "flagged": flagged, "fp_rate": flagged / max(1, len(items)),
                           "syntax_cut_or_dropped": syntax_changed, "examples": examples}
    total = sum(r["total"] for r in results.values())
    flagged = sum(r["flagged"] for r in results.values())
    return {"total": total, "flagged": flagged, "fp_rate": flagged / max(1, total), "per_source": results,
            "latency_ms": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}}


def syntax_share(suggestions: Iterable[tuple[str, int, str, str]]) -> dict:  # type: ignore[type-arg]
    """For raw model suggestions (document, offset, suggestion, languageId): share that broke the
    parse, and share of the shown (possibly cut) ones that parse in place (must be 1.0)."""
    total = broke = shown = shown_parse = 0
    for document, offset, suggestion, language_id in suggestions:
        language = language_for(language_id)
        total += 1
        verdict = verify_suggestion(document, offset, suggestion, language=language, mode="inline")
        broke += verdict.cut or verdict.status == "dropped"
        if verdict.text:
            shown += 1
            shown_parse += check_syntax(language, document, offset, verdict.text).status in ("ok", "unchecked")
    return {"suggestions": total, "broke_parse_share": broke / max(1, total),
            "shown": shown, "shown_parse_share": shown_parse / max(1, shown)}


def main() -> None:
    """Run the benchmark once, print a table, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full-sample", type=int, default=15, help="records per language for full mode (0: skip)")
    parser.add_argument("--clean-lines", type=int, default=400, help="ordinary lines per clean source")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    began = time.time()
    inline = run_cyberseceval("inline", None)
    full = run_cyberseceval("full", args.full_sample) if args.full_sample else None
    clean = run_clean(args.clean_lines)
    report = {"cyberseceval_inline": inline, "cyberseceval_full_sample": full, "clean": clean,
              "targets": {"flagged_overall": 0.80, "flagged_per_language": 0.60, "fp_rate": 0.01,
                          "inline_p50_ms": 20, "inline_p99_ms": 60},
              "seconds": round(time.time() - began, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"{'language':<12}{'n':>6}{'flagged':>9}{'dev':>8}{'held-out':>10}" + (f"{'full*':>8}" if full else ""))
    for language, row in inline["per_language"].items():
        extra = f"{full['per_language'][language]['share']:>8.1%}" if full and language in full["per_language"] else ""
        print(f"{language:<12}{row['total']:>6}{row['share']:>9.1%}{row['dev_share']:>8.1%}{row['heldout_share']:>10.1%}{extra}")
    print(f"{'overall':<12}{inline['records']:>6}{inline['share']:>9.1%}{'':>8}{inline['heldout_share']:>10.1%}"
          + (f"{full['share']:>8.1%}" if full else ""))
    print(f"inline latency (CyberSecEval): p50 {inline['latency_ms']['p50']:.1f} ms, p99 {inline['latency_ms']['p99']:.1f} ms")
    if full:
        print(f"full latency (sample, semgrep-core): p50 {full['latency_ms']['p50']:.0f} ms, p99 {full['latency_ms']['p99']:.0f} ms")
    print(f"{'clean source':<26}{'n':>6}{'FP':>6}{'rate':>8}{'syntax cut':>12}")
    for source, row in clean["per_source"].items():
        print(f"{source:<26}{row['total']:>6}{row['flagged']:>6}{row['fp_rate']:>8.1%}{row['syntax_cut_or_dropped']:>12}")
    print(f"{'clean overall':<26}{clean['total']:>6}{clean['flagged']:>6}{clean['fp_rate']:>8.1%}")
    print(f"inline latency (clean): p50 {clean['latency_ms']['p50']:.1f} ms, p99 {clean['latency_ms']['p99']:.1f} ms")
    print(f"wrote {RESULTS.relative_to(ROOT)} in {report['seconds']} s")


if __name__ == "__main__":
    main()
