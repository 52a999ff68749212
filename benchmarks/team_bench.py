"""Team benchmark: many editors (each its own codeassist process) on one inference server and one Redis.

Parts, all in one run on this machine:
  editors   1, 4 and 8 editors type different real files at once (pause method: after every key
            the editor waits for the answer); per-keystroke p50/p99, how p99 grows with editors,
            the server's tokens/s (llama-server's /metrics).
  shared    4 editors type the same file, one after another a few seconds apart (a team on one
            codebase), with and without the Redis tier: the share of keystrokes answered from the
            cache, and from Redis (what the shared tier adds).
  hop       one editor, the same files and model, in-process llama.cpp vs llama-server on loopback:
            per-keystroke latency of both, and the remote hop's own cost per model request (the
            client's wall time minus the compute time the server reports for it).

The server is llama.cpp's llama-server (benchmarks/build_peer.sh) with parallel slots, serving the
embedded completion model; Redis is Debian's redis-server. Prints tables; writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import typing_replay as replay  # noqa: E402 - the pause replay's editor driver, shared

from codeassist_lsp.engine.models import resolve_model_path  # noqa: E402

# Real files nobody here wrote; each editor of the `editors` part types its own.
TEAM_FILES = [
    (replay.STDLIB / "textwrap.py", "python", 140),
    (Path("/usr/lib/node_modules/npm/lib/utils/display.js"), "javascript", 60),
    (Path("/usr/share/doc/git/contrib/persistent-https/client.go"), "go", 90),
    (replay.STDLIB / "json" / "encoder.py", "python", 200),
    (replay.STDLIB / "csv.py", "python", 120),
    (Path("/usr/lib/node_modules/npm/lib/commands/install.js"), "javascript", 40),
    (replay.STDLIB / "argparse.py", "python", 400),
    (replay.STDLIB / "shlex.py", "python", 60),
]


OPEN_WAIT_PER_EDITOR_S = 4.0


def _wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        time.sleep(0.2)


def start_llama_server(model: Path, slots: int, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """llama-server with `slots` parallel slots of 2,048 tokens each (continuous batching)."""
    port = replay._free_port()
    process = subprocess.Popen(
        [str(replay.peer_binary()), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
         "-c", str(2048 * slots), "-np", str(slots), "-t", str(threads), "-ngl", "0", "--metrics"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/health")
    return process, url


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    """Debian's redis-server on loopback, nothing persisted."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (editors/install-test-deps.sh installs it)")
    port = replay._free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def flush_redis(url: str) -> None:
    """Empty the shared tier (each part measures its own hits)."""
    import redis

    redis.Redis.from_url(url).flushall()


def server_metrics(url: str) -> dict[str, float]:
    """llama-server's Prometheus counters."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            values[name.split(":", 1)[-1]] = float(value)
    return values


def remote_settings(server_url: str, redis_url: str | None) -> dict[str, Any]:
    """Both tiers on the team's server; the shared cache when a Redis URL is given."""
    remote = {"engine": "remote", "remote": {"url": server_url, "model": "gemma-3-270m"}}
    cache: dict[str, Any] = {"disk": False}  # the disk tier is per machine: it would share across these editors
    if redis_url:
        cache["redis"] = {"url": redis_url}
    return {"model": remote, "actions": {"model": remote}, "cache": cache, "feedback": {"enabled": False}}


def local_settings() -> dict[str, Any]:
    """The same model in-process."""
    return {"model": {"name": "gemma-3-270m"}, "actions": {"model": {"name": "gemma-3-270m"}},
            "cache": {"disk": False}, "feedback": {"enabled": False}}


async def editor(settings: dict[str, Any], file: tuple[Path, str, int], chars: int, interval_ms: int,
                 delay_s: float = 0.0, open_wait_s: float = 4.0) -> dict[str, Any]:
    """One editor process typing one file; its keystroke records joined with the server's."""
    client, _ = await replay._start_client(settings)
    try:
        await asyncio.sleep(delay_s)
        path, language_id, start_line = file
        records = await replay.replay_file_paused(client, path, language_id, start_line, chars, interval_ms,
                                                  open_wait_s=open_wait_s)
        report = await client.workspace_execute_command_async(
            replay.types.ExecuteCommandParams(command="codeassist.status", arguments=[{"recent": True}]))
    finally:
        await replay._stop_client(client)
    summary = replay.summarize_pause(records, report.get("recent_requests", []))
    summary["records"] = records
    return summary


