"""Context-quality benchmark: does the assembled prompt hold the definition the next token needs?

Probes come from real multi-file code nobody here wrote (the Python standard library, libraries
installed in the venv, npm's own JavaScript, Go sources shipped with git). At the first use of a
name defined in another file of the same project, the file is cut at that point, context is
assembled at the cursor with the default inline budget, and the probe counts as recalled when the
signature of one of that name's definitions is in the prompt. The immediate-context-only baseline
runs on the same probes in the same run.

    .venv/bin/python benchmarks/context_bench.py [--quick] [--json benchmarks/results/context.json]

`measure_humaneval(complete)` scores single-line infilling (exact match and tests passing) for any
`complete(prefix, suffix) -> str`, e.g. the embedded engine with and without assembled context.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codeassist_lsp.context.assembler import (  # noqa: E402
    ContextAssembler,
    assemble_context,
    render_prompt_prefix,
)
from codeassist_lsp.context.documents import DocumentTrees  # noqa: E402
from codeassist_lsp.context.languages import language_for, load_query, parse  # noqa: E402
from codeassist_lsp.context.resolve import bound_names, implicit_neighbours, resolve_import  # noqa: E402
from codeassist_lsp.context.symbols import Definition  # noqa: E402
from codeassist_lsp.context.tokens import tiktoken_counter  # noqa: E402
from codeassist_lsp.context.workspace import WorkspaceIndex  # noqa: E402

log = logging.getLogger("context_bench")

DEFAULT_BUDGET = 1500  # the inline-completion budget (tokens), all sources together
STDLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
VENV_SITE = Path(__file__).resolve().parents[1] / ".venv/lib/python3.11/site-packages"
NPM = Path("/usr/lib/node_modules/npm")
GO_PROJECTS = [Path("/usr/share/doc/git/contrib/persistent-https")]
HUMANEVAL = Path(__file__).resolve().parents[2] / "shared/data/humaneval/HumanEval-SingleLineInfilling.jsonl.gz"
if not HUMANEVAL.exists():
    HUMANEVAL = Path("/work/shared/data/humaneval/HumanEval-SingleLineInfilling.jsonl.gz")

_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


class Probe:
    """One cursor: a file cut just before the first use of a name defined elsewhere in its project."""

    def __init__(self, language: str, path: Path, offset: int, name: str, signatures: list[str]) -> None:
        self.language = language
        self.path = path
        self.offset = offset
        self.name = name
        self.signatures = signatures


def _code_ranges_to_skip(tree, language) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """Byte ranges of comments, strings and import statements: a name there is not a use."""
    ranges: list[tuple[int, int]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if "comment" in node.type or "string" in node.type:
            ranges.append((node.start_byte, node.end_byte))
            continue
        stack.extend(node.children)
    query = load_query(language, "imports")
    if query is not None:
        for _, captures in query.matches(tree.root_node):
            statement = captures.get("import")
            if statement is not None:
                statement = statement[0] if isinstance(statement, list) else statement
                # A CommonJS require binds the name inside a declarator: skip the whole statement line.
                ranges.append((statement.start_byte, statement.end_byte))
    return ranges


def build_probes(index: WorkspaceIndex, files: Iterable[Path], per_file: int, rng: random.Random) -> list[Probe]:
    """Probes for the given files of an indexed project."""
    probes: list[Probe] = []
    for path in files:
        table = index.table(str(path))
        language = language_for(None, path.name)
        if table is None or language is None:
            continue
        source = path.read_bytes()
        tree = parse(language, source)
        if tree is None:
            continue
        skip = sorted(_code_ranges_to_skip(tree, language))
        own = {definition.name for definition in table.definitions}
        # A use refers to another file's definition when an import binds the name, or (Go, JVM, C#)
        # when a file of the same package defines it at top level; anything else may be a local.
        # `import x` binds a module, not a definition: in Python only explicitly imported names count.
        # `import x` binds a module, not a definition: only explicitly imported names count.
        implicit = {str(p) for p in implicit_neighbours(language, path)}
        # The ground truth is the file the import names; files the resolver cannot find are not
        # probed (this measures ranking and budget, not resolver coverage).
        allowed: dict[str, set[str]] = {}
        for item in table.imports:
            targets = {str(p) for p in resolve_import(language, item, path, index.root, table.package)}
            for name in (item.names if language.name == "python" else bound_names(language, item)):
                allowed.setdefault(name, set()).update(targets)
        text = source.decode("utf-8", errors="replace")
        seen: set[str] = set()
        found: list[Probe] = []
        byte_offset = 0
        char_cursor = 0
        for match in _WORD.finditer(text):
            name = match.group()
            if name in seen or name in own or len(name) < 3:
                continue
            start = match.start()
            # Attribute uses (x.name) belong to whatever x is; only plain names are probes.
            if start > 0 and text[start - 1] == ".":
                continue
            byte_offset += len(text[char_cursor:start].encode("utf-8"))
            char_cursor = start
            if any(low <= byte_offset < high for low, high in skip):
                continue
            definitions = [d for d in index.lookup(name) if d.path != str(path) and _top_level(d)]
            seen.add(name)
            definitions = [d for d in definitions if d.path in allowed.get(name, implicit)]
            if not definitions or len({d.path for d in definitions}) > 3:
                continue  # not defined elsewhere, or too common to have one right answer
            found.append(Probe(language.name, path, start, name, [d.signature.splitlines()[0].strip() for d in definitions]))
        rng.shuffle(found)
        probes.extend(found[:per_file])
    return probes


def _top_level(definition: Definition) -> bool:
    """Top-level definitions only: a method's use needs its receiver's type, not just its name."""
    return definition.kind != "method" and not definition.snippet.startswith((" ", "\t"))


def _recalled(prompt: str, probe: Probe) -> bool:
    return any(signature and signature in prompt for signature in probe.signatures)


def run_probes(probes: list[Probe], assembler: ContextAssembler, count_tokens: Callable[[str], int],
               budget: int) -> dict[str, object]:
    """Recall and timing of the full assembler against the immediate-only baseline."""
    hits = baseline_hits = 0
    times: list[float] = []
    definitions_times: list[float] = []
    parse_times: list[float] = []
    documents = DocumentTrees()
    for probe in probes:
        text = probe.path.read_text(encoding="utf-8", errors="replace")[: probe.offset]
        language = language_for(None, probe.path.name)
        # In the server the document is parsed on didChange (incrementally), not per request.
        started = time.perf_counter()
        document = documents.open(str(probe.path), text, language)
        parse_times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        context = assembler.assemble(text, len(text), path=str(probe.path), language=language,
                                     budget_tokens=budget, count_tokens=count_tokens, tree=document.tree)
        times.append((time.perf_counter() - started) * 1000)
        documents.close(str(probe.path))
        definitions_times.append(float(context.report.get("definitions_ms", 0.0)))
        hits += _recalled(render_prompt_prefix(context) + context.suffix, probe)
        baseline = assemble_context(text, len(text), path=str(probe.path), language=language,
                                    budget_tokens=budget, count_tokens=count_tokens)
        baseline_hits += _recalled(baseline.prefix + baseline.suffix, probe)
    n = max(1, len(probes))
    return {
        "probes": len(probes),
        "recall": round(hits / n, 3),
        "baseline_recall": round(baseline_hits / n, 3),
        "recall_ratio": round(hits / baseline_hits, 2) if baseline_hits else None,
        "assembly_ms_p50": round(statistics.median(times), 2) if times else None,
        "assembly_ms_p99": round(_percentile(times, 99), 2) if times else None,
        "definitions_ms_p50": round(statistics.median(definitions_times), 2) if times else None,
        "parse_ms": parse_times,
        "assembly_ms": times,
    }


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(percent / 100 * (len(ordered) - 1))))]


def _index(root: Path, cache_root: Path, exclude: tuple[str, ...] = ()) -> WorkspaceIndex:
    index = WorkspaceIndex(root, cache_dir=cache_root / re.sub(r"\W+", "_", str(root)), exclude=exclude)
    stats = index.build()
    log.info("%s: %d files, %d parsed, %.1fs", root, stats.files, stats.parsed, stats.seconds)
    return index


def corpora(quick: bool) -> list[tuple[str, Path, tuple[str, ...], list[Path]]]:
    """(language, workspace root, excludes, probe directories) of the real projects on this disk."""
    found = []
    if STDLIB.is_dir():
        packages = ["json", "email", "http", "asyncio", "concurrent", "importlib", "logging", "unittest",
                    "xml", "urllib", "multiprocessing", "sqlite3", "ctypes", "tomllib", "zoneinfo",
                    "wsgiref", "dbm", "html", "curses", "venv", "re", "collections"]
        if quick:
            packages = packages[:6]
        excludes = ("site-packages/", "test/", "idlelib/", "lib2to3/", "tkinter/", "turtledemo/")
        found.append(("python", STDLIB, excludes, [STDLIB / p for p in packages if (STDLIB / p).is_dir()]))
    for library in ("pygls", "lsprotocol", "cattrs", "diskcache", "pathspec", "_pytest", "pluggy", "jinja2", "tiktoken"):
        if (VENV_SITE / library).is_dir() and not quick:
            found.append(("python", VENV_SITE / library, (), [VENV_SITE / library]))
    if NPM.is_dir():
        found.append(("javascript", NPM, ("test/", "tap-snapshots/", "docs/"), [NPM / "lib"] + sorted((NPM / "node_modules").iterdir())[: 10 if quick else 60]))
    for project in GO_PROJECTS:
        if project.is_dir():
            found.append(("go", project, (), [project]))
    return found


def run_benchmark(quick: bool = False, budget: int = DEFAULT_BUDGET, per_file: int = 3, max_probes: int = 400,
                  cache_root: Path | None = None) -> dict[str, object]:
    """Run every corpus; returns the results keyed by language."""
    rng = random.Random(0)
    count_tokens = tiktoken_counter()
    cache_root = cache_root or Path(tempfile.gettempdir()) / "codeassist-context-bench"
    by_language: dict[str, list[tuple[Probe, ContextAssembler]]] = {}
    index_info: dict[str, object] = {}
    for language, root, excludes, probe_dirs in corpora(quick):
        index = _index(root, cache_root, excludes)
        index_info[str(root)] = {"files": index.stats.files, "parsed": index.stats.parsed,
                                 "from_cache": index.stats.from_cache, "seconds": round(index.stats.seconds, 2)}
        assembler = ContextAssembler(index, root=root)
        files = [Path(p) for p in index.files() if any(Path(p).is_relative_to(d) for d in probe_dirs)]
        files.sort()
        for probe in build_probes(index, files, per_file, rng):
            by_language.setdefault(language, []).append((probe, assembler))
    results: dict[str, object] = {}
    for language, pairs in sorted(by_language.items()):
        rng.shuffle(pairs)
        pairs = pairs[:max_probes]
        # Group by assembler (one per project) so each project's caches warm up as in a real session.
        merged: dict[str, object] = {"probes": 0}
        outcomes = []
        for assembler in {id(a): a for _, a in pairs}.values():
            probes = [p for p, a in pairs if a is assembler]
            outcomes.append((probes, run_probes(probes, assembler, count_tokens, budget)))
        total = sum(len(p) for p, _ in outcomes)
        recall = sum(o["recall"] * len(p) for p, o in outcomes) / max(1, total)  # type: ignore[operator]
        baseline = sum(o["baseline_recall"] * len(p) for p, o in outcomes) / max(1, total)  # type: ignore[operator]
        all_times = [t for _, o in outcomes for t in o["assembly_ms"]]  # type: ignore[attr-defined]
        all_parses = [t for _, o in outcomes for t in o["parse_ms"]]  # type: ignore[attr-defined]
        merged = {
            "probes": total,
            "recall": round(recall, 3),
            "baseline_recall": round(baseline, 3),
            "recall_ratio": round(recall / baseline, 2) if baseline else None,
            "assembly_ms_p50": round(statistics.median(all_times), 2),
            "assembly_ms_p99": round(_percentile(all_times, 99), 2),
            "full_parse_ms_p50": round(statistics.median(all_parses), 2),
            "full_parse_ms_p99": round(_percentile(all_parses, 99), 2),
            "projects": len(outcomes),
        }
        results[language] = merged
    return {"budget_tokens": budget, "token_counter": "tiktoken cl100k_base (offline)", "languages": results,
            "indexes": index_info}


def _weighted_median(pairs: list[tuple[object, int]]) -> float | None:
    expanded = [float(v) for v, n in pairs if v is not None for _ in range(n)]  # type: ignore[arg-type]
    return round(statistics.median(expanded), 2) if expanded else None


def timing_on_large_workspace(count_tokens: Callable[[str], int], cache_root: Path, samples: int = 200) -> dict[str, object]:
    """Assembly time at random cursors of the stdlib (~1,800 files) once indexed; also the restart cost."""
    excludes = ("site-packages/",)
    # A fresh cache: the first build really parses everything, the restart reads it back.
    cache_dir = Path(tempfile.mkdtemp(prefix="stdlib_full_", dir=cache_root))
    index = WorkspaceIndex(STDLIB, cache_dir=cache_dir, exclude=excludes)
    first = index.build()
    index.close()
    restart = WorkspaceIndex(STDLIB, cache_dir=cache_dir, exclude=excludes)
    second = restart.build()
    assembler = ContextAssembler(restart, root=STDLIB)
    rng = random.Random(1)
    files = [Path(p) for p in restart.files()]
    times = []
    for path in rng.sample(files, min(samples, len(files))):
        text = path.read_text(encoding="utf-8", errors="replace")
        offset = rng.randrange(len(text) + 1)
        language = language_for(None, path.name)
        # A document being edited is parsed on didChange, not per request, and its symbol table
        # is cached per version: time the request after the one that filled that cache.
        tree = parse(language, text.encode("utf-8"))
        assembler.assemble(text, offset, path=str(path), language=language, budget_tokens=DEFAULT_BUDGET,
                           count_tokens=count_tokens, version=1, tree=tree)
        started = time.perf_counter()
        assembler.assemble(text, offset, path=str(path), language=language, budget_tokens=DEFAULT_BUDGET,
                           count_tokens=count_tokens, version=1, tree=tree)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "files": second.files,
        "first_index_seconds": round(first.seconds, 1),
        "first_index_parsed": first.parsed,
        "restart_index_seconds": round(second.seconds, 2),
        "restart_parsed": second.parsed,
        "assembly_ms_p50": round(statistics.median(times), 2),
        "assembly_ms_p99": round(_percentile(times, 99), 2),
        "samples": len(times),
        "cache_dir": str(cache_dir),
        "note": "cursor at a random offset of a random stdlib file, tree from didChange, symbol table cached per version",
    }


# ------------------------------------------------------------------------------------------------
# HumanEval single-line infilling
# ------------------------------------------------------------------------------------------------

# The problems the pipeline was developed against (`--humaneval 200`, seed 0); `--held-out` samples
# from the others, so a rule tuned on the development set is checked on problems it never saw.
DEVELOPMENT_SAMPLE = 200


def load_humaneval(limit: int | None = None, seed: int = 0, held_out: int = 0) -> list[dict[str, str]]:
    """The single-line infilling problems, optionally a seeded random subset of `limit`.

    held_out=k > 0: drawn from the problems outside the development sample and outside held-out
    samples 1..k-1 (each a seeded sample of DEVELOPMENT_SAMPLE), so every round of changes can be
    checked on problems nothing was tuned on.
    """
    with gzip.open(HUMANEVAL, "rt", encoding="utf-8") as handle:
        problems = [json.loads(line) for line in handle]
    for _round in range(held_out):
        seen = {p["task_id"] for p in random.Random(0).sample(problems, DEVELOPMENT_SAMPLE)}
        problems = [p for p in problems if p["task_id"] not in seen]
    if limit is not None and limit < len(problems):
        problems = random.Random(seed).sample(problems, limit)
    return problems


_PASS_CACHE: dict[tuple[str, str], bool] = {}


def _limit_child() -> None:
    """In the test process: cap memory and CPU time (the code under test is model output)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def _passes(problem: dict[str, str], middle: str, timeout_s: float = 10.0) -> bool:
    """Run the problem's tests on prompt + middle + suffix in an isolated, limited subprocess."""
    key = (problem["task_id"], middle)
    if key in _PASS_CACHE:  # both arms often write the same line: run its tests once
        return _PASS_CACHE[key]
    program = (problem["prompt"] + middle + problem["suffix"] + "\n" + problem["test"]
               + f"\ncheck({problem['entry_point']})\n")
    with tempfile.TemporaryDirectory(prefix="humaneval_run_") as folder:
        script = Path(folder) / "program.py"
        script.write_text(program)
        try:
            # -I: no user site, no env vars, no cwd on sys.path; a scratch cwd; minimal env.
            result = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, timeout=timeout_s,
                                    cwd=folder, env={"PATH": "/usr/bin:/bin"}, preexec_fn=_limit_child)
            ok = result.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
    _PASS_CACHE[key] = ok
    return ok


