"""Type-check stage benchmark: deliberate type errors caught, false alarms on canonical solutions, latency.

From the HumanEval canonical solutions, candidates with one deliberate error are made by mutating
the solution's text at an AST node (wrong arity, wrong argument type, a missing attribute, a return
value against the function's annotation, a misspelled name). Each candidate, and each unchanged
canonical solution, is checked as the generation it would be: the prompt (signature and docstring)
before the edit, the prompt with the body after it. No model is needed.

Run: .venv/bin/python benchmarks/typecheck_bench.py [--limit N]
Prints a table and writes benchmarks/results/typecheck.json.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp.verify import typecheck  # noqa: E402

DATA = Path("/work/shared/data")
if not DATA.exists():
    DATA = ROOT.parent / "shared" / "data"
HUMANEVAL = DATA / "humaneval" / "HumanEval.jsonl.gz"
RESULTS = ROOT / "benchmarks" / "results" / "typecheck.json"

# Builtins whose misuse is a TypeError whatever the argument: (name, extra argument for wrong arity,
# replacement of the first argument for a wrong type).
BUILTIN_MISUSE = {"len": "1", "abs": '"1"', "sorted": "1", "sum": "1", "range": '"1"', "enumerate": "1",
                  "zip": "1", "reversed": "1", "round": '"1"', "ord": "1", "chr": '"a"', "min": "1", "max": "1"}
# Methods of str/list/dict/set: renaming one is an AttributeError at run time.
KNOWN_METHODS = {"append", "split", "join", "lower", "upper", "strip", "items", "keys", "values", "count",
                 "index", "isdigit", "isalpha", "replace", "startswith", "endswith", "sort", "extend", "pop",
                 "add", "get", "find", "isupper", "islower", "insert", "remove", "reverse", "lstrip", "rstrip",
                 "swapcase", "isspace", "isalnum", "update", "copy"}
STR_ANNOTATIONS = ("str", "Any", "object")


def percentile(values: list[float], share: float) -> float:
    """The share-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def offset_of(text: str, line: int, column: int) -> int:
    """str offset of an AST (1-based line, UTF-8 column) position (HumanEval is ASCII)."""
    lines = text.split("\n")
    return sum(len(item) + 1 for item in lines[:line - 1]) + column