def _pooled(editors: list[dict[str, Any]]) -> dict[str, Any]:
    records = [r for e in editors for r in e["records"]]
    latencies = [r["latency_ms"] for r in records]
    sources = [r.get("server", {}) for r in records]
    return {
        "editors": len(editors), "keystrokes": len(records),
        "timeouts": sum(1 for r in records if r.get("timeout")),
        "p50_ms": replay.percentile(latencies, 0.5), "p99_ms": replay.percentile(latencies, 0.99),
        "per_editor_p50_ms": [e["p50_ms"] for e in editors], "per_editor_p99_ms": [e["p99_ms"] for e in editors],
        "model_p50_ms": replay.percentile([r["latency_ms"] for r, s in zip(records, sources)
                                           if s.get("source") == "model"], 0.5),
        "cache_hits": sum(1 for s in sources if s.get("source") == "cache"),
        "redis_hits": sum(1 for s in sources if s.get("tier") == "redis"),
        "shown": sum(1 for r in records if r.get("suggestion")),
    }


async def part_editors(counts: list[int], server_url: str, redis_url: str, chars: int,
                       interval_ms: int) -> list[dict[str, Any]]:
    """N editors typing different files at once."""
    rows = []
    for count in counts:
        flush_redis(redis_url)
        before, started = server_metrics(server_url), time.perf_counter()
        files = [TEAM_FILES[i % len(TEAM_FILES)] for i in range(count)]
        # Everyone opens a file, and typing starts once the server has read them all (each editor's
        # first prompt is a whole window: on a CPU server 8 of them take tens of seconds): what is
        # measured is typing, not a whole team opening files in the same second.
        editors = await asyncio.gather(*(editor(remote_settings(server_url, redis_url), f, chars, interval_ms,
                                                open_wait_s=OPEN_WAIT_PER_EDITOR_S * count) for f in files))
        seconds = time.perf_counter() - started
        after = server_metrics(server_url)
        row = _pooled(list(editors))
        row.update(seconds=seconds,
                   server_generated_tokens=after["tokens_predicted_total"] - before["tokens_predicted_total"],
                   server_prompt_tokens=after["prompt_tokens_total"] - before["prompt_tokens_total"])
        row["server_tokens_per_s"] = row["server_generated_tokens"] / seconds
        rows.append(row)
        print(f"  {count} editor(s): p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
              f"server {row['server_tokens_per_s']:.1f} generated tok/s", file=sys.stderr)
    return rows


async def part_shared(count: int, server_url: str, redis_url: str, chars: int, interval_ms: int,
                      stagger_s: float) -> dict[str, Any]:
    """`count` editors type the same file a few seconds apart, without and with the shared tier."""
    file = TEAM_FILES[0]
    result: dict[str, Any] = {}
    for label, shared in (("without_redis", None), ("with_redis", redis_url)):
        flush_redis(redis_url)
        editors = await asyncio.gather(*(editor(remote_settings(server_url, shared), file, chars, interval_ms,
                                                delay_s=i * stagger_s) for i in range(count)))
        row = _pooled(list(editors))
        row["cache_hit_rate"] = row["cache_hits"] / row["keystrokes"]
        row["redis_hit_rate"] = row["redis_hits"] / row["keystrokes"]
        result[label] = row
        print(f"  same file, {label}: cache hits {row['cache_hit_rate']:.0%} (Redis {row['redis_hit_rate']:.0%}), "
              f"p50 {row['p50_ms']:.0f} ms", file=sys.stderr)
    result["added_hit_rate"] = result["with_redis"]["cache_hit_rate"] - result["without_redis"]["cache_hit_rate"]
    return result


async def part_hop(server_url: str, chars: int, interval_ms: int, files: int) -> dict[str, Any]:
    """One editor, local vs remote, same files and model; the hop's own cost per model request."""
    result: dict[str, Any] = {}
    for label, settings in (("local", local_settings()), ("remote", remote_settings(server_url, None))):
        editors = [await editor(settings, f, chars, interval_ms) for f in TEAM_FILES[:files]]
        result[label] = _pooled(editors)
        if label == "remote":
            hops = [r["server"]["prompt_ms"] + r["server"]["generate_ms"] - r["server"]["server_ms"]
                    for e in editors for r in e["records"] if r.get("server", {}).get("server_ms")]
            result["hop_requests"] = len(hops)
            result["hop_overhead_p50_ms"] = replay.percentile(hops, 0.5)
            result["hop_overhead_p90_ms"] = replay.percentile(hops, 0.9)
        print(f"  one editor, {label}: p50 {result[label]['p50_ms']:.0f} ms, p99 {result[label]['p99_ms']:.0f} ms",
              file=sys.stderr)
    return result


