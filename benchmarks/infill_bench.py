"""HumanEval infilling for both tiers' models: single-line through the product's inline pipeline, multi-line raw.

    .venv/bin/python benchmarks/infill_bench.py [--samples dev,1,2] [--multi 100] [--models gemma-3-270m,qwen2.5-coder-1.5b]

Single-line (HumanEval-SingleLineInfilling): the development sample (seed 0, 200 problems) and
held-out samples 1 and 2 of context_bench.py, each through `CompletionService.complete` with the
cursor at the gap, exactly as inline completion runs (FIM when the model has it, context,
verification, the single-line token limit); the suggestion's first line is the answer.

Multi-line (HumanEval-MultiLineInfilling, a seeded sample): the model alone, greedy, up to
MULTI_MAX_TOKENS: with FIM tokens prefix + suffix as trained and the model's own end of the middle;
without (Gemma) the prefix only, stopped at the first line indented less than the gap. Tests run
on prompt + middle + suffix in a limited subprocess (context_bench._passes).

Models run one after another on the same problems in one run; a table and JSON (`--json`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from context_bench import _passes, _summary, load_humaneval, score_line  # noqa: E402

from codeassist_lsp.config import parse_settings  # noqa: E402
from codeassist_lsp.context.assembler import ContextAssembler  # noqa: E402
from codeassist_lsp.engine.base import GenerationRequest  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402

MULTI = Path("/work/shared/data/humaneval/HumanEval-MultiLineInfilling.jsonl.gz")
RESULTS = Path(__file__).parent / "results" / "infill.json"
MULTI_MAX_TOKENS = 160


def _service(model: str, root: Path, threads: int) -> CompletionService:
    settings = parse_settings({"cache": {"enabled": False}, "completion": {"debounceMs": 0, "prewarm": False},
                               "model": {"name": model, "threads": threads}})
    service = CompletionService(settings, assembler=ContextAssembler(None, None, root=root))
    service.wait_until_loaded()
    return service


def single_line(service: CompletionService, root: Path, problems: list[dict[str, str]],
                log: Any) -> dict[str, Any]:
    """The inline pipeline at the gap (cursor at the start of the line after it), first line kept."""
    rows = []
    started = time.perf_counter()
    for number, problem in enumerate(problems):
        path = str(root / f"single_{number}.py")
        text = problem["prompt"] + problem["suffix"]
        suggestion = service.complete(text, len(problem["prompt"]), path=path, language_id="python")
        service.forget(path)
        row = {"task_id": problem["task_id"], **score_line(problem, suggestion.text), "mode": suggestion.mode}
        rows.append(row)
        log.write(json.dumps({"part": "single", **row}) + "\n")
    return {**_summary(rows), "seconds": round(time.perf_counter() - started, 1)}


def _multi_stop(indent: int):  # type: ignore[no-untyped-def]
    def check(text: str) -> int | None:
        offset = 0
        for line in text.split("\n")[:-1]:
            if line.strip() and len(line) - len(line.lstrip()) < indent:
                return offset
            offset += len(line) + 1
        return None

    return check


def multi_line(service: CompletionService, problems: list[dict[str, str]], log: Any) -> dict[str, Any]:
    """The model alone on multi-line gaps: FIM when it has the tokens, else prefix-only with a dedent stop."""
    backend = service.backend
    assert backend is not None
    fim = backend.fim_tokens()
    rows = []
    started = time.perf_counter()
    for problem in problems:
        prefix, suffix = problem["prompt"], problem["suffix"]
        first = problem["canonical_solution"].split("\n", 1)[0]
        indent = len(first) - len(first.lstrip())
        if fim is not None:
            pre, suf, mid = fim
            tokens = ([backend.bos()] if backend.adds_bos() else []) + [pre] + backend.tokenize(prefix) + [suf] \
                + backend.tokenize(suffix) + [mid]
            stop = None
        else:
            tokens = backend.tokenize(prefix, add_bos=True)
            stop = _multi_stop(indent)
        request = GenerationRequest(prompt_tokens=tuple(tokens), max_tokens=MULTI_MAX_TOKENS, stop_check=stop)
        middle = service.worker.submit(request).future.result().text
        middle = middle if middle.endswith("\n") or not middle else middle + "\n"
        passed = _passes(problem, middle)
        row = {"task_id": problem["task_id"], "exact": middle.strip() == problem["canonical_solution"].strip(),
               "passed": passed, "lines": middle.count("\n")}
        rows.append(row)
        log.write(json.dumps({"part": "multi", **row, "middle": middle}) + "\n")
    return {**_summary(rows), "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    """Run both models on the same problems; print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gemma-3-270m,qwen2.5-coder-1.5b")
    parser.add_argument("--samples", default="dev,1,2", help="single-line samples: dev and/or held-out numbers")
    parser.add_argument("--limit", type=int, default=200, help="problems per single-line sample")
    parser.add_argument("--multi", type=int, default=100, help="multi-line problems (seeded sample; 0: skip)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "infill_bench.jsonl")
    args = parser.parse_args()
    samples = [s for s in args.samples.split(",") if s]
    with gzip.open(MULTI, "rt", encoding="utf-8") as handle:
        multi_all = [json.loads(line) for line in handle]
    multi = random.Random(0).sample(multi_all, args.multi) if args.multi else []
    report: dict[str, Any] = {"limit": args.limit, "multi_problems": len(multi), "models": {}}
    root = Path(tempfile.mkdtemp(prefix="infill_"))
    try:
        with args.log.open("w") as log:
            for model in args.models.split(","):
                service = _service(model, root, args.threads)
                backend = service.backend
                assert backend is not None
                entry: dict[str, Any] = {"model_id": backend.model_id, "fim": backend.fim_tokens() is not None}
                try:
                    for sample in samples:
                        problems = load_humaneval(args.limit, seed=0, held_out=0 if sample == "dev" else int(sample))
                        key = "single_dev" if sample == "dev" else f"single_held_out_{sample}"
                        entry[key] = single_line(service, root, problems, log)
                        print(f"{model} {key}: {entry[key]}", file=sys.stderr)
                    if multi:
                        entry["multi_line"] = multi_line(service, multi, log)
                        print(f"{model} multi_line: {entry['multi_line']}", file=sys.stderr)
                finally:
                    service.close()
                report["models"][model] = entry
    finally:
        shutil.rmtree(root, ignore_errors=True)
    parts = [k for k in next(iter(report["models"].values())) if k.startswith(("single", "multi"))]
    print(f"{'model':<22}" + "".join(f"{p:>26}" for p in parts))
    for model, entry in report["models"].items():
        cells = "".join(f"{entry[p]['exact_match']:>12.3f} / {entry[p]['pass_rate']:<11.3f}" for p in parts)
        print(f"{model:<22}{cells}")
    print("(exact match / tests pass)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
