"""Best-of-N that executes: HumanEval through "generate from comment", greedy N=1 vs best-of-4/8 with the test stage.

    .venv/bin/python benchmarks/execution_bench.py --problems 16 --seed 0

One run generates 8 candidates per problem (candidate 0 greedy, then 7 samples side by side in one batch,
or one at a time with `--one-at-a-time`; `actions.bestOfN` = 8, no time budget) through the same
ActionRunner the LSP resolve uses, the test stage on (the prompt's own
doctests/examples and agreement inputs, in the sandbox). N=1, N=4 and N=8 are then chosen from the
first 1, 4 and 8 candidates of that run with `rank_candidates` (tests passed, agreement, score), and
"N=8 score only" with the previous rule (the score, no execution). The hidden HumanEval tests are run
afterwards on the chosen candidates, for scoring only: the pipeline never sees them.

`--problems K` takes the first K of a seeded shuffle of the 164 problems, so a run stopped early (time
budget) has scored a random subset; `--resume FILE` keeps the rows of an earlier run (its JSON or
.partial.json) and runs only the problems not in it (the full run on a 2-core CPU takes hours).

Times: N=1 is the greedy candidate's prompt + generation; side by side, N=8 adds the batch's wall time
and N=4 the batch's time scaled by the measured cost of a 3-wide step against a 7-wide one (one at a time:
the sum of the candidates' times); each plus the test stage of its candidates.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp.actions.runner import ActionRunner, Candidate, rank_candidates  # noqa: E402
from codeassist_lsp.actions.targets import DocumentView, generation_target  # noqa: E402
from codeassist_lsp.config import Settings  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402
from codeassist_lsp.verify.sandbox import Sandbox, SandboxLimits  # noqa: E402

HUMANEVAL = Path(os.environ.get("HUMANEVAL", "/work/shared/data/humaneval/HumanEval.jsonl.gz"))
RESULTS = ROOT / "benchmarks" / "results" / "execution.json"
SIZES = (1, 4, 8)
SCORING = Sandbox("auto", SandboxLimits(cpu_s=10, memory_mb=2048, wall_s=15))


def hidden_tests_pass(program: str, problem: dict[str, Any]) -> bool:
    """Scoring only: the problem's hidden tests against a chosen program, in the sandbox."""
    source = f"{program}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
    with SCORING.scratch({"scored.py": source}) as folder:
        return SCORING.run([sys.executable, "-I", "scored.py"], folder).ok


def choose(candidates: list[Candidate], size: int, *, execute: bool) -> Candidate | None:
    """The candidate best-of-`size` picks among the first `size` (execute=False: the score alone, as before)."""
    subset = [c for c in candidates if c.index < size]
    if not execute:
        saved = [(c.execution, c.agreement) for c in subset]
        for c in subset:
            c.execution, c.agreement = None, 0.0
        best = rank_candidates(subset)
        for c, (report, agreement) in zip(subset, saved):
            c.execution, c.agreement = report, agreement
        return best
    return rank_candidates(subset)


def generation_ms(candidates: list[Candidate], size: int, side_by_side: bool, step_ms: dict[int, float]) -> float:
    """Generation time of best-of-`size` from the first `size` candidates (see the module docstring)."""
    first = [c for c in candidates if c.index < size]
    if not side_by_side:
        return sum(c.result.generate_ms + c.result.prompt_ms for c in first)
    greedy = sum(c.result.generate_ms + c.result.prompt_ms for c in first if c.index == 0)
    batch = max((c.result.generate_ms + c.result.prompt_ms for c in candidates if c.index > 0), default=0.0)
    if size >= len(candidates) or size <= 1:
        return greedy + (batch if size > 1 else 0.0)
    narrow, wide = step_ms.get(size - 1), step_ms.get(len(candidates) - 1)
    return greedy + (batch * narrow / wide if narrow and wide else batch * (size - 1) / (len(candidates) - 1))