def score_line(problem: dict[str, str], completion: str) -> dict[str, object]:
    """Exact match and tests of one completion; its first line is the answer (the task is one line)."""
    line = completion.split("\n", 1)[0]
    middle = line + "\n"
    # The prompt ends at the start of the line (indentation included in the solution).
    return {"line": line, "exact": middle.strip() == problem["canonical_solution"].strip(),
            "passed": _passes(problem, middle)}


def _summary(rows: list[dict[str, object]]) -> dict[str, object]:
    n = max(1, len(rows))
    return {"problems": len(rows), "exact_match": round(sum(bool(r["exact"]) for r in rows) / n, 3),
            "pass_rate": round(sum(bool(r["passed"]) for r in rows) / n, 3)}


def measure_humaneval(complete: Callable[[str, str], str], limit: int | None = 80, seed: int = 0,
                      records: list[dict[str, object]] | None = None) -> dict[str, object]:
    """Exact match and test pass rate of `complete(prefix, suffix)` (its first line is the answer)."""
    rows = []
    for problem in load_humaneval(limit, seed):
        row = {"task_id": problem["task_id"], **score_line(problem, complete(problem["prompt"], problem["suffix"]))}
        rows.append(row)
        if records is not None:
            records.append(row)
    return _summary(rows)


def humaneval_arms(limit: int | None, seed: int = 0, log_path: Path | None = None,
                   threads: int = 0, held_out: int = 0) -> dict[str, object]:
    """Full pipeline vs naive prefix-only prompt on single-line infilling, same model, same run.

    Arms, interleaved per problem so a partial run compares like with like:
    - naive: the prefix only, greedy, the single-line token limit, first line kept;
    - pipeline: CompletionService.complete on prefix + suffix with the cursor at the gap (the
      cursor sits at the start of the line that follows the missing one);
    - pipeline_blank_line: the same with an empty line opened at the gap, which is what the
      buffer looks like when a user writes the missing line;
    - pipeline_before_insert_gate: the pipeline arm as it was before the gate learned to suggest a
      line above the code at the cursor. Then such cursors were gated "none" (no model call, no
      suggestion) and every other cursor took the same path, so this arm is exact, not estimated.
    """
    from codeassist_lsp.config import parse_settings
    from codeassist_lsp.context.assembler import ContextAssembler as Assembler
    from codeassist_lsp.context.gating import decide_mode
    from codeassist_lsp.engine.base import GenerationRequest
    from codeassist_lsp.engine.postprocess import line_stop
    from codeassist_lsp.service import CompletionService

    # threads only changes speed (set it below the core count when other jobs share the machine).
    settings = parse_settings({"cache": {"enabled": False}, "model": {"threads": threads}})
    root = Path(tempfile.mkdtemp(prefix="humaneval_"))
    # As the one-shot CLI does: related definitions come from the file's own folder.
    service = CompletionService(settings, assembler=Assembler(None, None, root=root))
    backend = service.wait_until_loaded()
    rows: dict[str, list[dict[str, object]]] = {"naive": [], "pipeline": [], "pipeline_blank_line": [],
                                                "pipeline_before_insert_gate": []}
    modes: dict[str, dict[str, int]] = {"pipeline": {}, "pipeline_blank_line": {}}

    def pipeline(prefix: str, suffix: str, blank: bool, number: int) -> tuple[str, dict[str, object]]:
        # One path per problem, forgotten after each call: no typed-ahead reuse or sticky window.
        path = str(root / f"problem_{number}.py")
        text = prefix + ("\n" if blank else "") + suffix
        suggestion = service.complete(text, len(prefix), path=path, language_id="python")
        service.forget(path)
        gate = decide_mode(text, len(prefix), language_for("python"))
        info = {"mode": suggestion.mode, "insert_line": gate.insert_line, "raw": suggestion.raw_text,
                "model": suggestion.result.text if suggestion.result else None,
                "verdict": suggestion.verdict.status if suggestion.verdict else None}
        return suggestion.text, info

    def naive(prefix: str) -> str:
        # Same model, greedy, same single-line token limit, stopped at the first newline.
        request = GenerationRequest(prompt_tokens=tuple(backend.tokenize(prefix, add_bos=True)),
                                    max_tokens=settings.completion.max_tokens, stop_check=line_stop)
        return service.worker.submit(request).future.result().text

    handle = log_path.open("w") if log_path else None
    try:
        for number, problem in enumerate(load_humaneval(limit, seed, held_out)):
            outputs: dict[str, tuple[str, dict[str, object]]] = {
                "naive": (naive(problem["prompt"]), {}),
                "pipeline": pipeline(problem["prompt"], problem["suffix"], blank=False, number=number),
                "pipeline_blank_line": pipeline(problem["prompt"], problem["suffix"], blank=True, number=number),
            }
            gap_text, gap_info = outputs["pipeline"]
            outputs["pipeline_before_insert_gate"] = ("" if gap_info["insert_line"] else gap_text, {})
            for arm, (text, info) in outputs.items():
                row = {"task_id": problem["task_id"], **score_line(problem, text), **info}
                rows[arm].append(row)
                if arm in modes:
                    modes[arm][str(info["mode"])] = modes[arm].get(str(info["mode"]), 0) + 1
                if handle:
                    handle.write(json.dumps({"arm": arm, "canonical": problem["canonical_solution"], **row}) + "\n")
                    handle.flush()
            if number % 10 == 9:
                log.info("humaneval %d: %s", number + 1,
                         {arm: _summary(r) for arm, r in rows.items()})
    finally:
        if handle:
            handle.close()
        service.close()
        shutil.rmtree(root, ignore_errors=True)
    arms = {arm: {**_summary(r), **({"modes": modes[arm]} if arm in modes else {})} for arm, r in rows.items()}
    return {"model": backend.model_id, "fim": backend.fim_tokens() is not None, "seed": seed, "held_out": held_out,
            "max_tokens": settings.completion.max_tokens, **arms}


