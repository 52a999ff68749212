"""Agent benchmark: multi-file tasks on small projects, each judged by hidden checks the agent never sees.

Each task under benchmarks/agent_tasks/ has `project/` (what the agent works on, with its own visible
tests where the task has them), `task.json` (the instruction) and `check/` (hidden tests, copied in
only to judge). The agent runs in process on the quality tier (the embedded coder model), exactly as
the `codeassist.agent` command does; its edit is applied to a scratch copy, then the hidden checks run.
Solved: the checks pass. Tasks marked `held_out` were added after the agent was tuned on the others
and are reported separately; their first run, before anything was changed for them, is kept. For every unsolved task the workspace must stay unchanged (no edit offered).
With --remote the quality tier is llama.cpp's llama-server (benchmarks/build_peer.sh) on loopback,
serving the same GGUF over the OpenAI-compatible API: the agent and the tasks are unchanged.
Prints a table; writes benchmarks/results/agent.json (agent_remote.json with --remote).
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
    if any(folder.glob("check_*.py")):
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
        generate = sample = None
        tokens = {"prompt": 0, "generated": 0}

        def count(result: Any) -> str:
            tokens["prompt"] += result.prompt_tokens
            tokens["generated"] += result.generated_tokens
            return result.text

        if runner is not None:
            async def generate(prompt: ActionPrompt, max_tokens: int) -> str:
                return count(await runner.generate(prompt, max_tokens=max_tokens))

            generate.backend = runner.backend  # type: ignore[attr-defined]

            async def sample(prompt: ActionPrompt, max_tokens: int, count_: int) -> list[str]:
                return [count(r) for r in await runner.sample(prompt, max_tokens=max_tokens, count=count_)]
        started = time.perf_counter()
        context = runner.service.settings.actions.model.context_size if runner is not None else 4096
        result = await Agent(StagedWorkspace(work), generate, settings=agent_settings,
                             context_size=context, sample=sample).run(spec["instruction"])
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
            "prompt_tokens": tokens["prompt"], "generated_tokens": tokens["generated"],
            "tests_before": result.tests_before.summary if result.tests_before else None,
            "tests_after": result.tests_after.summary if result.tests_after else None,
            "held_out": bool(spec.get("held_out"))}


def start_remote(threads: int) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """llama-server with the coder model on loopback, and the quality-tier settings that use it."""
    import urllib.request

    from benchmarks import typing_replay as replay
    from codeassist_lsp.engine.models import cache_dir

    model = cache_dir() / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    if not replay.peer_binary().exists() or not model.exists():
        raise SystemExit("--remote needs llama-server (benchmarks/build_peer.sh) and the coder model installed")
    port = replay._free_port()
    log = open(Path(tempfile.gettempdir()) / "agent-bench-llama-server.log", "wb")
    process = subprocess.Popen([str(replay.peer_binary()), "-m", str(model), "--host", "127.0.0.1", "--port",
                                str(port), "-c", "8192", "-np", "1", "-t", str(threads), "-ngl", "0"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:  # the model loads before /health answers 200
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"llama-server did not start; see {log.name}")
        time.sleep(0.5)
    remote = {"engine": "remote", "remote": {"url": url, "model": "qwen2.5-coder-1.5b", "timeoutMs": 600000}}
    return process, {"actions": {"model": remote}}


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Load the quality tier once (or start the server), then run every task."""
    runner = None
    service = None
    server = None
    if not args.no_model:
        overrides: dict[str, Any] = {}
        if args.remote:
            server, overrides = start_remote(args.threads)
        settings = parse_settings({"feedback": {"enabled": False}, "cache": {"disk": False}, **overrides})
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
        if server is not None:
            server.terminate()
            server.wait(30)
    return rows


def main() -> int:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated task names")
    parser.add_argument("--no-model", action="store_true", help="deterministic plans only (no code model)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "agent.json"))
    parser.add_argument("--tool-loop", action="store_true", help="agent.toolLoop on: the model drives tools")
    parser.add_argument("--remote", action="store_true", help="the quality tier on llama-server over HTTP")
    parser.add_argument("--threads", type=int, default=2, help="llama-server threads (--remote)")
    args = parser.parse_args()
    if args.remote and args.out == parser.get_default("out"):
        args.out = str(ROOT / "benchmarks" / "results" / "agent_remote.json")
    rows = asyncio.run(main_async(args))
    print("\n| task | operation | solved | offered | workspace unchanged if unsolved | model calls | tokens (prompt+generated) | steps | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['task']} | {row['operation'] or '-'} | {'yes' if row['solved'] else 'no'} | "
              f"{'yes' if row['offered'] else 'no'} | {'yes' if row['unchanged_when_unsolved'] else '**no**'} | "
              f"{row['model_calls']} | {row['prompt_tokens']}+{row['generated_tokens']} | {row['steps']} | {row['seconds']} |")
    solved = sum(r["solved"] for r in rows)
    unsolved = [r for r in rows if not r["solved"]]
    clean = sum(r["unchanged_when_unsolved"] for r in unsolved)
    print(f"\nsolved {solved}/{len(rows)} ({solved / max(1, len(rows)):.0%}; bar 40%); "
          f"unsolved that left the workspace unchanged: {clean}/{len(unsolved)} (bar: all)")
    held = [r for r in rows if r["held_out"]]
    if held:
        print(f"tasks added later (held_out; their first runs, before any change for them, are kept in "
              f"results/agent_held_out_*.json): solved {sum(r['solved'] for r in held)}/{len(held)}")
    Path(args.out).write_text(json.dumps({"started": time.strftime("%Y-%m-%d %H:%M"), "tool_loop": args.tool_loop,
                                          "engine": "remote (llama-server, loopback)" if args.remote else "local",
                                          "tasks": rows,
                                          "solved": solved, "total": len(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
