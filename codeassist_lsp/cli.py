"""Entry points: `codeassist-lsp` (the server) and `codeassist` (complete, models, serve)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from codeassist_lsp import __version__


def _setup_logging(verbosity: int, log_file: str | None) -> None:
    # Logs never go to stdout: on stdio it is the protocol stream.
    level = logging.WARNING - 10 * min(verbosity, 2)
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # One line per HTTP request to a remote engine is noise, even at -v.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="serve on a TCP socket (loopback only unless "
                        "--allow-remote-clients); clients must send the token file's token")
    parser.add_argument("--allow-remote-clients", action="store_true",
                        help="with --tcp: allow listening on a non-loopback address")
    parser.add_argument("--token-file", metavar="PATH",
                        help="with --tcp: where to write the client token (default: <cache dir>/tcp-token)")
    parser.add_argument("--log-file", help="write logs here instead of stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    parser.add_argument("--no-preload", action="store_true",
                        help="do not start loading the installed default model before the editor's settings arrive")


def _preload_default_model() -> None:
    # Cold start: the weights load (C code, GIL released) while Python imports the LSP stack;
    # the engine adopts them if the editor's settings name the same model, else they are freed.
    try:
        from codeassist_lsp.engine.llama import preload_model
        from codeassist_lsp.engine.tiers import preload_path

        path = preload_path()
        if path is not None:
            preload_model(path)
    except Exception:  # an optimisation only: the engine loads the model itself
        logging.getLogger(__name__).debug("model preload failed", exc_info=True)


def _tcp_address(args: argparse.Namespace) -> tuple[str, int] | str:
    """--tcp's host and port, or why they cannot be served."""
    from codeassist_lsp.policy import is_loopback_host

    host, _, port = args.tcp.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        return f"--tcp needs HOST:PORT with a port number, not {args.tcp!r}"
    if not is_loopback_host(host) and not args.allow_remote_clients:
        return (f"refusing to listen on {host}: other machines could connect. Use 127.0.0.1, or pass "
                "--allow-remote-clients to mean it (clients still need the token).")
    return host, int(port)


def _serve(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose, args.log_file)
    address = _tcp_address(args) if args.tcp else None
    if isinstance(address, str):
        print(f"codeassist-lsp: {address}", file=sys.stderr)
        return 2
    if not args.no_preload:
        _preload_default_model()
    from codeassist_lsp.server import create_server

    server = create_server()
    if address is not None:
        from codeassist_lsp.tcp import default_token_file, serve_tcp, write_token_file

        token_file = Path(args.token_file).expanduser() if args.token_file else default_token_file()
        try:
            token = write_token_file(token_file)  # on stdout nothing: a client reads the file
        except OSError as error:
            print(f"codeassist-lsp: cannot write the token file {token_file}: {error}", file=sys.stderr)
            return 2
        logging.getLogger(__name__).info("TCP client token in %s", token_file)
        serve_tcp(server, *address, token, token_file)
    else:
        server.start_io()
    # End now: a thread still reading stdin (until the client closes it) would keep the interpreter
    # from exiting, and a client waits for the exit after `exit` (LSP).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):  # pygls closes stdout on exit
            stream.flush()
    logging.shutdown()
    os._exit(server.exit_code)


def serve_main(argv: list[str] | None = None) -> int:
    """`codeassist-lsp`: run the language server."""
    parser = argparse.ArgumentParser(prog="codeassist-lsp", description="codeassist language server")
    parser.add_argument("--version", action="version", version=f"codeassist-lsp {__version__}")
    _add_server_args(parser)
    return _serve(parser.parse_args(argv))


def _timing(key: str, value: Any) -> str:
    """One step of a suggestion's timings as the one-shot CLI prints it (keys name their unit)."""
    if key == "p_accept":
        return f"P(accept) {value}"
    if not isinstance(value, (int, float)):
        return f"{key} {value}"
    name, unit = (key[:-3], key[-2:]) if key.endswith(("_ms", "_us")) else (key, "ms")
    return f"{name.replace('_', ' ')} {value} {unit}"


