"""Speculative decoding and completion-cache benchmark, all in one run so ratios compare like with like.

Part 0 (cost curve, --cost-curve): what speculation has to beat. Wall and CPU time of one llama_decode
of n = 1, 2, 4, 8, 16 tokens with logits at every position after a ~400-token prompt, per model file,
and the per-position cost of picking the greedy token (sampler call vs one numpy argmax).
Part 1 (speculation): greedy generation on real Python stdlib code under no speculation / prompt
lookup / a draft model, interleaved per prompt (off, lookup, draft, off, ...) for several rounds, so
every ratio compares runs made under the same machine load; tokens/s, speed-up (median over rounds
of the per-round ratio), acceptance, and whether the output is token-for-token what plain decoding
produced. Three workloads:
  - function: write a whole function body after its signature (400 chars of code before it);
  - rewrite: a real function is shown, then its signature again under a new name (a copy-edit /
    refactor): the new body largely repeats the old one, which is where prompt lookup shines;
  - typing: the exact prompts the completion service builds during a typing replay (every 6th
    keystroke, 2 files x 120 characters), suggestion-sized generations (completion.maxTokens).
Models:
  - SmolLM2-135M Q4_1 (registry) alone;
  - SmolLM2-135M F32 (re-quantized *up* from the Q4_1 file, so it knows nothing more than it; it is
    only ~5x bigger in memory, which is what a big memory-bound target looks like to the decode loop)
    as target, with SmolLM2 Q4_0 (re-quantized down from Q4_1) as draft: a same-vocabulary pair made
    here with llama.cpp's quantize API, into the user cache dir;
  - Gemma-3-270M Q4_K_M (default model).
Mode 'auto' is the product default: it speculates (prompt lookup, or the draft model when one is
attached) only with verification batches no larger than the model's measured exact batch size
(LlamaBackend.exact_batch_limit); 'prompt-lookup' / 'draft-model' force it with batches up to
--max-draft guesses.
Part 2 (cache): a typing replay (as benchmarks/typing_replay.py builds prompts) through
CompletionService in process with the default model: how many keystrokes made while a suggestion
was showing are answered by typed-ahead reuse or the cache, hit latency p50/p99; then the same
replay after a restart (disk tier).

Prints tables and writes benchmarks/results/speculative_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from typing_replay import STDLIB, percentile  # noqa: E402

# (file, marker): the model writes the function after the marker.
FUNCTIONS = [("json/encoder.py", "    def iterencode"), ("textwrap.py", "    def _split_chunks"),
             ("json/decoder.py", "def JSONArray"), ("textwrap.py", "def dedent")]
# (file, marker, new name): the function is shown whole, then its signature under the new name.
REWRITES = [("textwrap.py", "def dedent", "dedent_lines"), ("json/decoder.py", "def JSONArray", "parse_array"),
            ("shlex.py", "def quote", "shell_quote"), ("posixpath.py", "def relpath", "relative_path")]
MAX_DRAFT = 8  # --max-draft
PACERS: dict[tuple[int, str], Any] = {}


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


def rewrite_prompts() -> list[str]:
    """A real function, then its signature again under a new name: the model writes the copy-edit."""
    prompts = []
    for name, marker, renamed in REWRITES:
        source = (STDLIB / name).read_text()
        start = source.index(marker)
        end = min(i for i in (source.find("\ndef ", start + 1), source.find("\nclass ", start + 1),
                              source.find("\n\n\n", start + 1), len(source)) if i > 0)
        function = source[start:end].strip("\n")
        signature = function.splitlines()[0].replace(marker.split()[-1], renamed, 1)
        prompts.append(f"{function}\n\n\n# The same as {marker.split()[-1]}, renamed:\n{signature}\n")
    return prompts


def keystrokes(files: int, chars: int) -> Iterator[tuple[str, str, str, int, int]]:
    """(file name, languageId, text, cursor offset, index) of a typing replay: index -1 is the file
    before typing, then one per typed character (as typing_replay.py types: at the end of a line)."""
    from typing_replay import pick_files

    for path, language_id, start_line in pick_files(files):
        source = path.read_text(encoding="utf-8")
        start = sum(len(line) for line in source.splitlines(keepends=True)[: start_line - 1])
        # What follows the cursor is the next line onwards: the user is writing this code, so the
        # cursor is at the end of its line (mid-line positions are gated off).
        rest = source.find("\n", start + chars)
        text = source[:start] + (source[rest:] if rest >= 0 else "")
        offset = start
        yield path.name, language_id, text, offset, -1
        for index, char in enumerate(source[start:start + chars]):
            text = text[:offset] + char + text[offset:]
            offset += 1
            yield path.name, language_id, text, offset, index


def typing_prompts(files: int, chars: int, every: int) -> tuple[Any, list[tuple[int, ...]]]:
    """(service, prompts): the default model's service and the exact prompt tokens it builds for
    every `every`-th keystroke of a typing replay."""
    from codeassist_lsp.config import Settings
    from codeassist_lsp.service import CompletionService

    settings = Settings()
    settings.cache.enabled = False
    service = CompletionService(settings)
    service.wait_until_loaded()
    prompts = []
    for name, language_id, text, offset, index in keystrokes(files, chars):
        if index < 0:
            continue
        prepared = service.prepare(text, offset, path=name, language_id=language_id)
        if index % every == every - 1 and prepared.request is not None and prepared.request.prompt_tokens:
            prompts.append(prepared.request.prompt_tokens)
    return service, prompts


def generate_one(backend: Any, prompt: str | tuple[int, ...], mode: str, max_tokens: int) -> dict[str, Any]:
    """Greedy generation of one prompt under one speculation mode (prompt evaluated first, untimed)."""
    from codeassist_lsp.config import SpeculationSettings
    from codeassist_lsp.engine.base import CancelFlag, GenerationRequest

    from codeassist_lsp.engine.speculative import AdaptiveDraftLength

    backend.speculation = SpeculationSettings(mode=mode, max_draft_tokens=MAX_DRAFT)
    # Each mode keeps its own k and pacing (as a backend used in one mode would), across prompts.
    backend._draft_length = PACERS.setdefault((id(backend), mode), AdaptiveDraftLength(1, MAX_DRAFT))
    ids = tuple(backend.tokenize(prompt, add_bos=True)) if isinstance(prompt, str) else prompt
    backend._truncate_cache(0)
    backend.run(GenerationRequest(prompt_tokens=ids, max_tokens=0), CancelFlag())
    result = backend.run(GenerationRequest(prompt_tokens=ids, max_tokens=max_tokens), CancelFlag())
    stats = backend.last_speculation
    return {"text": result.text, "tokens": result.generated_tokens, "ms": result.generate_ms,
            "drafted": stats.drafted, "accepted": stats.accepted, "batches": stats.batches}


def interleaved(backend: Any, prompts: list[Any], modes: list[str], max_tokens: int,
                rounds: int) -> list[dict[str, Any]]:
    """Every mode on every prompt, interleaved (off, lookup, draft per prompt), `rounds` times.

    Speed-up = median over rounds of (that round's tokens/s in the mode) / (its tokens/s with 'off'):
    runs compared with each other were made seconds apart, under the same load.
    """
    import statistics

    runs: dict[str, list[list[dict[str, Any]]]] = {mode: [[] for _ in range(rounds)] for mode in modes}
    for r in range(rounds):
        for prompt in prompts:
            for mode in (modes if r % 2 == 0 else modes[::-1]):
                runs[mode][r].append(generate_one(backend, prompt, mode, max_tokens))

    def rate(items: list[dict[str, Any]]) -> float:
        ms = sum(i["ms"] for i in items)
        return sum(i["tokens"] for i in items) / (ms / 1000) if ms else 0.0

    rows = []
    plain_texts = [i["text"] for i in runs["off"][0]]
    for mode in modes:
        per_round = [rate(runs[mode][r]) for r in range(rounds)]
        ratios = [rate(runs[mode][r]) / rate(runs["off"][r]) for r in range(rounds)]
        every = [i for r in range(rounds) for i in runs[mode][r]]
        drafted, accepted = sum(i["drafted"] for i in every), sum(i["accepted"] for i in every)
        texts = [i["text"] for i in runs[mode][0]]
        same = sum(a == b for a, b in zip(texts, plain_texts))
        stable = all([i["text"] for i in runs[mode][r]] == texts for r in range(rounds))
        rows.append({"mode": mode, "tokens": sum(i["tokens"] for i in runs[mode][0]),
                     "tokens_per_s": round(statistics.median(per_round), 1),
                     "tokens_per_s_rounds": [round(x, 1) for x in per_round],
                     "speedup": round(statistics.median(ratios), 2),
                     "speedup_rounds": [round(x, 2) for x in ratios],
                     "drafted": drafted, "accepted": accepted,
                     "batches": sum(i["batches"] for i in every),
                     "acceptance": round(accepted / drafted, 3) if drafted else None,
                     "identical_to_plain": same == len(prompts), "prompts_identical": same,
                     "prompts": len(prompts), "same_text_every_round": stable, "texts": texts})
    return rows


def model_files() -> dict[str, Path]:
    """The registry files and the same-vocabulary siblings derived from SmolLM2 (user cache dir)."""
    import llama_cpp

    from codeassist_lsp.engine.models import install_model, resolve_model_path
    from codeassist_lsp.engine.speculative import derived_model_path, requantize

    try:
        smol = resolve_model_path("smollm2-135m-instruct", None)[0]
    except Exception:
        smol = install_model("smollm2-135m-instruct")
    gemma = resolve_model_path(None, None)[0]
    files = {"SmolLM2-135M Q4_1": smol, "Gemma-3-270M Q4_K_M": gemma}
    for label, ftype, source, name in (
            ("SmolLM2-135M Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, smol, "q4_0"),
            ("SmolLM2-135M Q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, smol, "q8_0"),
            ("SmolLM2-135M F16", llama_cpp.LLAMA_FTYPE_MOSTLY_F16, smol, "f16"),
            ("SmolLM2-135M F32", llama_cpp.LLAMA_FTYPE_ALL_F32, smol, "f32"),
            ("Gemma-3-270M F16", llama_cpp.LLAMA_FTYPE_MOSTLY_F16, gemma, "f16")):
        files[label] = requantize(source, derived_model_path(source, name), ftype)
    return files


def cost_curve(files: dict[str, Path], threads: int, repeats: int) -> list[dict[str, Any]]:
    """Part 0: one decode of n tokens (logits everywhere) after ~400 prompt tokens, per model file."""
    import statistics

    import llama_cpp

    from codeassist_lsp.config import ModelSettings
    from codeassist_lsp.engine.base import CancelFlag, Sampling
    from codeassist_lsp.engine.llama import LlamaBackend

    text = (STDLIB / "json/encoder.py").read_text()
    sizes = [1, 2, 4, 8, 16]
    rows = []
    for label, path in files.items():
        backend = LlamaBackend(path, ModelSettings(context_size=2048, threads=threads))
        ids = backend.tokenize(text, add_bos=True)
        prompt, extra = ids[:400], ids[400:416]
        backend._sync_cache(prompt, CancelFlag())
        wall: dict[int, list[float]] = {n: [] for n in sizes}
        cpu: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(repeats):
            for n in sizes:
                backend._truncate_cache(len(prompt))
                w, c = time.perf_counter(), time.process_time()
                backend._decode_all_logits(extra[:n])
                cpu[n].append((time.process_time() - c) * 1000)
                wall[n].append((time.perf_counter() - w) * 1000)
        sampler = backend._sampler(Sampling())
        started = time.perf_counter()
        picked = [llama_cpp.llama_sampler_sample(sampler, backend._ctx, i) for _ in range(20) for i in range(16)]
        sampler_ms = (time.perf_counter() - started) * 1000 / len(picked)
        started = time.perf_counter()
        for _ in range(20):
            argmax = backend._greedy_tokens(16)
        argmax_ms = (time.perf_counter() - started) * 1000 / (20 * 16)
        assert argmax == picked[:16], "numpy argmax must pick what the greedy sampler picks"
        wall_med = {n: statistics.median(v) for n, v in wall.items()}
        cpu_med = {n: statistics.median(v) for n, v in cpu.items()}
        rows.append({"model": label, "file_mb": round(path.stat().st_size / 1e6),
                     "wall_ms": {n: round(v, 1) for n, v in wall_med.items()},
                     "cpu_ms": {n: round(v, 1) for n, v in cpu_med.items()},
                     "wall_ratio": {n: round(v / wall_med[1], 2) for n, v in wall_med.items()},
                     "cpu_ratio": {n: round(v / cpu_med[1], 2) for n, v in cpu_med.items()},
                     # With 100 % acceptance a batch of n emits n tokens for the price of cost(n).
                     "best_case_speedup": {n: round(n * wall_med[1] / v, 2) for n, v in wall_med.items()},
                     "greedy_pick_ms_per_position": {"sampler": round(sampler_ms, 3),
                                                     "numpy_argmax": round(argmax_ms, 4)},
                     "load": load_avg()})
        backend.close()
    return rows


def speculation_part(files: dict[str, Path], chars: int, max_tokens: int, rounds: int,
                     threads: int) -> list[dict[str, Any]]:
    """Part 1: every model/mode pair on both workloads, with speed-up and identity against plain decoding."""
    from codeassist_lsp.config import ModelSettings, Settings
    from codeassist_lsp.engine.llama import LlamaBackend
    from codeassist_lsp.engine.speculative import attach_draft_model

    workloads = {"function": function_prompts(chars), "rewrite": rewrite_prompts()}
    settings = ModelSettings(context_size=4096, threads=threads)
    rows: list[dict[str, Any]] = []

    def measure(label: str, backend: Any, modes: list[str]) -> None:
        limit = backend.exact_batch_limit()
        print(f"  {label}: verification batches of up to {limit} tokens are exact", flush=True)
        for workload, prompts in workloads.items():
            load = load_avg()
            for row in interleaved(backend, prompts, ["off", *modes], max_tokens, rounds):
                rows.append({"model": label, "workload": workload, "load_at_start": load,
                             "exact_batch_limit": limit, **row})
                print(f"  {label} {workload} {row['mode']}: {row['tokens_per_s']} tok/s, {row['speedup']}x "
                      f"{row['speedup_rounds']}, acceptance {row['acceptance']}, identical "
                      f"{row['prompts_identical']}/{row['prompts']} (load {load_avg()})", flush=True)
        backend.close()

    target = LlamaBackend(files["SmolLM2-135M F32"], settings)
    full = Settings()
    full.model = settings
    full.draft.path = str(files["SmolLM2-135M Q4_0"])
    attach_draft_model(target, full)
    measure("SmolLM2-135M F32 (draft: Q4_0)", target, ["auto", "prompt-lookup", "draft-model"])
    measure("SmolLM2-135M Q4_1", LlamaBackend(files["SmolLM2-135M Q4_1"], settings), ["auto", "prompt-lookup"])
    measure("Gemma-3-270M Q4_K_M", LlamaBackend(files["Gemma-3-270M Q4_K_M"], settings), ["auto", "prompt-lookup"])

    # Inline completions: the service's own prompts during a typing replay, suggestion-sized generations.
    service, prompts = typing_prompts(files=2, chars=120, every=6)
    load = load_avg()
    for row in interleaved(service.backend, prompts, ["off", "auto"], service.settings.completion.max_tokens, rounds):
        rows.append({"model": "Gemma-3-270M Q4_K_M (service)", "workload": f"typing ({len(prompts)} prompts)",
                     "load_at_start": load, "exact_batch_limit": service.backend.exact_batch_limit(), **row})
        print(f"  typing {row['mode']}: {row['tokens_per_s']} tok/s, {row['speedup']}x, acceptance "
              f"{row['acceptance']}, identical {row['prompts_identical']}/{row['prompts']}", flush=True)
    service.close()
    return rows


def cache_part(files: int, chars: int) -> dict[str, Any]:
    """Part 2: typing replay through the service; typed-ahead/cache answers while a suggestion shows."""
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
        for file_name, language_id, text, offset, index in keystrokes(files, chars):
            if index < 0:
                service.prepare(text, offset, path=file_name, language_id=language_id, kind="prewarm")
                continue
            showing = file_name in service._shown
            started = time.perf_counter()
            prepared = service.prepare(text, offset, path=file_name, language_id=language_id)
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
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions (median ratio)")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = every core)")
    parser.add_argument("--max-draft", type=int, default=8, help="most tokens guessed per batch")
    parser.add_argument("--cost-curve", action="store_true", help="part 0: decode cost of n-token batches")
    parser.add_argument("--curve-repeats", type=int, default=5)
    parser.add_argument("--replay-files", type=int, default=2)
    parser.add_argument("--replay-chars", type=int, default=60)
    parser.add_argument("--skip-speculation", action="store_true")
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speculative_bench.json"))
    args = parser.parse_args()

    global MAX_DRAFT
    MAX_DRAFT = args.max_draft
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_before": load_avg()},
                              "args": vars(args)}
    files = model_files() if args.cost_curve or not args.skip_speculation else {}
    if args.cost_curve:
        report["cost_curve"] = cost_curve(files, args.threads, args.curve_repeats)
        report["machine"]["load_after_cost_curve"] = load_avg()
        for row in report["cost_curve"]:
            print(f"  {row['model']}: wall ms {row['wall_ms']} cpu ms {row['cpu_ms']} "
                  f"best case {row['best_case_speedup']} pick {row['greedy_pick_ms_per_position']}", flush=True)
    if not args.skip_speculation:
        report["speculation"] = speculation_part(files, args.chars, args.max_tokens, args.rounds, args.threads)
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
        print("| model | workload | mode | tok/s | speed-up (rounds) | acceptance | identical to plain | "
              "exact batch | load |")
        print("|---|---|---|---|---|---|---|---|---|")
        for row in report["speculation"]:
            identical = "yes" if row["identical_to_plain"] else f"{row['prompts_identical']}/{row['prompts']}"
            print(f"| {row['model']} | {row['workload']} | {row['mode']} | {row['tokens_per_s']} | "
                  f"{row['speedup']}x {row['speedup_rounds']} | "
                  f"{row['acceptance'] if row['acceptance'] is not None else '-'} | {identical} | "
                  f"{row['exact_batch_limit']} | {row['load_at_start'][0]} |")
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