def span(text: str, node: ast.AST) -> tuple[int, int]:
    """The str offsets a node covers."""
    return (offset_of(text, node.lineno, node.col_offset),  # type: ignore[attr-defined]
            offset_of(text, node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]


def splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def mutations(prompt: str, solution: str, entry_point: str) -> Iterator[tuple[str, str]]:
    """(kind, mutated document) pairs, at most one per kind, each changing the solution only."""
    document = prompt + solution
    try:
        tree = ast.parse(document)
    except SyntaxError:
        return
    first_body_line = prompt.count("\n") + 1
    in_body = [n for n in ast.walk(tree) if getattr(n, "lineno", 0) >= first_body_line]
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    seen: set[str] = set()

    def calls_to(names: set[str]) -> list[ast.Call]:
        return sorted((n for n in in_body if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                       and n.func.id in names and n.args and not any(isinstance(a, ast.Starred) for a in n.args)),
                      key=lambda n: (n.lineno, n.col_offset))

    # Wrong arity: one argument too many for a builtin or a function of the document.
    fixed_arity = {name for name, f in functions.items() if not f.args.vararg and not f.args.defaults
                   and not f.args.kwonlyargs}
    for call in calls_to({"len", "abs", "ord", "chr"} | fixed_arity):
        if call.keywords:
            continue
        start, end = span(document, call)
        yield "arity", splice(document, end - 1, end - 1, ", 0")
        break
    # Wrong argument type: a builtin's first argument, or a str passed for an int/float/list parameter.
    for call in calls_to(set(BUILTIN_MISUSE)):
        start, end = span(document, call.args[0])
        yield "argument-type", splice(document, start, end, BUILTIN_MISUSE[call.func.id])  # type: ignore[attr-defined]
        seen.add("argument-type")
        break
    if "argument-type" not in seen:
        for call in calls_to(set(functions)):
            target = functions[call.func.id]  # type: ignore[attr-defined]
            params = target.args.args
            for argument, param in zip(call.args, params, strict=False):
                annotation = ast.unparse(param.annotation) if param.annotation is not None else ""
                if annotation in ("int", "float") or annotation.startswith(("List", "list")):
                    start, end = span(document, argument)
                    yield "argument-type", splice(document, start, end, '"x"')
                    seen.add("argument-type")
                    break
            if "argument-type" in seen:
                break
    # A missing attribute: a str/list/dict method misspelled.
    for node in sorted((n for n in in_body if isinstance(n, ast.Attribute) and n.attr in KNOWN_METHODS),
                       key=lambda n: (n.lineno, n.col_offset)):
        start, end = span(document, node)
        yield "attribute", splice(document, end - len(node.attr), end, node.attr + "_")
        break
    # Wrong return type against the function's annotation.
    entry = functions.get(entry_point)
    if entry is not None and entry.returns is not None:
        annotation = ast.unparse(entry.returns)
        returns = sorted((n for n in ast.walk(entry) if isinstance(n, ast.Return) and n.value is not None
                          and n.lineno >= first_body_line), key=lambda n: n.lineno)
        if returns and "Any" not in annotation and "object" not in annotation:
            wrong = "0.5j" if "str" in annotation else '"oops"'
            if annotation in ("float", "complex"):
                wrong = '"oops"'
            start, end = span(document, returns[0].value)  # type: ignore[arg-type]
            yield "return-type", splice(document, start, end, wrong)
    # A misspelled name (read before it is defined anywhere).
    assigned = {n.id for n in in_body if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names = [n for n in in_body if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
             and n.id in assigned and len(n.id) > 2]
    for name in sorted(names, key=lambda n: (n.lineno, n.col_offset)):
        start, end = span(document, name)
        yield "undefined-name", splice(document, start, end, name.id[:-1] + name.id[-1] * 2 + "_")
        break


def run(limit: int | None) -> dict:  # type: ignore[type-arg]
    problems = [json.loads(line) for line in gzip.open(HUMANEVAL, "rt")]
    if limit:
        problems = problems[:limit]
    started = time.perf_counter()
    typecheck.check_text("x: int = 1\n", language_id="python", timeout=300)  # the warm-up a server does in the background
    cold_ms = (time.perf_counter() - started) * 1000
    false_alarms: list[dict] = []  # type: ignore[type-arg]
    caught: dict[str, list[bool]] = defaultdict(list)
    missed: list[dict] = []  # type: ignore[type-arg]
    times: list[float] = []
    not_run = 0
    for problem in problems:
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        path = None  # a buffer with no file: no workspace config, the stage's defaults
        check = typecheck.check_edit(prompt, prompt + solution, language_id="python", path=path)
        if not check.ran:
            not_run += 1
            continue
        times.append(check.ms)
        if check.new_errors:
            false_alarms.append({"task": problem["task_id"], "errors": [p.describe() for p in check.new_errors]})
        for kind, mutated in mutations(prompt, solution, problem["entry_point"]):
            check = typecheck.check_edit(prompt, mutated, language_id="python", path=path)
            if not check.ran:
                not_run += 1
                continue
            times.append(check.ms)
            caught[kind].append(bool(check.new_errors))
            if not check.new_errors:
                missed.append({"task": problem["task_id"], "kind": kind})
    total = sum(len(v) for v in caught.values())
    hits = sum(sum(v) for v in caught.values())
    typecheck.shutdown()
    return {
        "checker": "mypy (warm worker, incremental cache)",
        "problems": len(problems),
        "candidates_with_error": total,
        "caught": hits,
        "caught_share": hits / total if total else 0.0,
        "by_kind": {kind: {"candidates": len(v), "caught": sum(v), "share": sum(v) / len(v)} for kind, v in sorted(caught.items())},
        "canonical_checked": len(problems),
        "false_alarms": len(false_alarms),
        "false_alarm_details": false_alarms,
        "missed": missed,
        "not_run": not_run,
        "cold_start_ms": cold_ms,
        "check_ms": {"p50": percentile(times, 0.5), "p90": percentile(times, 0.9), "p99": percentile(times, 0.99),
                     "mean": statistics.fmean(times) if times else float("nan"), "checks": len(times)},
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    args = parser.parse_args()
    result = run(args.limit)
    print(f"{'kind':<16} {'candidates':>10} {'caught':>7} {'share':>7}")
    for kind, row in result["by_kind"].items():
        print(f"{kind:<16} {row['candidates']:>10} {row['caught']:>7} {row['share']:>7.1%}")
    print(f"{'all':<16} {result['candidates_with_error']:>10} {result['caught']:>7} {result['caught_share']:>7.1%}")
    print(f"false alarms on {result['canonical_checked']} canonical solutions: {result['false_alarms']}")
    timing = result["check_ms"]
    print(f"check (warm): p50 {timing['p50']:.0f} ms, p90 {timing['p90']:.0f} ms, p99 {timing['p99']:.0f} ms "
          f"over {timing['checks']} checks; cold start {result['cold_start_ms']:.0f} ms; not run: {result['not_run']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