def _complete(args: argparse.Namespace) -> int:
    from codeassist_lsp.config import Settings
    from codeassist_lsp.errors import CodeassistError
    from codeassist_lsp.service import CompletionService

    started = time.perf_counter()
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"codeassist: cannot read {path}: {error}", file=sys.stderr)
        return 2
    lines = text.split("\n")
    line = args.line if args.line is not None else len(lines)
    if not 1 <= line <= len(lines):
        print(f"codeassist: --line must be between 1 and {len(lines)}", file=sys.stderr)
        return 2
    column = args.col if args.col is not None else len(lines[line - 1]) + 1
    column = min(max(column, 1), len(lines[line - 1]) + 1)
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + column - 1

    settings = Settings()
    if args.model:
        if Path(args.model).suffix == ".gguf":
            settings.model.path = args.model
        else:
            settings.model.name = args.model
    settings.completion.debounce_ms = 0
    settings.cache.enabled = not args.no_cache
    # One-shot: related definitions come from the file's folder (imports resolved on disk).
    from codeassist_lsp.context.assembler import ContextAssembler

    service = CompletionService(settings, assembler=ContextAssembler(None, None, root=path.resolve().parent))
    try:
        backend = service.wait_until_loaded()
        loaded = time.perf_counter()
        suggestion = service.complete(text, offset, path=str(path), language_id=args.language)
    except CodeassistError as error:
        print(f"codeassist: {error.for_user()}", file=sys.stderr)
        return 1
    finally:
        service.close()
    total_ms = (time.perf_counter() - started) * 1000
    result = suggestion.result
    report = {
        "file": str(path), "line": line, "col": column, "mode": suggestion.mode,
        "suggestion": suggestion.text, "model": backend.model_id,
        "verification": None if suggestion.verdict is None else {
            "status": suggestion.verdict.status, "checks": list(suggestion.verdict.checks),
            "not_checked": list(suggestion.verdict.not_checked), "reason": suggestion.verdict.reason},
        "timings_ms": {"load": round((loaded - started) * 1000, 1), **suggestion.timings,
                       "total": round(total_ms, 1)},
        "tokens": {"prompt": result.prompt_tokens, "evaluated": result.evaluated_tokens,
                   "generated": result.generated_tokens} if result else {},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if args.show_context and suggestion.context is not None:
        from codeassist_lsp.engine.prompts import completion_prompt_text

        head, fim_suffix = completion_prompt_text(backend, suggestion.context)
        print("----- context shown to the model -----")
        print(head + suggestion.start + "█" + (fim_suffix or ""))
        print("----- end of context -----")
    print(f"{path}:{line}:{column} ({suggestion.mode})")
    print(suggestion.text if suggestion.text else "(no suggestion)")
    if suggestion.verdict is not None:
        verdict = suggestion.verdict
        checked = ", ".join(verdict.checks) or "nothing"
        print(f"-- verified: {verdict.status} (checked {checked}){'; ' + verdict.reason if verdict.reason else ''}",
              file=sys.stderr)
    timings = ", ".join(_timing(key, value) for key, value in report["timings_ms"].items())
    print(f"-- {backend.model_id}; {timings}; tokens {report['tokens']}", file=sys.stderr)
    return 0


def _action(args: argparse.Namespace) -> int:
    """One code action on a file, on the quality tier: print the edit as a diff, or the explanation."""
    import asyncio
    import difflib

    from codeassist_lsp.actions.runner import ActionRunner
    from codeassist_lsp.actions.targets import DocumentView, list_actions
    from codeassist_lsp.config import Settings
    from codeassist_lsp.errors import CodeassistError
    from codeassist_lsp.service import CompletionService

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"codeassist: cannot read {path}: {error}", file=sys.stderr)
        return 2
    lines = text.split("\n")
    first, last = args.line, args.end_line or args.line
    if not 1 <= first <= last <= len(lines):
        print(f"codeassist: --line/--end-line must be between 1 and {len(lines)}", file=sys.stderr)
        return 2
    line_start = sum(len(x) + 1 for x in lines[:first - 1])
    if args.kind in ("docstring", "generate"):  # the cursor on the line's first character
        start = end = line_start + len(lines[first - 1]) - len(lines[first - 1].lstrip())
    else:  # the lines of the range
        start, end = line_start, sum(len(x) + 1 for x in lines[:last]) - 1
    view = DocumentView.of(path.resolve().as_uri(), text, 1, args.language, str(path))
    diagnostics = [(start, end, args.message)] if args.kind == "fix" else []
    offered = [a for a in list_actions(view, start, end, diagnostics)
               if a.target.action == args.kind and (args.kind != "refactor" or a.target.preset == args.preset)]
    if not offered:
        print(f"codeassist: no {args.kind} action applies at {path}:{first}", file=sys.stderr)
        return 1
    settings = Settings()
    service = CompletionService(settings)
    started = time.perf_counter()
    try:
        service.wait_until_loaded()
        service.worker.quality_loaded.wait()
        runner = ActionRunner(service, settings.actions, {})
        if settings.actions.type_check:
            from codeassist_lsp.actions.checked import candidate_filter

            runner.candidate_filters.append(candidate_filter)
        outcome = asyncio.run(runner.resolve(offered[0].target, view, path=str(path)))
        model = runner.backend.model_id
        on_fast_model = service.worker.quality is None  # read before close(), which frees (and clears) it
    except CodeassistError as error:
        print(f"codeassist: {error.for_user()}", file=sys.stderr)
        return 1
    finally:
        service.close()
    if outcome.explanation:
        print(outcome.explanation)
    elif outcome.replacement is not None:
        new = outcome.replacement.apply(text)
        sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                   str(path), f"{path} ({args.kind})"))
    else:
        print(f"codeassist: {args.kind}: {outcome.reason or 'no suggestion'}", file=sys.stderr)
        return 1
    if on_fast_model:
        from codeassist_lsp.engine.tiers import missing_code_model_hint

        print(f"-- {missing_code_model_hint()}", file=sys.stderr)
    print(f"-- {model}; {outcome.elapsed_ms:.0f} ms ({(time.perf_counter() - started):.1f} s with loading)",
          file=sys.stderr)
    return 0


