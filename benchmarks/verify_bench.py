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


# Real code nobody here wrote, typed in as in benchmarks/typing_replay.py (first files) plus other
# languages found on this machine: (languageId, path).
SYNTAX_FILES = [
    ("python", Path(sys.base_prefix) / "lib" / "python3.11" / "textwrap.py"),
    ("python", Path(sys.base_prefix) / "lib" / "python3.11" / "json" / "encoder.py"),
    ("javascript", Path("/usr/lib/node_modules/npm/lib/utils/display.js")),
    ("javascript", Path("/usr/lib/node_modules/npm/lib/commands/install.js")),
    ("go", Path("/usr/share/doc/git/contrib/persistent-https/client.go")),
    ("go", Path("/usr/share/doc/git/contrib/persistent-https/proxy.go")),
    ("c", Path("/usr/share/doc/zlib1g-dev/examples/gzjoin.c")),
    ("c", Path("/usr/share/doc/zlib1g-dev/examples/minigzip.c")),
    ("shellscript", Path("/usr/share/doc/git/contrib/subtree/git-subtree.sh")),
    ("shellscript", Path("/usr/bin/gettext.sh")),
    ("typescript", Path("/root/.cache/codeassist-editors/code-server-4.99.4/node_modules/code-server/lib/vscode/"
                        "node_modules/node-pty/src/unixTerminal.ts")),
    ("rust", Path("/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/error_codes/main.rs")),
]


def syntax_cursors(text: str, count: int, rng: random.Random) -> list[tuple[str, int, str]]:
    """Typing-replay states of one file: (document, offset, kind), kinds in turn.

    mid-line: as in the replay, the line being typed exists only up to the cursor (the rest of the
    file is there); line-end: the whole line typed; line-start: the cursor before a line's code
    (after its indentation) in the whole file, where a new line above it is suggested.
    """
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    content = [i for i, line in enumerate(lines) if len(line.strip()) > 3]
    out: list[tuple[str, int, str]] = []
    for number in rng.sample(content, min(count, len(content))):
        line = lines[number].rstrip("\r\n")
        indent = len(line) - len(line.lstrip())
        line_end = starts[number] + len(line)
        kind = ("mid-line", "line-end", "line-start")[len(out) % 3]
        if kind == "mid-line" and len(line) - indent > 2:
            # The user has typed part of the line (at least one character of code).
            offset = starts[number] + rng.randrange(indent + 1, len(line))
            out.append((text[:offset] + text[line_end:], offset, "mid-line"))
        elif kind == "line-start":
            out.append((text, starts[number] + indent, "line-start"))
        else:
            out.append((text, line_end, "line-end"))
    return out


def _error_count(language, source: str) -> int:  # type: ignore[no-untyped-def]
    """ERROR and MISSING nodes of a full (non-incremental) parse: a check independent of verify/."""
    from codeassist_lsp.context.languages import parse

    tree = parse(language, source.encode("utf-8"))
    if tree is None:
        return 0
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        count += node.type == "ERROR" or node.is_missing
        stack.extend(node.children)
    return count


def raw_model_suggestions(per_file: int, seed: int = 3, threads: int = 0) -> list[dict]:  # type: ignore[type-arg]
    """Raw suggestions of the embedded model (shaped, before verification) through the real pipeline."""
    from codeassist_lsp.config import parse_settings
    from codeassist_lsp.context.assembler import ContextAssembler
    from codeassist_lsp.service import CompletionService

    # threads only changes speed (set it below the core count when other jobs share the machine).
    settings = parse_settings({"cache": {"enabled": False}, "model": {"threads": threads}})
    settings.completion.debounce_ms = 0
    rng = random.Random(seed)
    rows: list[dict] = []  # type: ignore[type-arg]
    for language_id, path in SYNTAX_FILES:
        if not path.is_file():
            logging.warning("syntax: %s not on this machine, skipped", path)
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # One service per file, as one editor session: the file's folder is the workspace root.
        service = CompletionService(settings, assembler=ContextAssembler(None, None, root=path.parent))
        try:
            service.wait_until_loaded()
            for index, (document, offset, kind) in enumerate(syntax_cursors(text, per_file, rng)):
                key = f"{path}#{index}"  # no typed-ahead reuse or sticky window across cursors
                prepared = service.prepare(document, offset, path=key, language_id=language_id,
                                           refresh_context=True)
                job = service.submit(prepared)
                suggestion = service.finish(prepared, job.future.result() if job is not None else None)
                service.forget(key)
                rows.append({"language": language_id, "file": str(path), "offset": offset, "kind": kind,
                             "mode": suggestion.mode, "document": document, "raw": suggestion.raw_text,
                             "shown": suggestion.text,
                             "status": suggestion.verdict.status if suggestion.verdict else None})
        finally:
            service.close()
    return rows