def print_tables(results: dict[str, Any]) -> None:
    """The tables the README shows (of the parts that ran)."""
    if "editors" in results:
        _print_editors(results)
    if "shared" in results:
        _print_shared(results)
    if "hop" in results:
        _print_hop(results)


def _print_editors(results: dict[str, Any]) -> None:
    print("\n### Editors on one llama-server (pause method, every keystroke)\n")
    print("| editors | keystrokes | p50 ms | p99 ms | p99 vs 1 editor | server generated tok/s | timeouts |")
    print("|---|---|---|---|---|---|---|")
    base = results["editors"][0]["p99_ms"]
    for row in results["editors"]:
        print(f"| {row['editors']} | {row['keystrokes']} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | "
              f"{row['p99_ms'] / base:.2f}x | {row['server_tokens_per_s']:.1f} | {row['timeouts']} |")


def _print_shared(results: dict[str, Any]) -> None:
    shared = results["shared"]
    print(f"\n### {shared['with_redis']['editors']} editors typing the same file, a few seconds apart\n")
    print("| shared tier | keystrokes answered from a cache | from Redis | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for label in ("without_redis", "with_redis"):
        row = shared[label]
        print(f"| {'Redis' if label == 'with_redis' else 'none (memory only)'} | {row['cache_hit_rate']:.0%} | "
              f"{row['redis_hit_rate']:.0%} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} |")


def _print_hop(results: dict[str, Any]) -> None:
    hop = results["hop"]
    print("\n### One editor: in-process vs llama-server on loopback (same model, same files)\n")
    print("| engine | keystrokes | p50 ms | p99 ms | model keystrokes p50 ms |")
    print("|---|---|---|---|---|")
    for label in ("local", "remote"):
        row = hop[label]
        print(f"| {label} | {row['keystrokes']} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['model_p50_ms']:.0f} |")
    print(f"\nRemote hop's own cost per model request (client wall time minus the server's reported compute), "
          f"{hop['hop_requests']} requests: p50 {hop['hop_overhead_p50_ms']:.1f} ms, "
          f"p90 {hop['hop_overhead_p90_ms']:.1f} ms (bar: p50 <= 15 ms).")


def main() -> int:
    """Run the parts and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editors", default="1,4,8", help="editor counts for the editors part")
    parser.add_argument("--chars", type=int, default=60, help="characters each editor types")
    parser.add_argument("--interval-ms", type=int, default=120)
    parser.add_argument("--shared-editors", type=int, default=4)
    parser.add_argument("--stagger-s", type=float, default=4.0)
    parser.add_argument("--hop-files", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="llama-server threads")
    parser.add_argument("--parts", default="editors,shared,hop", help="which parts to run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "team.json"))
    args = parser.parse_args()
    counts = [int(n) for n in args.editors.split(",")]
    model, _spec = resolve_model_path("gemma-3-270m", None)
    # Editors on a remote engine load no local model at start.
    replay.SERVER = [sys.executable, "-m", "codeassist_lsp", "--no-preload"]
    log = Path(tempfile.mkdtemp(prefix="team-bench-")) / "llama-server.log"
    server, server_url = start_llama_server(model, max(counts), args.threads, log)
    redis_server, redis_url = start_redis()
    started = time.strftime("%Y-%m-%d %H:%M")
    try:
        print(f"llama-server {server_url} ({max(counts)} slots), redis {redis_url}", file=sys.stderr)
        results: dict[str, Any] = {"started": started, "cpus": os.cpu_count(), "chars": args.chars,
                                   "interval_ms": args.interval_ms, "model": model.name, "server_threads": args.threads}
        parts = args.parts.split(",")
        if "editors" in parts:
            results["editors"] = asyncio.run(part_editors(counts, server_url, redis_url, args.chars, args.interval_ms))
        if "shared" in parts:
            results["shared"] = asyncio.run(part_shared(args.shared_editors, server_url, redis_url, args.chars,
                                                        args.interval_ms, args.stagger_s))
        if "hop" in parts:
            results["hop"] = asyncio.run(part_hop(server_url, args.chars, args.interval_ms, args.hop_files))
    finally:
        server.kill()
        redis_server.kill()
    print_tables(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
