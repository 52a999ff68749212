"""Speculative decoding and completion-cache benchmark, all in one run so ratios compare like with like.

Part 1 (speculation): whole-function generation continuing real Python stdlib code, greedy, with
no speculation / prompt lookup / a draft model; tokens/s, acceptance, and whether the output is
token-for-token what plain decoding produced.
  - SmolLM2-135M Q4_1 (registry) alone;
  - SmolLM2-135M Q8_0 (re-quantized *up* from the Q4_1 file, so no better than it, only slower per
    token) as target, with SmolLM2 Q4_0 (re-quantized down from Q4_1) as draft: a real same-vocabulary
    pair made here with llama.cpp's quantize API, into the user cache dir;
  - Gemma-3-270M Q4_K_M (default model) with prompt lookup forced on (its 'auto' mode does not
    speculate: batched logits differ from one-token logits there, see LlamaBackend.batch_invariant).
Part 2 (cache): a typing replay (as benchmarks/typing_replay.py builds prompts) through
CompletionService in process with the default model: how many keystrokes made while a suggestion
was showing are answered by typed-ahead reuse or the cache, hit latency p50/p99; then the same
replay after a restart (disk tier).

Prints a table and writes benchmarks/results/speculative_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from typing_replay import STDLIB, percentile  # noqa: E402

# (file, marker): the model writes the function after the marker.
FUNCTIONS = [("json/encoder.py", "    def iterencode"), ("textwrap.py", "    def _split_chunks"),
             ("json/decoder.py", "def JSONArray"), ("textwrap.py", "def dedent")]


def load_avg() -> list[float]:
    """1/5/15 minute load averages (the machine is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def function_prompts(chars: int) -> list[str]:
    """Real code up to a function signature."""
    prompts = []
    for name, marker in FUNCTIONS:
        source = (STDLIB / name).read_text()
        cut = source.index(marker)
        prompts.append(source[max(0, cut - chars):cut] + marker)
    return prompts


def generate(backend: Any, prompts: list[str], mode: str, max_tokens: int) -> dict[str, Any]:
    """Greedy generation of every prompt under one speculation mode (prompt evaluated first, untimed)."""
    from codeassist_lsp.config import SpeculationSettings
    from codeassist_lsp.engine.base import CancelFlag, GenerationRequest

    backend.speculation = SpeculationSettings(mode=mode)
    texts, tokens, gen_ms, drafted, accepted, batches = [], 0, 0.0, 0, 0, 0
    for prompt in prompts:
        ids = tuple(backend.tokenize(prompt, add_bos=True))
        backend._truncate_cache(0)
        backend.run(GenerationRequest(prompt_tokens=ids, max_tokens=0), CancelFlag())
        result = backend.run(GenerationRequest(prompt_tokens=ids, max_tokens=max_tokens), CancelFlag())
        texts.append(result.text)
        tokens += result.generated_tokens
        gen_ms += result.generate_ms
        drafted += backend.last_speculation.drafted
        accepted += backend.last_speculation.accepted
        batches += backend.last_speculation.batches
    return {"mode": mode, "tokens": tokens, "generate_ms": round(gen_ms, 1),
            "tokens_per_s": round(tokens / (gen_ms / 1000), 1) if gen_ms else 0.0,
            "drafted": drafted, "accepted": accepted, "batches": batches,
            "acceptance": round(accepted / drafted, 3) if drafted else None, "texts": texts}


def speculation_part(chars: int, max_tokens: int) -> list[dict[str, Any]]:
    """Part 1: every model/mode pair, with speed-up and identity against plain decoding."""
    import llama_cpp

    from codeassist_lsp.config import ModelSettings, Settings
    from codeassist_lsp.engine.llama import LlamaBackend
    from codeassist_lsp.engine.models import install_model, resolve_model_path
    from codeassist_lsp.engine.speculative import attach_draft_model, derived_model_path, requantize

    try:
        smol = resolve_model_path("smollm2-135m-instruct", None)[0]
    except Exception:
        smol = install_model("smollm2-135m-instruct")
    gemma = resolve_model_path(None, None)[0]
    smol_q8 = requantize(smol, derived_model_path(smol, "q8_0"), llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    smol_q4_0 = requantize(smol, derived_model_path(smol, "q4_0"), llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0)
    prompts = function_prompts(chars)
    rows: list[dict[str, Any]] = []

    def measure(label: str, backend: Any, modes: list[str]) -> None:
        plain = generate(backend, prompts, "off", max_tokens)
        rows.append({"model": label, **plain, "speedup": 1.0, "identical_to_plain": True})
        for mode in modes:
            row = generate(backend, prompts, mode, max_tokens)
            row["speedup"] = round(row["tokens_per_s"] / plain["tokens_per_s"], 2)
            row["identical_to_plain"] = row["texts"] == plain["texts"]
            row["prompts_identical"] = sum(a == b for a, b in zip(row["texts"], plain["texts"]))
            rows.append({"model": label, **row})
        backend.close()

    settings = ModelSettings(context_size=4096)
    measure("SmolLM2-135M Q4_1", LlamaBackend(smol, settings), ["prompt-lookup"])
    target = LlamaBackend(smol_q8, settings)
    full = Settings()
    full.model = settings
    full.draft.path = str(smol_q4_0)
    attach_draft_model(target, full)
    measure("SmolLM2-135M Q8_0 (draft: Q4_0)", target, ["prompt-lookup", "draft-model"])
    measure("Gemma-3-270M Q4_K_M", LlamaBackend(gemma, settings), ["prompt-lookup"])
    return rows


def cache_part(files: int, chars: int) -> dict[str, Any]:
    """Part 2: typing replay through the service; typed-ahead/cache answers while a suggestion shows."""
    from typing_replay import pick_files

    from codeassist_lsp.config import Settings
    from codeassist_lsp.service import CompletionService

    directory = tempfile.mkdtemp(prefix="codeassist-cache-bench-")
    passes: dict[str, Any] = {}
    for name in ("first_typing", "after_restart_same_typing"):
        settings = Settings()
        settings.completion.debounce_ms = 0
        settings.completion.prewarm = False
        settings.cache.directory = directory
        service = CompletionService(settings)
        service.wait_until_loaded()
        records = []
        for path, language_id, start_line in pick_files(files):
            source = path.read_text(encoding="utf-8")
            start = sum(len(line) for line in source.splitlines(keepends=True)[: start_line - 1])
            typed = source[start:start + chars]
            # What follows the cursor is the next line onwards: the user is writing this code, so the
            # cursor is at the end of its line (mid-line positions are gated off).
            rest = source.find("\n", start + chars)
            text = source[:start] + (source[rest:] if rest >= 0 else "")
            offset = start
            service.prepare(text, offset, path=path.name, language_id=language_id, kind="prewarm")
            for char in typed:
                text = text[:offset] + char + text[offset:]
                offset += 1
                showing = path.name in service._shown
                started = time.perf_counter()
                prepared = service.prepare(text, offset, path=path.name, language_id=language_id)
                job = service.submit(prepared)
                result = job.future.result() if job is not None else None
                suggestion = service.finish(prepared, result)
                elapsed = (time.perf_counter() - started) * 1000
                source_of = ("typed-ahead" if prepared.typed_ahead is not None else
                             prepared.cache_tier or ("model" if job is not None else "gated"))
                records.append({"showing": showing, "answered_by": source_of, "ms": elapsed,
                                "shown": bool(suggestion.text)})
        service.close()
        showing = [r for r in records if r["showing"]]
        reused = [r for r in showing if r["answered_by"] in ("typed-ahead", "memory", "disk")]
        hits = [r for r in records if r["answered_by"] in ("typed-ahead", "memory", "disk")]
        model = [r for r in records if r["answered_by"] == "model"]
        by: dict[str, int] = {}
        for r in records:
            by[r["answered_by"]] = by.get(r["answered_by"], 0) + 1
        passes[name] = {
            "keystrokes": len(records), "answered_by": by,
            "while_showing": len(showing), "reused_while_showing": len(reused),
            "reuse_rate_while_showing": round(len(reused) / len(showing), 3) if showing else None,
            "typed_ahead_rate_while_showing": round(
                sum(r["answered_by"] == "typed-ahead" for r in showing) / len(showing), 3) if showing else None,
            "hit_rate_all_keystrokes": round(len(hits) / len(records), 3) if records else None,
            "hit_p50_ms": round(percentile([r["ms"] for r in hits], 0.5), 2),
            "hit_p99_ms": round(percentile([r["ms"] for r in hits], 0.99), 2),
            "model_p50_ms": round(percentile([r["ms"] for r in model], 0.5), 1),
            "model_p99_ms": round(percentile([r["ms"] for r in model], 0.99), 1),
        }
    return passes


def main() -> int:
    """Run both parts, print tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=400, help="code before each function signature")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--replay-files", type=int, default=2)
    parser.add_argument("--replay-chars", type=int, default=60)
    parser.add_argument("--skip-speculation", action="store_true")
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speculative_bench.json"))
    args = parser.parse_args()

    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_before": load_avg()},
                              "args": vars(args)}
    if not args.skip_speculation:
        report["speculation"] = speculation_part(args.chars, args.max_tokens)
        report["machine"]["load_after_speculation"] = load_avg()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")  # keep part 1 if part 2 dies
    if not args.skip_cache:
        report["cache"] = cache_part(args.replay_files, args.replay_chars)
        report["machine"]["load_after_cache"] = load_avg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    print(f"load before {report['machine']['load_before']}")
    if "speculation" in report:
        print("| model | mode | tok/s | speed-up | acceptance | output identical to plain |")
        print("|---|---|---|---|---|---|")
        for row in report["speculation"]:
            identical = "yes" if row["identical_to_plain"] else f"{row.get('prompts_identical')}/{len(FUNCTIONS)}"
            print(f"| {row['model']} | {row['mode']} | {row['tokens_per_s']} | {row['speedup']}x | "
                  f"{row['acceptance'] if row['acceptance'] is not None else '-'} | {identical} |")
    if "cache" in report:
        print("| replay pass | keystrokes | while showing | reused while showing | hit p50 ms | hit p99 ms | "
              "model p50 ms |")
        print("|---|---|---|---|---|---|---|")
        for name, row in report["cache"].items():
            print(f"| {name} | {row['keystrokes']} | {row['while_showing']} | "
                  f"{row['reuse_rate_while_showing']} | {row['hit_p50_ms']} | {row['hit_p99_ms']} | "
                  f"{row['model_p50_ms']} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