def run_syntax(per_file: int, threads: int = 0) -> dict:  # type: ignore[type-arg]
    """Raw model suggestions that broke the parse, and shown ones that parse in place, per language."""
    rows = raw_model_suggestions(per_file, threads=threads)
    per_language: dict[str, dict] = {}  # type: ignore[type-arg]
    failures: list[dict] = []  # type: ignore[type-arg]
    groups: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    for row in rows:
        groups[row["language"]].append(row)
    for language_id, items in sorted(groups.items()) + [("overall", rows)]:
        with_raw = [r for r in items if r["raw"]]
        shares = syntax_share((r["document"], r["offset"], r["raw"], r["language"]) for r in with_raw)
        # Independent of verify/: a full reparse of the document as shown has no more errors.
        shown = [r for r in with_raw if r["shown"]]
        independent = 0
        for r in shown:
            language = language_for(r["language"])
            spliced = r["document"][: r["offset"]] + r["shown"] + r["document"][r["offset"]:]
            ok = _error_count(language, spliced) <= _error_count(language, r["document"])
            independent += ok
            if not ok and language_id != "overall":
                failures.append({"language": r["language"], "file": r["file"], "offset": r["offset"],
                                 "shown": r["shown"], "raw": r["raw"]})
        per_language[language_id] = {
            "cursors": len(items), "kinds": {k: sum(r["kind"] == k for r in items)
                                             for k in ("mid-line", "line-end", "line-start")},
            "with_suggestion": len(with_raw), **shares,
            "shown_parse_share_full_reparse": independent / max(1, len(shown)),
            "pipeline_statuses": dict(sorted(defaultdict(int, {s: sum(r["status"] == s for r in with_raw)
                                                               for s in {r["status"] for r in with_raw}}).items())),
        }
    examples = [{"language": r["language"], "file": r["file"], "offset": r["offset"], "raw": r["raw"],
                 "shown": r["shown"], "status": r["status"]} for r in rows if r["raw"] and r["raw"] != r["shown"]][:40]
    return {"per_language": per_language, "shown_not_parsing": failures, "cut_or_dropped_examples": examples,
            "files": sorted({r["file"] for r in rows})}


def _syntax_table(syntax: dict | None) -> str:  # type: ignore[type-arg]
    """The syntax part as a table."""
    if not syntax:
        return ""
    lines = [f"{'syntax (raw model)':<20}{'cursors':>8}{'raw':>6}{'broke parse':>13}{'shown':>7}"
             f"{'shown parse':>13}{'full reparse':>14}"]
    for language, row in syntax["per_language"].items():
        lines.append(f"{language:<20}{row['cursors']:>8}{row['suggestions']:>6}{row['broke_parse_share']:>13.1%}"
                     f"{row['shown']:>7}{row['shown_parse_share']:>13.1%}{row['shown_parse_share_full_reparse']:>14.1%}")
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark once, print a table, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full-sample", type=int, default=15, help="records per language for full mode (0: skip)")
    parser.add_argument("--clean-lines", type=int, default=400, help="ordinary lines per clean source")
    parser.add_argument("--syntax", type=int, default=0,
                        help="cursors per file for the raw-model syntax share (real model; 0: skip)")
    parser.add_argument("--threads", type=int, default=0, help="model threads for --syntax (0: all cores)")
    parser.add_argument("--only-syntax", action="store_true",
                        help="run only the syntax part; other parts of the JSON report are kept as they were")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    began = time.time()
    syntax = run_syntax(args.syntax, args.threads) if args.syntax else None
    if args.only_syntax:
        report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        report["syntax"] = syntax
        report["syntax_seconds"] = round(time.time() - began, 1)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2))
        print(_syntax_table(syntax))
        return
    inline = run_cyberseceval("inline", None)
    full = run_cyberseceval("full", args.full_sample) if args.full_sample else None
    clean = run_clean(args.clean_lines)
    report = {"cyberseceval_inline": inline, "cyberseceval_full_sample": full, "clean": clean,
              "syntax": syntax,
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
    if syntax:
        print(_syntax_table(syntax))
    print(f"wrote {RESULTS.relative_to(ROOT)} in {report['seconds']} s")


if __name__ == "__main__":
    main()
