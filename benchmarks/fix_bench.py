"""Checked quick fixes: the fix action on real checker diagnostics with the quality-tier code model.

Diagnostics: HumanEval canonical solutions (small real functions) with one deliberate mistake
(typecheck_bench's mutations: a misspelled name, one argument too many, a wrong argument type, a
misspelled method, a return value against the annotation); the diagnostic is what mypy itself
reports for it (message and line), as an editor running mypy would send it.

Each is resolved by the fix action exactly as over LSP (ActionRunner.resolve, the real code model),
with the checks of actions/checked.py deciding what is offered. Then, independently of them, a
fresh `mypy` command-line run on the before and after files says whether the diagnostic is gone
and no error was added, and the HumanEval tests say whether the function works again.

  share fixed           offered, diagnostic gone, no new error (independent mypy run)
  offered-but-wrong     offered, but the independent run still finds the diagnostic or a new error (must be 0)
  unchecked-wrong       what the model's raw edits would have shown wrong without the checks

Run: .venv/bin/python benchmarks/fix_bench.py [--cases 36] [--time-budget 600]
Prints a table and writes benchmarks/results/fix_checked.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from actions_bench import run_tests  # noqa: E402
from typecheck_bench import HUMANEVAL, mutations, percentile  # noqa: E402

from codeassist_lsp.actions import checked  # noqa: E402
from codeassist_lsp.actions.runner import ActionRunner  # noqa: E402
from codeassist_lsp.actions.targets import DocumentView, list_actions  # noqa: E402
from codeassist_lsp.config import Settings  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402
from codeassist_lsp.verify import typecheck  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "fix_checked.json"
QUOTAS = {"undefined-name": 10, "arity": 8, "argument-type": 8, "attribute": 6, "return-type": 4}
MYPY_ARGS = ["--check-untyped-defs", "--allow-redefinition", "--ignore-missing-imports", "--show-column-numbers",
             "--show-error-codes", "--no-error-summary", "--no-pretty", "--hide-error-context"]


def cli_errors(text: str) -> list[typecheck.TypeProblem]:
    """mypy's errors of a text from a fresh command-line run (independent of the warm worker)."""
    with tempfile.TemporaryDirectory(prefix="codeassist-fixbench-") as folder:
        file = Path(folder) / "candidate.py"
        file.write_text(text, encoding="utf-8")
        completed = subprocess.run([sys.executable, "-m", "mypy", *MYPY_ARGS, "--cache-dir", str(Path(folder) / "cache"),
                                    str(file)], capture_output=True, text=True, cwd=folder, timeout=120)
    problems = []
    for line in completed.stdout.splitlines():
        parts = line.split(":", 4)
        if len(parts) == 5 and parts[3].strip() == "error":
            message, _, code = parts[4].strip().rpartition("  [")
            problems.append(typecheck.TypeProblem(int(parts[1]) - 1, int(parts[2]) - 1, code.rstrip("]"), message))
    return [p for p in problems if p.code not in typecheck.IGNORED_CODES and not typecheck.imprecise_inference(p)]


