"""Agent benchmark: multi-file tasks on small projects, each judged by hidden checks the agent never sees.

Each task under benchmarks/agent_tasks/ has `project/` (what the agent works on, with its own visible
tests where the task has them), `task.json` (the instruction) and `check/` (hidden tests, copied in
only to judge). The agent runs in process on the quality tier (the embedded coder model), exactly as
the `codeassist.agent` command does; its edit is applied to a scratch copy, then the hidden checks run.
Solved: the checks pass. For every unsolved task the workspace must stay unchanged (no edit offered).
Prints a table; writes benchmarks/results/agent.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codeassist_lsp.actions.prompts import ActionPrompt  # noqa: E402
from codeassist_lsp.actions.runner import ActionRunner  # noqa: E402
from codeassist_lsp.agent.run import Agent  # noqa: E402
from codeassist_lsp.agent.workspace import StagedWorkspace  # noqa: E402
from codeassist_lsp.config import AgentSettings, parse_settings  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402

TASKS = ROOT / "benchmarks" / "agent_tasks"


def hidden_checks(folder: Path, language: str) -> bool:
    """Run the task's hidden checks in the (edited) copy."""
    if language == "python":
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   *sorted(p.name for p in folder.glob("check_*.py"))]
    else:
        command = ["node", "--test", "check.test.js"]
    return subprocess.run(command, cwd=folder, capture_output=True, timeout=120).returncode == 0


async def run_task(task: Path, runner: ActionRunner | None, agent_settings: AgentSettings) -> dict[str, Any]:
    """One task: the agent on a copy, its edit applied to the copy, the hidden checks."""
    spec = json.loads((task / "task.json").read_text())
    with tempfile.TemporaryDirectory(prefix=f"agent-{task.name}-") as scratch:
        work = Path(scratch) / "project"
        shutil.copytree(task / "project", work)
        before = {p.name: p.read_text() for p in work.iterdir() if p.is_file()}
        generate = None
        if runner is not None:
            async def generate(prompt: ActionPrompt, max_tokens: int) -> str:
                return (await runner.generate(prompt, max_tokens=max_tokens)).text

            generate.backend = runner.backend  # type: ignore[attr-defined]
        started = time.perf_counter()
        context = runner.service.settings.actions.model.context_size if runner is not None else 4096
        result = await Agent(StagedWorkspace(work), generate, settings=agent_settings,
                             context_size=context).run(spec["instruction"])
        seconds = time.perf_counter() - started
        for path, replacement in result.changes.items():
            target = work / path
            target.write_text(replacement.apply(target.read_text()))
        offered = bool(result.changes)
        for check in (task / "check").iterdir():
            shutil.copy(check, work / check.name)
        solved = offered and hidden_checks(work, spec["language"])
        unchanged = all((work / name).read_text() == text for name, text in before.items())
    return {"task": task.name, "language": spec["language"], "instruction": spec["instruction"],
            "operation": result.plan.get("operation"), "plan": result.plan, "offered": offered, "solved": solved,
            "unchanged_when_unsolved": solved or unchanged, "model_calls": result.model_calls,
            "steps": len(result.transcript), "seconds": round(seconds, 1), "summary": result.summary,
            "tests_before": result.tests_before.summary if result.tests_before else None,
            "tests_after": result.tests_after.summary if result.tests_after else None}


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Load the quality tier once, then run every task."""
    runner = None
    service = None
    if not args.no_model:
        settings = parse_settings({"feedback": {"enabled": False}, "cache": {"disk": False}})
        service = CompletionService(settings)
        runner = ActionRunner(service, settings.actions)
        await runner.until_ready(600)
    rows = []
    try:
        for task in sorted(p for p in TASKS.iterdir() if (p / "task.json").exists()):
            if args.only and task.name not in args.only.split(","):
                continue
            row = await run_task(task, runner, AgentSettings(tool_loop=args.tool_loop))
            rows.append(row)
            print(f"  {row['task']}: {'solved' if row['solved'] else 'unsolved'} ({row['seconds']} s, "
                  f"{row['model_calls']} model calls) {row['summary'][:100]}", file=sys.stderr)
    finally:
        if service is not None:
            service.close()
    return rows


def main() -> int:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated task names")
    parser.add_argument("--no-model", action="store_true", help="deterministic plans only (no code model)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "agent.json"))
    parser.add_argument("--tool-loop", action="store_true", help="agent.toolLoop on: the model drives tools")
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    print("\n| task | operation | solved | offered | workspace unchanged if unsolved | model calls | steps | s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['task']} | {row['operation'] or '-'} | {'yes' if row['solved'] else 'no'} | "
              f"{'yes' if row['offered'] else 'no'} | {'yes' if row['unchanged_when_unsolved'] else '**no**'} | "
              f"{row['model_calls']} | {row['steps']} | {row['seconds']} |")
    solved = sum(r["solved"] for r in rows)
    unsolved = [r for r in rows if not r["solved"]]
    clean = sum(r["unchanged_when_unsolved"] for r in unsolved)
    print(f"\nsolved {solved}/{len(rows)} ({solved / max(1, len(rows)):.0%}; bar 40%); "
          f"unsolved that left the workspace unchanged: {clean}/{len(unsolved)} (bar: all)")
    Path(args.out).write_text(json.dumps({"started": time.strftime("%Y-%m-%d %H:%M"), "tool_loop": args.tool_loop,
                                          "tasks": rows,
                                          "solved": solved, "total": len(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