def _humaneval_table(run: dict[str, object]) -> str:
    lines = [f"{'HumanEval single-line':<28}{'problems':>9}{'exact':>8}{'pass':>8}"]
    for arm in ("naive", "pipeline_before_insert_gate", "pipeline", "pipeline_blank_line"):
        row = run[arm]  # type: ignore[index]
        lines.append(f"{arm:<28}{row['problems']:>9}{row['exact_match']:>8.3f}{row['pass_rate']:>8.3f}")
    return "\n".join(lines)


def _table(results: dict[str, object]) -> str:
    languages = results["languages"]  # type: ignore[index]
    lines = [
        f"{'language':<11}{'probes':>7}{'recall':>8}{'baseline':>10}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'parse p50':>11}{'parse p99':>11}",
    ]
    for language, row in languages.items():  # type: ignore[union-attr]
        ratio = row["recall_ratio"]
        lines.append(
            f"{language:<11}{row['probes']:>7}{row['recall']:>8.3f}{row['baseline_recall']:>10.3f}"
            f"{(f'{ratio:.1f}' if ratio else 'inf'):>7}{row['assembly_ms_p50']:>8}{row['assembly_ms_p99']:>8}"
            f"{row['full_parse_ms_p50']:>11}{row['full_parse_ms_p99']:>11}"
        )
    large = results.get("large_workspace")
    if large:
        lines.append(
            f"stdlib workspace ({large['files']} files): assembly p50 {large['assembly_ms_p50']} ms, "
            f"p99 {large['assembly_ms_p99']} ms; first index {large['first_index_seconds']} s "
            f"({large['first_index_parsed']} parsed), restart {large['restart_index_seconds']} s "
            f"({large['restart_parsed']} parsed)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer projects (a smoke run)")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "context.json")
    parser.add_argument("--no-large", action="store_true", help="skip the 1,800-file stdlib timing")
    parser.add_argument("--humaneval", type=int, default=0, metavar="N",
                        help="HumanEval single-line infilling on N problems (0: skip, -1: all), pipeline vs naive")
    parser.add_argument("--humaneval-only", action="store_true",
                        help="run only HumanEval; the other parts of the JSON report are kept as they were")
    parser.add_argument("--threads", type=int, default=0, help="model threads for HumanEval (0: all cores)")
    parser.add_argument("--humaneval-log", type=Path, default=None, help="per-problem JSONL of every arm")
    parser.add_argument("--held-out", type=int, default=0, metavar="K",
                        help=f"HumanEval held-out sample K: outside the {DEVELOPMENT_SAMPLE} the pipeline was "
                             "developed on and outside held-out samples 1..K-1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    started = time.perf_counter()
    if args.humaneval:
        limit = None if args.humaneval < 0 else args.humaneval
        humaneval = humaneval_arms(limit, seed=0, log_path=args.humaneval_log, threads=args.threads,
                                   held_out=args.held_out)
        humaneval["seconds"] = round(time.perf_counter() - started, 1)
        if args.humaneval_only:
            results = json.loads(args.json.read_text()) if args.json.exists() else {}
            key = "humaneval_single_line" + (f"_held_out_{args.held_out}" if args.held_out else "")
            results[key] = humaneval
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            sys.stdout.write(_humaneval_table(humaneval) + "\n")
            return 0
    results = run_benchmark(quick=args.quick, budget=args.budget)
    if not args.no_large and STDLIB.is_dir():
        cache_root = Path(tempfile.gettempdir()) / "codeassist-context-bench"
        cache_root.mkdir(parents=True, exist_ok=True)
        results["large_workspace"] = timing_on_large_workspace(tiktoken_counter(), cache_root)
        shutil.rmtree(cache_root / Path(results["large_workspace"].pop("cache_dir")).name, ignore_errors=True)
    if args.humaneval:
        results["humaneval_single_line"] = humaneval
    results["seconds"] = round(time.perf_counter() - started, 1)
    sys.stdout.write(_table(results) + "\n")
    if args.humaneval:
        sys.stdout.write(_humaneval_table(humaneval) + "\n")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
