"""Code actions and hover: latency per action with the embedded model, and HumanEval through "generate from comment".

    .venv/bin/python benchmarks/actions_bench.py --runs 3 --limit 20 --best-of 4

Latency: each action resolved `--runs` times on small real snippets (the same runner the LSP
resolve uses), plus the model-free code-action list. Quality: HumanEval prompts (signature +
docstring = the comment) through the generate-from-comment path; N=1 (greedy) and best-of-N come
from the same run (candidate 0 is the greedy one), tests run in a sandboxed subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp.actions import runner as action_runner  # noqa: E402
from codeassist_lsp.actions.runner import ActionRunner, HoverCache  # noqa: E402
from codeassist_lsp.actions.targets import DocumentView, generation_target, hover_target, list_actions  # noqa: E402
from codeassist_lsp.config import Settings  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402

HUMANEVAL = Path(os.environ.get("HUMANEVAL", "/work/shared/data/humaneval/HumanEval.jsonl.gz"))
RESULTS = ROOT / "benchmarks" / "results" / "actions.json"
TEST_TIMEOUT_S = 10

SNIPPETS = {
    "docstring": ('def word_counts(text):\n    counts = {}\n    for word in text.split():\n'
                  '        counts[word] = counts.get(word, 0) + 1\n    return counts\n', "counts = {}"),
    "fix": ("def average(values):\n    total = sum(values)\n    return totl / len(values)\n",
            "totl", "undefined name 'totl'"),
    "generate": ('def is_palindrome(text):\n    """Return True when text reads the same backwards, ignoring case."""\n',
                 'ignoring case'),
    "refactor": ("def total(values):\n    result = 0\n    for v in values:\n        result = result + v\n    return result\n",
                 "    result = 0", "    return result\n"),
    "explain": ("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",),
    "hover": ("def clamp(value, low, high):\n    return max(low, min(value, high))\n", "clamp"),
}


# Copy-edits on a longer function (the latency-vs-floor part only): the fix is near the top, so the
# model writes the fixed line and copies the rest, which is where prompt-lookup speculation pays.
LONG_FUNCTION = (
    "def summarize(orders):\n"
    "    totals = {}\n"
    "    for order in ordres:\n"
    "        customer = order[\"customer\"]\n"
    "        amount = order[\"quantity\"] * order[\"price\"]\n"
    "        if order.get(\"coupon\"):\n"
    "            amount = amount * (1 - order[\"coupon\"] / 100)\n"
    "        totals[customer] = totals.get(customer, 0) + amount\n"
    "    best = None\n"
    "    for customer, amount in totals.items():\n"
    "        if best is None or amount > totals[best]:\n"
    "            best = customer\n"
    "    average = sum(totals.values()) / len(totals) if totals else 0\n"
    "    return {\"totals\": totals, \"best\": best, \"average\": average}\n"
)
COPY_EDITS = {"fix_long": (LONG_FUNCTION, "ordres", "undefined name 'ordres'")}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def _limits() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_CPU, (TEST_TIMEOUT_S, TEST_TIMEOUT_S))
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
    os.setsid()


def run_tests(program: str) -> bool:
    """Run a HumanEval program in an isolated interpreter, in a temp dir, with limits and a timeout."""
    with tempfile.TemporaryDirectory(prefix="codeassist-he-") as folder:
        path = Path(folder) / "candidate.py"
        path.write_text(program, encoding="utf-8")
        try:
            completed = subprocess.run([sys.executable, "-I", str(path)], cwd=folder, env={"PATH": "/usr/bin:/bin"},
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       timeout=TEST_TIMEOUT_S, preexec_fn=_limits)
        except subprocess.TimeoutExpired:
            return False
        return completed.returncode == 0


async def latency(runner: ActionRunner, runs: int) -> dict[str, Any]:
    """p50/p99 per action over `runs` resolves each (+ the code-action list, 200 calls)."""
    timings: dict[str, list[float]] = {k: [] for k in SNIPPETS}
    outcomes: dict[str, list[str]] = {k: [] for k in SNIPPETS}
    list_ms: list[float] = []
    big = "\n\n".join(SNIPPETS[k][0] for k in SNIPPETS) * 20  # ~ 2,000 lines
    big_view = DocumentView.of("file:///bench/big.py", big, 1, "python")
    for i in range(200):
        offset = (i * 7919) % len(big)
        started = time.perf_counter()
        list_actions(big_view, offset, offset + (40 if i % 2 else 0), [(offset, offset + 5, "problem")])
        list_ms.append((time.perf_counter() - started) * 1000)
    for run in range(runs):
        for action, spec in SNIPPETS.items():
            text = spec[0]
            view = DocumentView.of(f"file:///bench/{action}{run}.py", text, 1, "python")
            started = time.perf_counter()
            if action == "hover":
                target = hover_target(view, text.index(spec[1]) + 1)
                assert target is not None
                result = await runner.hover(target, view, HoverCache())  # a cold cache: the model runs
                outcomes[action].append("ok" if result else "empty")
            else:
                if action == "docstring":
                    offset, end, diagnostics = text.index(spec[1]), text.index(spec[1]), []
                elif action == "fix":
                    offset = end = text.index(spec[1])
                    diagnostics = [(offset, offset + len(spec[1]), spec[2])]
                elif action == "generate":
                    offset = end = text.index(spec[1])
                    diagnostics = []
                elif action == "refactor":
                    offset, end, diagnostics = text.index(spec[1]), text.index(spec[2]) + len(spec[2]), []
                else:
                    offset, end, diagnostics = 0, len(text), []
                wanted = {"docstring": "docstring", "fix": "fix", "generate": "generate", "refactor": "refactor",
                          "explain": "explain"}[action]
                listed = [a for a in list_actions(view, offset, end, diagnostics) if a.target.action == wanted]
                assert listed, action
                outcome = await runner.resolve(listed[0].target, view)
                ok = outcome.replacement is not None or outcome.explanation is not None
                outcomes[action].append("ok" if ok else outcome.reason[:80])
            timings[action].append((time.perf_counter() - started) * 1000)
            print(f"  {action:<10} run {run + 1}: {timings[action][-1]:8.0f} ms  {outcomes[action][-1]}", file=sys.stderr)
    table = {action: {"p50_ms": round(statistics.median(v), 1), "p99_ms": round(percentile(v, 0.99), 1),
                      "runs": len(v), "outcomes": outcomes[action]} for action, v in timings.items()}
    table["code_action_list"] = {"p50_ms": round(statistics.median(list_ms), 3),
                                 "p99_ms": round(percentile(list_ms, 0.99), 3), "runs": len(list_ms),
                                 "document_lines": big.count("\n")}
    return table


def _target_for(action: str, view: DocumentView) -> Any:
    """The action's target on its snippet, as the code-action list offers it."""
    spec = SNIPPETS.get(action) or COPY_EDITS[action]
    action = action.split("_")[0]
    text = view.text
    if action == "hover":
        return hover_target(view, text.index(spec[1]) + 1)
    diagnostics: list[tuple[int, int, str]] = []
    if action == "docstring":
        offset = end = text.index(spec[1])
    elif action == "fix":
        offset = end = text.index(spec[1])
        diagnostics = [(offset, offset + len(spec[1]), spec[2])]
    elif action == "generate":
        offset = end = text.index(spec[1])
    elif action == "refactor":
        offset, end = text.index(spec[1]), text.index(spec[2]) + len(spec[2])
    else:
        offset, end = 0, len(text)
    return next(a.target for a in list_actions(view, offset, end, diagnostics) if a.target.action == action)


