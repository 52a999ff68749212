"""Docstring quality on real code: standard-library functions with their docstrings removed.

    .venv/bin/python benchmarks/docstring_bench.py [--functions 60] [--models gemma-3-270m,qwen2.5-coder-1.5b]

Each function (from Python's standard library, a seeded sample of those with a docstring and a body
of 3-40 lines) loses its docstring; the "doc comment" code action writes one with each model as the
quality tier; the first line of the new docstring is scored against the original first line with
smoothed BLEU-4 (the CodeXGLUE code-to-text metric: lower-cased, punctuation split off, add-one
smoothing for 2- to 4-grams, brevity penalty; averaged over functions, x100). Writes JSON and a
markdown file with examples side by side (benchmarks/results/docstrings.{json,md}).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import math
import random
import re
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codeassist_lsp.actions.runner import ActionRunner  # noqa: E402
from codeassist_lsp.actions.targets import DocumentView, docstring_target  # noqa: E402
from codeassist_lsp.config import parse_settings  # noqa: E402
from codeassist_lsp.service import CompletionService  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
RESULTS = Path(__file__).parent / "results"
# Modules sampled from (real, documented code; none of them is used elsewhere in the benchmarks).
MODULES = ["argparse.py", "calendar.py", "difflib.py", "fractions.py", "ftplib.py", "gettext.py", "heapq.py",
           "imaplib.py", "inspect.py", "ipaddress.py", "mailbox.py", "pathlib.py", "pickle.py", "shlex.py",
           "shutil.py", "smtplib.py", "statistics.py", "string.py", "tarfile.py", "tempfile.py", "zipfile.py"]


# -- smoothed BLEU-4 (CodeXGLUE code-to-text) ---------------------------------------------------

def _normalize(text: str) -> list[str]:
    """Lower-case words with punctuation split off, as the code-to-text scorer does."""
    text = text.lower().strip()
    text = re.sub(r"([.,;:!?()\[\]{}\"'`<>=*/+-])", r" \1 ", text)
    return text.split()


def _ngrams(words: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def smoothed_bleu4(reference: str, hypothesis: str) -> float:
    """Sentence BLEU-4 with add-one smoothing above unigrams and a brevity penalty, in [0, 1]."""
    ref, hyp = _normalize(reference), _normalize(hypothesis)
    if not hyp or not ref:
        return 0.0
    log_precision = 0.0
    for n in range(1, 5):
        counts = _ngrams(hyp, n)
        matches = sum(min(count, _ngrams(ref, n)[gram]) for gram, count in counts.items())
        total = max(len(hyp) - n + 1, 0)
        smooth = 1 if n > 1 else 0
        if matches + smooth == 0:
            return 0.0
        log_precision += math.log((matches + smooth) / (total + smooth)) / 4
    brevity = min(0.0, 1 - (len(ref) + 1) / (len(hyp) + 1))  # the scorer's +1 on both lengths
    return math.exp(log_precision + brevity)


# -- the functions ------------------------------------------------------------------------------

def sample_functions(count: int, seed: int) -> list[dict[str, Any]]:
    """Documented standard-library functions as source with the docstring removed."""
    found = []
    for name in MODULES:
        path = STDLIB / name
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.split("\n")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.body:
                continue
            doc = ast.get_docstring(node, clean=True)
            first = node.body[0]
            if not doc or not isinstance(first, ast.Expr) or len(node.body) < 2 or node.decorator_list:
                continue
            body_lines = node.end_lineno - first.end_lineno
            if not 3 <= body_lines <= 40 or len(doc.split("\n", 1)[0].split()) < 3:
                continue
            start = node.lineno - 1
            indent = len(lines[start]) - len(lines[start].lstrip())
            code = [line[indent:] if line.strip() else "" for line in lines[start:node.end_lineno]]
            doc_start, doc_end = first.lineno - node.lineno, first.end_lineno - node.lineno
            without = "\n".join(code[:doc_start] + code[doc_end + 1:]) + "\n"
            found.append({"id": f"{name}:{node.name}:{node.lineno}", "code": without,
                          "reference": doc.split("\n", 1)[0].strip()})
    return random.Random(seed).sample(found, min(count, len(found)))


def first_doc_line(new_text: str) -> str:
    """The first line of the docstring an edit inserts."""
    inside = new_text.strip().removeprefix('"""').removeprefix("'''")
    return inside.split("\n", 1)[0].removesuffix('"""').strip()


async def document_all(runner: ActionRunner, functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the docstring action on every function; the first line of each docstring and its score."""
    rows = []
    for number, function in enumerate(functions):
        view = DocumentView.of(f"file:///docs/f{number}.py", function["code"], 1, "python")
        body = function["code"].index("\n") + 1
        target = docstring_target(view, body)
        started = time.perf_counter()
        line = ""
        if target is not None:
            outcome = await runner.resolve(target, view)
            line = first_doc_line(outcome.replacement.new_text) if outcome.replacement else ""
        rows.append({"id": function["id"], "reference": function["reference"], "generated": line,
                     "bleu": smoothed_bleu4(function["reference"], line),
                     "ms": round((time.perf_counter() - started) * 1000)})
    return rows


def main() -> None:
    """Both models on the same functions; a table, JSON and examples side by side."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="gemma-3-270m,qwen2.5-coder-1.5b")
    args = parser.parse_args()
    functions = sample_functions(args.functions, args.seed)
    report: dict[str, Any] = {"functions": len(functions), "seed": args.seed, "models": {}}
    for model in args.models.split(","):
        settings = parse_settings({"cache": {"enabled": False}, "actions": {"model": {"name": model}}})
        service = CompletionService(settings)
        try:
            service.wait_until_loaded()
            service.worker.quality_loaded.wait()
            runner = ActionRunner(service, settings.actions, {})
            rows = asyncio.run(document_all(runner, functions))
        finally:
            service.close()
        report["models"][model] = {"bleu4": round(100 * sum(r["bleu"] for r in rows) / len(rows), 2),
                                   "empty": sum(1 for r in rows if not r["generated"]),
                                   "mean_ms": round(sum(r["ms"] for r in rows) / len(rows)), "rows": rows}
        print(f"{model}: smoothed BLEU-4 {report['models'][model]['bleu4']:.2f} "
              f"({report['models'][model]['empty']} empty)", file=sys.stderr)
    names = list(report["models"])
    if len(names) == 2:
        first, second = (report["models"][n]["bleu4"] for n in names)
        report["ratio"] = round(second / first, 2) if first else None
    print(f"| model | smoothed BLEU-4 | no docstring | mean ms |\n|---|---|---|---|")
    for name, entry in report["models"].items():
        print(f"| {name} | {entry['bleu4']:.2f} | {entry['empty']} | {entry['mean_ms']} |")
    if "ratio" in report:
        print(f"{names[1]} / {names[0]} = {report['ratio']}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "docstrings.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Docstrings written for standard-library functions (first line), side by side", "",
             f"{len(functions)} functions, seed {args.seed}; smoothed BLEU-4 of the first line against the original.",
             "", "| function | original | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for index in range(min(10, len(functions))):
        cells = [report["models"][n]["rows"][index] for n in names]
        lines.append(f"| `{cells[0]['id']}` | {cells[0]['reference']} | "
                     + " | ".join(f"{c['generated'] or '(none)'} ({100 * c['bleu']:.0f})" for c in cells) + " |")
    (RESULTS / "docstrings.md").write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    print(f"wrote {RESULTS / 'docstrings.json'} and docstrings.md")


if __name__ == "__main__":
    main()