def cases(count: int, seed: int) -> list[dict[str, Any]]:
    """Mutated functions with the diagnostic mypy reports for the mutation."""
    with gzip.open(HUMANEVAL, "rt") as handle:
        problems = [json.loads(line) for line in handle]
    random.Random(seed).shuffle(problems)
    quotas = {kind: round(quota * count / sum(QUOTAS.values())) for kind, quota in QUOTAS.items()}
    found: list[dict[str, Any]] = []
    for problem in problems:
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        for kind, mutated in mutations(prompt, solution, problem["entry_point"]):
            if quotas.get(kind, 0) <= 0:
                continue
            check = typecheck.check_edit(prompt + solution, mutated, language_id="python")
            if not check.ran or not check.new_errors:
                continue
            error = check.new_errors[0]
            lines = mutated.split("\n")
            start = sum(len(line) + 1 for line in lines[:error.line]) + error.column
            end = sum(len(line) + 1 for line in lines[:error.line]) + len(lines[error.line])
            found.append({"task_id": problem["task_id"], "kind": kind, "text": mutated, "start": start, "end": end,
                          "message": f"{error.message}  [{error.code}]", "diagnostic": error,
                          "test": f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"})
            quotas[kind] -= 1
            break  # one case per function
        if sum(quotas.values()) <= 0:
            break
    return found


def judged(before: str, after: str, diagnostic: typecheck.TypeProblem) -> tuple[bool, bool]:
    """(diagnostic gone, no new error) by a fresh mypy run on both files."""
    old, new = cli_errors(before), cli_errors(after)
    matched = [p for p in old if p.line == diagnostic.line and p.message == diagnostic.message]
    still = len(typecheck.introduced(after, before, new, matched)) < len(matched)
    added = typecheck.introduced(before, after, old, new)
    return not still, not added


async def run(args: argparse.Namespace) -> dict[str, Any]:
    chosen = cases(args.cases, args.seed)
    earlier: list[dict[str, Any]] = []
    if args.resume is not None:  # a run stopped by its time budget: go on after its cases
        earlier = json.loads(args.resume.read_text())["rows"]
        chosen = chosen[len(earlier):]
    settings = Settings()
    settings.actions.model.name = args.quality_model
    service = CompletionService(settings)
    service.wait_until_loaded()
    service.worker.quality_loaded.wait()
    runner = ActionRunner(service, settings.actions, {})
    model = service.quality_backend.model_id if service.quality_backend else None
    rows = []
    deadline = time.monotonic() + args.time_budget
    try:
        for number, case in enumerate(chosen):
            if time.monotonic() > deadline:
                break
            text = case["text"]
            uri = f"file:///tmp/codeassist-fixbench/{case['task_id'].replace('/', '_')}.py"
            view = DocumentView.of(uri, text, 1, "python")
            target = next(a.target for a in list_actions(view, case["start"], case["start"],
                                                         [(case["start"], case["end"], case["message"])])
                          if a.target.action == "fix")
            started = time.perf_counter()
            outcome = await runner.resolve(target, view, path="")
            elapsed = (time.perf_counter() - started) * 1000
            raw = outcome.replacement
            if raw is None and outcome.candidates and outcome.candidates[-1].accepted:
                raw = outcome.candidates[-1].checked.replacement  # type: ignore[union-attr]  # refused by the checks
            row: dict[str, Any] = {"task_id": case["task_id"], "kind": case["kind"], "message": case["message"],
                                   "ms": round(elapsed), "offered": outcome.replacement is not None,
                                   "reason": outcome.reason, "edit": raw is not None}
            if raw is not None:
                after = raw.apply(text)
                gone, clean = judged(text, after, case["diagnostic"])
                row.update(gone=gone, clean=clean, tests=run_tests(after + case["test"]))
            row["fixed"] = bool(row["offered"] and row.get("gone") and row.get("clean"))
            row["offered_but_wrong"] = bool(row["offered"] and not (row.get("gone") and row.get("clean")))
            row["raw_wrong"] = bool(row["edit"] and not (row.get("gone") and row.get("clean")))
            rows.append(row)
            print(f"  {number + 1:3}/{len(chosen)} {case['task_id']:<14} {case['kind']:<15} offered={row['offered']!s:<5} "
                  f"gone={row.get('gone')!s:<5} clean={row.get('clean')!s:<5} tests={row.get('tests')!s:<5} "
                  f"{elapsed:6.0f} ms {outcome.reason[:70]}", file=sys.stderr)
    finally:
        service.close()
        typecheck.shutdown()
    rows = earlier + rows
    total = len(rows)
    offered = [r for r in rows if r["offered"]]
    by_kind: dict[str, dict[str, int]] = {}
    for row in rows:
        entry = by_kind.setdefault(row["kind"], {"cases": 0, "fixed": 0, "offered": 0, "offered_but_wrong": 0})
        entry["cases"] += 1
        entry["fixed"] += row["fixed"]
        entry["offered"] += row["offered"]
        entry["offered_but_wrong"] += row["offered_but_wrong"]
    times = [r["ms"] for r in rows]
    return {
        "model": model,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cases": total,
        "fixed": sum(r["fixed"] for r in rows),
        "fixed_share": sum(r["fixed"] for r in rows) / total if total else 0.0,
        "offered": len(offered),
        "offered_but_wrong": sum(r["offered_but_wrong"] for r in rows),
        "offered_but_wrong_share": sum(r["offered_but_wrong"] for r in rows) / total if total else 0.0,
        "offered_tests_pass": sum(bool(r.get("tests")) for r in offered),
        "model_edits": sum(r["edit"] for r in rows),
        "unchecked_wrong": sum(r["raw_wrong"] for r in rows),
        "by_kind": by_kind,
        "ms": {"p50": percentile(times, 0.5), "p90": percentile(times, 0.9), "max": max(times) if times else None},
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=36)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--time-budget", type=float, default=600, help="seconds of fixing; stops early")
    parser.add_argument("--quality-model", default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--resume", type=Path, default=None,
                        help="a result file of a run stopped by its time budget: fix the cases it did not reach")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"{'kind':<16}{'cases':>6}{'fixed':>7}{'offered':>9}{'wrong':>7}")
    for kind, row in sorted(result["by_kind"].items()):
        print(f"{kind:<16}{row['cases']:>6}{row['fixed']:>7}{row['offered']:>9}{row['offered_but_wrong']:>7}")
    print(f"fixed {result['fixed']}/{result['cases']} ({result['fixed_share']:.0%}), offered {result['offered']}, "
          f"offered-but-wrong {result['offered_but_wrong']} (without the checks the model's edits had "
          f"{result['unchecked_wrong']} wrong of {result['model_edits']}); offered fixes passing HumanEval tests "
          f"{result['offered_tests_pass']}/{result['offered']}; time p50 {result['ms']['p50']:.0f} ms, "
          f"p90 {result['ms']['p90']:.0f} ms ({result['model']})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.output.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