def bare_floor_ms(backend: Any, prompt: list[int], generated: int) -> float:
    """The physical floor of one model call: its prompt in full batches from an empty cache, then
    `generated` one-token greedy decodes, on the same context; no stop checks, no Python per token
    beyond the decode call."""
    import llama_cpp as lib

    backend._truncate_cache(0)
    started = time.perf_counter()
    for begin in range(0, len(prompt), 512):
        # Named: the batch points into this array, which must outlive llama_decode.
        chunk = (lib.llama_token * len(prompt[begin:begin + 512]))(*prompt[begin:begin + 512])
        if lib.llama_decode(backend._ctx, lib.llama_batch_get_one(chunk, len(chunk))) != 0:
            raise RuntimeError("the floor's prompt decode failed")
    sampler = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    lib.llama_sampler_chain_add(sampler, lib.llama_sampler_init_greedy())
    one = (lib.llama_token * 1)()
    for _ in range(generated):
        one[0] = lib.llama_sampler_sample(sampler, backend._ctx, -1)
        if lib.llama_decode(backend._ctx, lib.llama_batch_get_one(one, 1)) != 0:
            raise RuntimeError("the floor's decode failed")
    elapsed = (time.perf_counter() - started) * 1000
    lib.llama_sampler_free(sampler)
    lib.llama_memory_clear(backend._memory, True)
    backend._cached.clear()
    return elapsed