async def run(runner: ActionRunner, problems: list[dict[str, Any]], deadline: float, partial: Path,
              dump: Path | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every problem: 8 candidates, the test stage, then the choices of each rule and their hidden-test result."""
    side_by_side = runner.settings.side_by_side
    step_ms: dict[int, float] = getattr(runner.service.quality_backend, "parallel_step_ms", {})
    done = {row["task_id"] for row in rows}
    problems = [p for p in problems if p["task_id"] not in done]
    for number, problem in enumerate(problems):
        if time.monotonic() > deadline:
            print(f"  time budget reached after {number} problems", file=sys.stderr)
            break
        prompt = problem["prompt"]
        view = DocumentView.of(f"file:///he/{problem['task_id'].replace('/', '_')}.py", prompt, 1, "python")
        quote = max(prompt.rfind('"""'), prompt.rfind("'''"))
        target = generation_target(view, quote) if quote >= 0 else None
        if target is None:
            rows.append({"task_id": problem["task_id"], "skipped": "no generate-from-comment target"})
            continue
        started = time.perf_counter()
        outcome = await runner.resolve(target, view)
        elapsed = (time.perf_counter() - started) * 1000
        candidates = outcome.candidates
        verdicts: dict[str, bool] = {}

        def passes(candidate: Candidate | None) -> bool:
            if candidate is None or candidate.checked is None or not candidate.accepted:
                return False
            program = candidate.checked.replacement.apply(prompt)
            if program not in verdicts:
                verdicts[program] = hidden_tests_pass(program, problem)
            return verdicts[program]

        row: dict[str, Any] = {"task_id": problem["task_id"], "ms": round(elapsed), "candidates": len(candidates),
                               "side_by_side": side_by_side}
        for size in SIZES:
            best = choose(candidates, size, execute=True)
            row[f"n{size}"] = passes(best)
            row[f"n{size}_chosen"] = best.index if best else None
            row[f"oracle{size}"] = any(passes(c) for c in candidates if c.index < size)
            generation = generation_ms(candidates, size, side_by_side, step_ms)
            tests = sum(c.execution.elapsed_ms for c in candidates if c.index < size and c.execution is not None)
            row[f"n{size}_ms_estimate"] = round(generation + tests)
        best = choose(candidates, 8, execute=False)
        row["n8_score_only"] = passes(best)
        reports = [c.execution for c in candidates if c.execution is not None]
        row["examples_run"] = reports[0].run if reports else 0
        row["test_stage_ms"] = round(sum(r.elapsed_ms for r in reports))
        row["summary"] = outcome.summary
        rows.append(row)
        if dump is not None:
            with dump.open("a", encoding="utf-8") as handle:
                for c in candidates:
                    handle.write(json.dumps({
                        "task_id": problem["task_id"], "index": c.index, "accepted": c.accepted,
                        "text": c.checked.replacement.new_text if c.checked is not None else c.result.text,
                        "score": None if c.score == float("-inf") else round(c.score, 4),
                        "tests": None if c.execution is None else c.execution.counts,
                        "agreement": c.agreement, "passed_hidden": passes(c)}) + "\n")
        print(f"  {number + 1:3}/{len(problems)} {problem['task_id']:<14} n1={row['n1']!s:<5} n4={row['n4']!s:<5} "
              f"n8={row['n8']!s:<5} score-only={row['n8_score_only']!s:<5} oracle8={row['oracle8']!s:<5} "
              f"examples {row['examples_run']} '{row['summary']}' {elapsed / 1000:6.1f} s", file=sys.stderr)
        partial.write_text(json.dumps(summarize(rows), indent=2) + "\n")
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """pass@1 per rule, the oracle and the time over the problems run so far."""
    done = [r for r in rows if "skipped" not in r]
    count = max(1, len(done))

    def share(key: str) -> float:
        return round(sum(bool(r[key]) for r in done) / count, 4)

    summary: dict[str, Any] = {"problems_run": len(done), "skipped": len(rows) - len(done)}
    # Times from the problems run side by side when there are any (a resumed run may hold older rows
    # generated one at a time, whose times are not comparable).
    timed = [r for r in done if r.get("side_by_side")] or done
    summary["timing"] = {"side_by_side": bool(timed and timed[0].get("side_by_side")), "problems": len(timed)}
    for size in SIZES:
        summary[f"pass_at_1_n{size}"] = share(f"n{size}")
        summary[f"oracle_n{size}"] = share(f"oracle{size}")
        summary[f"ms_per_problem_n{size}_estimate"] = (
            round(statistics.mean(r[f"n{size}_ms_estimate"] for r in timed)) if timed else None)
    summary["pass_at_1_n8_score_only"] = share("n8_score_only")
    summary["ms_per_problem_n8_measured"] = round(statistics.mean(r["ms"] for r in timed)) if timed else None
    summary["test_stage_ms_per_problem"] = round(statistics.mean(r["test_stage_ms"] for r in timed)) if timed else None
    summary["problems_with_examples"] = sum(1 for r in done if r["examples_run"])
    summary["rows"] = rows
    return summary


def table(report: dict[str, Any]) -> str:
    """The markdown table of a report."""
    he = report["humaneval"]
    timing = he.get("timing", {})
    mode = "side by side" if timing.get("side_by_side") else "one at a time"
    lines = [f"HumanEval generate-from-comment, {he['problems_run']} problems (seeded order: seed {report['seed']}, "
             f"`--problems {report['problems_requested']}`), model {report['model']}, {report['cpus']} CPUs; "
             f"times over {timing.get('problems', he['problems_run'])} problems, samples {mode}",
             "", "| rule | pass@1 | oracle (any of the N passes) | time per problem |", "|---|---|---|---|"]
    for size in SIZES:
        label = "greedy N=1" if size == 1 else f"best-of-{size}, executed"
        lines.append(f"| {label} | {he[f'pass_at_1_n{size}']:.3f} | {he[f'oracle_n{size}']:.3f} | "
                     f"{he[f'ms_per_problem_n{size}_estimate'] / 1000:.1f} s (est.) |")
    lines.append(f"| best-of-8, score only (previous rule) | {he['pass_at_1_n8_score_only']:.3f} | "
                 f"{he['oracle_n8']:.3f} | {he['ms_per_problem_n8_measured'] / 1000:.1f} s (measured) |")
    lines.append("")
    lines.append(f"Test stage: {he['test_stage_ms_per_problem']} ms per problem (all candidates); "
                 f"{he['problems_with_examples']}/{he['problems_run']} problems had examples in the prompt.")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark, print the table, write JSON and markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=16, help="size of the seeded subset (164 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=1800, help="seconds; stops after the problem running then")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--candidates", type=Path, default=None, help="append every candidate to this JSONL file")
    parser.add_argument("--quality-model", default="auto")
    parser.add_argument("--one-at-a-time", action="store_true", help="the samples one after another (A/B)")
    parser.add_argument("--resume", type=Path, default=None, help="keep this earlier run's rows, run the rest")
    args = parser.parse_args()
    with gzip.open(HUMANEVAL, "rt") as handle:
        problems = [json.loads(line) for line in handle]
    order = random.Random(args.seed).sample(range(len(problems)), len(problems))
    problems = [problems[i] for i in order[:args.problems]]
    settings = Settings()
    settings.actions.model.name = args.quality_model
    settings.actions.model.threads = args.threads
    settings.model.threads = args.threads
    settings.actions.best_of_n = max(SIZES)
    settings.actions.best_of_n_budget_ms = 10 ** 9
    settings.actions.run_tests = True
    settings.actions.side_by_side = not args.one_at_a_time
    earlier: list[dict[str, Any]] = []
    if args.resume is not None and args.resume.exists():
        kept = json.loads(args.resume.read_text())
        earlier = (kept.get("humaneval") or kept).get("rows", [])
        print(f"  resuming: {len(earlier)} problems already run", file=sys.stderr)
    service = CompletionService(settings)
    service.wait_until_loaded()
    service.worker.quality_loaded.wait()
    runner = ActionRunner(service, settings.actions, {})
    quality = service.quality_backend
    report: dict[str, Any] = {
        "model": quality.model_id if quality else None, "machine": platform.machine(), "cpus": os.cpu_count(),
        "seed": args.seed, "problems_requested": args.problems, "task_ids": [p["task_id"] for p in problems],
        "sandbox": runner.sandbox.describe(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "settings": {"best_of_n": settings.actions.best_of_n, "max_tokens": settings.actions.max_tokens,
                     "temperature": settings.actions.temperature, "side_by_side": settings.actions.side_by_side},
        "rule": ("tests passed (the prompt's doctests/examples), then agreement with the other candidates on the "
                 "examples' inputs and generated ones, then the score (mean logprob + reviewer - defects, greedy "
                 "margin)"),
    }
    started = time.monotonic()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows = asyncio.run(run(runner, problems, started + args.time_budget, args.output.with_suffix(".partial.json"),
                               args.candidates, earlier))
    finally:
        service.close()
    report["humaneval"] = summarize(rows)
    report["wall_s"] = round(time.monotonic() - started)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = table(report)
    print(text)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