def _models(args: argparse.Namespace) -> int:
    from codeassist_lsp.engine.models import install_model, models_dir, registry
    from codeassist_lsp.errors import CodeassistError

    if args.action == "list":
        for spec in registry().values():
            installed = (models_dir() / spec.file).is_file()
            mark = "installed" if installed else "not installed"
            size = f"{spec.size / 1e6:,.0f} MB" if spec.size else "?"
            features = ", ".join(f for f, on in (("FIM", spec.fim), ("chat", spec.chat)) if on) or "plain"
            print(f"{spec.name:22} {mark:14} {spec.tier:10} {size:>9}  {features:9} {spec.license:18} "
                  f"{spec.description}{' [default]' if spec.default else ''}")
        print(f"(model folder: {models_dir()})")
        return 0
    try:
        path = install_model(args.name, force=args.force)
    except CodeassistError as error:
        print(f"codeassist: {error.for_user()}", file=sys.stderr)
        return 1
    print(f"installed {args.name}: {path}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from codeassist_lsp.feedback import FeedbackRecorder
    from codeassist_lsp.feedback.stats import render_text, report, write_html
    from codeassist_lsp.feedback.store import FILE_NAME, FeedbackStore, default_directory

    directory = Path(args.directory) if args.directory else default_directory()
    if not (directory / FILE_NAME).is_file():
        print(f"codeassist: no feedback recorded yet in {directory} (the language server records it as you "
              "accept or reject suggestions; feedback.enabled turns it on)", file=sys.stderr)
        return 1
    store = FeedbackStore(directory, max_records=0, retention_days=0)  # read as it is, prune nothing
    recorder = FeedbackRecorder(None)
    recorder.store = store
    model = recorder.refit() or recorder.model  # the model gating would use now
    every = store.rows(unseen=True)
    rows = [row for row in every if row["outcome"] != "unseen"]
    stats = report(rows, model, unseen=len(every) - len(rows))
    store.close()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(render_text(stats))
    page = write_html(stats, Path(args.html) if args.html else directory / "stats.html")
    print(f"-- picture: {page}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`codeassist`: one-shot completion, model management, and the server."""
    parser = argparse.ArgumentParser(prog="codeassist", description="local-first AI code assistant")
    parser.add_argument("--version", action="version", version=f"codeassist {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    complete = commands.add_parser("complete", help="complete at a position of a file, print the suggestion")
    complete.add_argument("file")
    complete.add_argument("--line", type=int, help="1-based line (default: last line)")
    complete.add_argument("--col", type=int, help="1-based column (default: end of the line)")
    complete.add_argument("--language", help="LSP languageId (default: from the file name)")
    complete.add_argument("--model", help="registry model name or a .gguf path")
    complete.add_argument("--show-context", action="store_true", help="print the prompt the model saw")
    complete.add_argument("--json", action="store_true", help="machine-readable output")
    complete.add_argument("--no-cache", action="store_true", help="always run the model (no completion cache)")
    complete.add_argument("-v", "--verbose", action="count", default=0)
    complete.set_defaults(run=_complete)

    action = commands.add_parser("action", help="run a code action on a file with the quality model")
    action.add_argument("kind", choices=["docstring", "explain", "fix", "refactor", "generate"])
    action.add_argument("file")
    action.add_argument("--line", type=int, required=True, help="1-based line the action is about")
    action.add_argument("--end-line", type=int, help="last line of the range (explain, refactor)")
    action.add_argument("--message", default="", help="the diagnostic to fix (fix)")
    action.add_argument("--preset", default="simplify", help="refactor preset: simplify, idiomatic, async, extract")
    action.add_argument("--language", help="LSP languageId (default: from the file name)")
    action.add_argument("-v", "--verbose", action="count", default=0)
    action.set_defaults(run=_action)

    models = commands.add_parser("models", help="list or install models")
    models_actions = models.add_subparsers(dest="action", required=True)
    models_actions.add_parser("list", help="registry models and whether they are installed")
    install = models_actions.add_parser("install", help="install a registry model (offline)")
    install.add_argument("name")
    install.add_argument("--force", action="store_true", help="reinstall even if present")
    models.set_defaults(run=_models, verbose=0)

    stats = commands.add_parser("stats", help="acceptance of suggestions by language, mode and confidence")
    stats.add_argument("--directory", help="the feedback store's folder (default: <cache dir>/feedback)")
    stats.add_argument("--html", help="where to write the page with the charts (default: <folder>/stats.html)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(run=_stats, verbose=0)

    serve = commands.add_parser("serve", help="run the language server")
    _add_server_args(serve)
    serve.set_defaults(run=_serve)

    args = parser.parse_args(argv)
    if args.command != "serve":
        _setup_logging(args.verbose, None)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