async def latency_vs_floor(runner: ActionRunner, runs: int) -> dict[str, Any]:
    """Each action cold (empty KV cache) vs its physical floor, and copy-edits with speculation off vs on.

    Every model call an action makes is recorded (prompt tokens, tokens generated); after the run
    the same calls are replayed through `bare_floor_ms` on the same context, so action / floor is
    measured in the same run, on the same machine state.
    """
    backend = runner.backend
    calls: list[tuple[list[int], int, float]] = []
    original_run = runner._run

    async def recording_run(request: Any) -> Any:
        result = await original_run(request)
        calls.append((list(request.prompt_tokens), result.generated_tokens, result.generate_ms))
        return result

    runner._run = recording_run  # type: ignore[method-assign]
    speculation = backend.speculation
    table: dict[str, Any] = {}
    try:
        for action in [*SNIPPETS, *COPY_EDITS]:
            source = (SNIPPETS.get(action) or COPY_EDITS[action])[0]
            modes = (("off", speculation.mode) if action.split("_")[0] in ("docstring", "fix", "refactor")
                     else (speculation.mode,))
            for mode in modes:
                backend.speculation = attrs.evolve(speculation, mode=mode)
                rows = []
                for run in range(runs):
                    view = DocumentView.of(f"file:///bench/{action}-{mode}-{run}.py", source, 1, "python")
                    target = _target_for(action, view)
                    calls.clear()
                    backend._truncate_cache(0)
                    started = time.perf_counter()
                    if action == "hover":
                        text = await runner.hover(target, view, HoverCache())
                    else:
                        outcome = await runner.resolve(target, view)
                        text = (outcome.replacement.new_text if outcome.replacement else outcome.explanation) or ""
                    elapsed = (time.perf_counter() - started) * 1000
                    made = list(calls)
                    floor = sum(bare_floor_ms(backend, prompt, generated) for prompt, generated, _ in made)
                    rows.append({"ms": elapsed, "floor_ms": floor, "prompt_tokens": sum(len(p) for p, _, _ in made),
                                 "generated_tokens": sum(g for _, g, _ in made), "calls": len(made), "text": text,
                                 "generate_ms": sum(ms for _, _, ms in made)})
                    print(f"  {action:<10} {mode:<6} run {run + 1}: {elapsed:7.0f} ms, floor {floor:7.0f} ms, "
                          f"prompt {rows[-1]['prompt_tokens']}, generated {rows[-1]['generated_tokens']}",
                          file=sys.stderr)
                key = action if mode == speculation.mode else f"{action}_no_speculation"
                table[key] = {
                    "p50_ms": round(statistics.median(r["ms"] for r in rows), 1),
                    "floor_p50_ms": round(statistics.median(r["floor_ms"] for r in rows), 1),
                    "ratio_to_floor_p50": round(statistics.median(r["ms"] / r["floor_ms"] for r in rows), 3),
                    "generate_p50_ms": round(statistics.median(r["generate_ms"] for r in rows), 1),
                    "prompt_tokens": rows[0]["prompt_tokens"], "generated_tokens": rows[0]["generated_tokens"],
                    "model_calls": rows[0]["calls"], "runs": runs,
                    "outputs_identical_across_runs": len({r["text"] for r in rows}) == 1, "output": rows[0]["text"],
                }
            if len(modes) == 2:
                plain, fast = table[f"{action}_no_speculation"], table[action]
                table[action]["speedup_vs_no_speculation"] = round(plain["p50_ms"] / fast["p50_ms"], 3)
                # Speculation changes only the generating part; the prompt costs the same either way.
                table[action]["generation_speedup"] = round(plain["generate_p50_ms"] / max(fast["generate_p50_ms"], 1e-3), 3)
                table[action]["identical_to_no_speculation"] = plain["output"] == fast["output"]
    finally:
        backend.speculation = speculation
        runner._run = original_run  # type: ignore[method-assign]
    return table


async def humaneval(runner: ActionRunner, limit: int, best_of: int, seed: int, deadline: float,
                    partial: Path | None = None, start: int = 0, dump: Path | None = None) -> dict[str, Any]:
    """pass@1 of N=1 (greedy) and best-of-N on the same candidates; stops at the deadline."""
    with gzip.open(HUMANEVAL, "rt") as handle:
        problems = [json.loads(line) for line in handle]
    problems = problems[start:]
    if limit < len(problems):
        problems = random.Random(seed).sample(problems, limit)
    runner.settings.best_of_n = best_of
    runner.settings.best_of_n_budget_ms = 10 ** 9
    rows = []
    for number, problem in enumerate(problems):
        if time.monotonic() > deadline:
            break
        prompt = problem["prompt"]
        view = DocumentView.of(f"file:///he/{problem['task_id'].replace('/', '_')}.py", prompt, 1, "python")
        quote = max(prompt.rfind('"""'), prompt.rfind("'''"))  # some prompts use ''' docstrings
        target = generation_target(view, quote) if quote >= 0 else None
        if target is None:
            rows.append({"task_id": problem["task_id"], "skipped": "no generate-from-comment target"})
            continue
        started = time.perf_counter()
        outcome = await runner.resolve(target, view)
        elapsed = (time.perf_counter() - started) * 1000
        test = f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
        passed: dict[str, bool] = {}

        def passes(candidate: Any) -> bool:
            if candidate is None or not candidate.accepted:
                return False
            program = candidate.checked.replacement.apply(prompt)
            if program not in passed:
                passed[program] = run_tests(program + test)
            return passed[program]

        greedy = next((c for c in outcome.candidates if c.index == 0), None)
        row = {"task_id": problem["task_id"], "n1": passes(greedy), "best": passes(outcome.best),
               "any": any(passes(c) for c in outcome.candidates), "candidates": len(outcome.candidates),
               "accepted": sum(c.accepted for c in outcome.candidates),
               "chosen": outcome.best.index if outcome.best else None, "ms": round(elapsed)}
        rows.append(row)
        if dump is not None:  # every candidate with its scores and test result (offline analysis of rules)
            with dump.open("a", encoding="utf-8") as handle:
                for c in outcome.candidates:
                    handle.write(json.dumps({
                        "task_id": problem["task_id"], "index": c.index, "accepted": c.accepted,
                        "text": c.checked.replacement.new_text if c.checked is not None else c.result.text,
                        "mean_logprob": round(c.result.mean_logprob, 5), "tokens": len(c.result.token_logprobs),
                        "finish": c.result.finish_reason, "defects": c.defects,
                        "findings": len(c.checked.verdict.findings) if c.checked is not None else 0,
                        "reviewer": None if c.reviewer is None else round(c.reviewer, 5),
                        "score": None if c.score == float("-inf") else round(c.score, 5),
                        "chosen": c is outcome.best, "passed": passes(c)}) + "\n")
        print(f"  {number + 1:3}/{len(problems)} {problem['task_id']:<14} n1={row['n1']!s:<5} best={row['best']!s:<5} "
              f"any={row['any']!s:<5} accepted {row['accepted']}/{row['candidates']} chosen {row['chosen']} "
              f"{elapsed:7.0f} ms", file=sys.stderr)
        if partial is not None:
            partial.write_text(json.dumps(summarize(rows, limit, best_of), indent=2) + "\n")
    return summarize(rows, limit, best_of)


def summarize(rows: list[dict[str, Any]], limit: int, best_of: int) -> dict[str, Any]:
    """pass@1 (N=1, best-of-N) and the oracle over the rows run so far."""
    done = [r for r in rows if "skipped" not in r]
    count = max(1, len(done))
    return {
        "problems_run": len(done), "problems_requested": limit, "skipped": len(rows) - len(done), "best_of_n": best_of,
        "pass_at_1_n1": round(sum(r["n1"] for r in done) / count, 4),
        "pass_at_1_best_of_n": round(sum(r["best"] for r in done) / count, 4),
        "pass_at_n_oracle": round(sum(r["any"] for r in done) / count, 4),
        "mean_ms_per_problem": round(statistics.mean([r["ms"] for r in done]), 1) if done else None,
        "rule": (f"greedy + {best_of - 1} samples; verified candidates scored by mean token logprob + "
                 f"{action_runner.REVIEW_WEIGHT} x reviewer (mean logprob of the docstring given the code) - "
                 f"{action_runner.DEFECT_PENALTY} x static defects - {action_runner.LENGTH_PENALTY} if cut - "
                 f"{action_runner.FINDING_PENALTY} x SAST findings + {action_runner.AGREEMENT_BONUS} x agreement; "
                 f"greedy +{action_runner.GREEDY_MARGIN}"),
        "rows": rows,
    }


def main() -> None:
    """Run the benchmark, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="resolves per action for latency")
    parser.add_argument("--limit", type=int, default=20, help="HumanEval problems (random sample; 164 = all)")
    parser.add_argument("--best-of", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=1800, help="seconds for HumanEval; stops early")
    parser.add_argument("--start", type=int, default=0, help="skip the first problems (resume a run)")
    parser.add_argument("--max-tokens", type=int, default=0, help="tokens per generated candidate (0: the setting)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="each action vs its physical floor, and copy-edits with speculation off vs on")
    parser.add_argument("--skip-humaneval", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--candidates", type=Path, default=None,
                        help="append every HumanEval candidate (text, scores, test result) to this JSONL file")
    parser.add_argument("--temperature", type=float, default=0.0, help="of the sampled candidates (0: the setting)")
    parser.add_argument("--speculation", default="auto", choices=["auto", "prompt-lookup", "draft-model", "off"],
                        help="speculation.mode (auto: the product default)")
    parser.add_argument("--quality-model", default="auto",
                        help="actions.model.name: the quality tier's model (auto: the code model when installed)")
    args = parser.parse_args()
    settings = Settings()
    settings.actions.model.name = args.quality_model
    settings.actions.model.threads = args.threads
    settings.model.threads = args.threads
    settings.speculation.mode = args.speculation
    if args.max_tokens:
        settings.actions.max_tokens = args.max_tokens
    if args.temperature:
        settings.actions.temperature = args.temperature
    service = CompletionService(settings)
    service.wait_until_loaded()
    service.worker.quality_loaded.wait()
    runner = ActionRunner(service, settings.actions, {})
    load = os.getloadavg()
    quality = service.quality_backend
    report: dict[str, Any] = {
        "model": quality.model_id if quality else None, "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load],
        "settings": {"best_of_n": settings.actions.best_of_n, "max_tokens": settings.actions.max_tokens,
                     "temperature": settings.actions.temperature, "speculation": settings.speculation.mode},
    }
    try:
        if not args.skip_latency:
            print("latency:", file=sys.stderr)
            report["latency"] = asyncio.run(latency(runner, args.runs))
        if args.floor:
            print("latency vs the physical floor (cold KV cache), speculation off vs on:", file=sys.stderr)
            runner.settings.best_of_n = 1  # one greedy candidate: the floor of one call is defined
            report["floor"] = asyncio.run(latency_vs_floor(runner, args.runs))
        if not args.skip_humaneval:
            print("humaneval:", file=sys.stderr)
            deadline = time.monotonic() + args.time_budget
            report["humaneval"] = asyncio.run(humaneval(runner, args.limit, args.best_of, args.seed, deadline,
                                                        partial=args.output.with_suffix(".partial.json"),
                                                        start=args.start, dump=args.candidates))
    finally:
        service.close()
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if "latency" in report:
        print(f"{'action':<18}{'p50 ms':>10}{'p99 ms':>10}{'runs':>6}  outcomes")
        for action, row in report["latency"].items():
            print(f"{action:<18}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['runs']:>6}  {','.join(row.get('outcomes', []))[:60]}")
    if "floor" in report:
        print(f"{'action (cold KV)':<30}{'p50 ms':>9}{'floor ms':>10}{'ratio':>7}{'prompt':>8}{'gen':>6}"
              f"{'spec x':>8}{'gen x':>7}  identical")
        for action, row in report["floor"].items():
            print(f"{action:<30}{row['p50_ms']:>9}{row['floor_p50_ms']:>10}{row['ratio_to_floor_p50']:>7}"
                  f"{row['prompt_tokens']:>8}{row['generated_tokens']:>6}{row.get('speedup_vs_no_speculation', ''):>8}"
                  f"{row.get('generation_speedup', ''):>7}"
                  f"  {row.get('identical_to_no_speculation', '')}")
    if "humaneval" in report:
        he = report["humaneval"]
        print(f"HumanEval ({he['problems_run']} problems, best-of-{he['best_of_n']}): pass@1 N=1 {he['pass_at_1_n1']:.3f}  "
              f"best-of-N {he['pass_at_1_best_of_n']:.3f}  (any candidate {he['pass_at_n_oracle']:.3f}); "
              f"{he['mean_ms_per_problem']} ms/problem")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
