"""Background index of the workspace's definitions, persisted with diskcache across restarts."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from codeassist_lsp.context.languages import Language, language_for, parse, queries_fingerprint
from codeassist_lsp.context.symbols import Definition, SymbolTable, extract_symbols
from codeassist_lsp.errors import StorageUnavailable, report_unavailable

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

MAX_FILE_BYTES = 1_000_000
# Directories never worth indexing even without a .gitignore saying so.
ALWAYS_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"})
# Bumped when what we store per file changes shape.
INDEX_FORMAT = 1


def default_cache_dir(root: Path) -> Path:
    """Where the index of `root` persists: under the cache dir ($CODEASSIST_CACHE_DIR), one folder per workspace."""
    from codeassist_lsp.engine.models import cache_dir

    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "index" / digest


def _is_corrupt(error: BaseException) -> bool:
    """Whether SQLite says the file is damaged (not: locked, full, read-only, which are not the file's fault)."""
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError)


def index_storage_problem(directory: Path, error: BaseException) -> StorageUnavailable:
    """The user's view of an index that cannot be kept on disk: what it costs and how to fix it."""
    return StorageUnavailable(
        f"The workspace index in {directory} cannot be saved ({type(error).__name__}: {error}); "
        "it is kept in memory only and re-built at each start.",
        hint="Free space on that disk or make the folder writable, or set CODEASSIST_CACHE_DIR to another folder.")


def _looks_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"\0" in handle.read(8192)
    except OSError:
        return True


class _GitIgnore:
    """The .gitignore files met while walking down from the root, applied to paths below them."""

    def __init__(self, root: Path | None = None, extra_patterns: Sequence[str] = ()) -> None:
        import pathspec

        self._pathspec = pathspec
        self._specs: list[tuple[Path, object]] = []
        if root is not None and extra_patterns:
            self._specs.append((root, pathspec.GitIgnoreSpec.from_lines(list(extra_patterns))))

    def load(self, directory: Path) -> None:
        """Read `directory/.gitignore` if there is one."""
        ignore_file = directory / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                return
            spec = self._pathspec.GitIgnoreSpec.from_lines(lines)
            self._specs.append((directory, spec))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        """Whether any applicable .gitignore ignores `path` (last matching rule of the deepest file wins)."""
        verdict = False
        for base, spec in self._specs:
            try:
                relative = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if is_dir:
                relative += "/"
            result = spec.check_file(relative)  # type: ignore[attr-defined]
            if result.include is not None:
                verdict = bool(result.include)
        return verdict


@attrs.define
class IndexStats:
    """What the last (re)build did; `parsed` counts files that needed tree-sitter."""

    files: int = 0
    parsed: int = 0
    from_cache: int = 0
    skipped: int = 0
    seconds: float = 0.0


class WorkspaceIndex:
    """Definitions of every source file under a root, by name and by file."""

    def __init__(
        self,
        root: str | Path,
        cache_dir: str | Path | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
        persist: bool = True,
        exclude: Sequence[str] = (),
    ) -> None:
        self.root = Path(root).resolve()
        # Extra gitignore-style patterns (relative to the root), e.g. from user settings.
        self.exclude = tuple(exclude)
        self.max_file_bytes = max_file_bytes
        self.stats = IndexStats()
        self._tables: dict[str, SymbolTable] = {}
        self._by_name: dict[str, list[Definition]] = defaultdict(list)
        self._lock = threading.RLock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache = None
        self.directory: Path | None = None
        # Why the persisted index was thrown away and rebuilt at start (a damaged database), if it was.
        self.rebuilt_because: str | None = None
        if persist:
            self.directory = Path(cache_dir) if cache_dir else default_cache_dir(self.root)
            self._cache = self._open_cache(self.directory)
        self._key_salt = f"{INDEX_FORMAT}:{queries_fingerprint()}"

    def _open_cache(self, directory: Path):  # type: ignore[no-untyped-def]
        """The persisted index; a damaged one is deleted and started afresh (it is only a cache);
        None when the folder cannot be written (the index then lives in memory)."""
        import diskcache

        try:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                return diskcache.Cache(str(directory))
            except Exception as error:
                if not _is_corrupt(error):
                    raise
                log.warning("workspace index %s is damaged (%s): rebuilding it", directory, error)
                self.rebuilt_because = f"{type(error).__name__}: {error}"
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir(parents=True, exist_ok=True)
                return diskcache.Cache(str(directory))
        except Exception as error:  # OSError (unwritable, disk full), sqlite3.OperationalError, ...
            report_unavailable(index_storage_problem(directory, error))
            return None

    def _stop_persisting(self, error: BaseException) -> None:
        """The persisted index failed while in use (disk full, damaged): go on in memory."""
        cache, self._cache = self._cache, None
        if cache is None:
            return
        try:
            cache.close()
        except Exception:
            log.debug("closing the index database failed", exc_info=True)
        report_unavailable(index_storage_problem(self.directory or Path("?"), error))

    def _stored(self, key: str) -> SymbolTable | None:
        """The persisted symbols under `key`, or None."""
        cache = self._cache
        if cache is None:
            return None
        try:
            table = cache.get(key)
        except Exception as error:  # a damaged database or entry, a vanished folder
            self._stop_persisting(error)
            return None
        return table if isinstance(table, SymbolTable) else None

    def _store(self, key: str, table: SymbolTable) -> None:
        """Persist the symbols of one file (best effort)."""
        cache = self._cache
        if cache is None:
            return
        try:
            cache.set(key, table)
        except Exception as error:  # the disk filled up, the folder went away, ...
            self._stop_persisting(error)

    # ----- walking -------------------------------------------------------------------------
    def iter_source_files(self) -> Iterator[tuple[Path, Language]]:
        """Every indexable file under the root: known language, not ignored, not binary, not huge."""
        ignore = _GitIgnore(self.root, self.exclude)
        for directory, dirnames, filenames in os.walk(self.root):
            current = Path(directory)
            ignore.load(current)
            dirnames[:] = sorted(
                name
                for name in dirnames
                if name not in ALWAYS_SKIPPED_DIRS and not ignore.ignored(current / name, is_dir=True)
            )
            for name in sorted(filenames):
                path = current / name
                language = language_for(None, name)
                if language is None or ignore.ignored(path, is_dir=False):
                    continue
                yield path, language

    # ----- building ------------------------------------------------------------------------
    def build(self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> IndexStats:
        """Index the workspace now (blocking); files unchanged since the last run come from the cache."""
        started = time.perf_counter()
        stats = IndexStats()
        files = list(self.iter_source_files())
        total = len(files)
        seen: set[str] = set()
        for done, (path, language) in enumerate(files, start=1):
            if cancel is not None and cancel.is_set():
                log.info("indexing cancelled after %d of %d files", done - 1, total)
                break
            outcome = self._index_file(path, language)
            stats.files += outcome != "skipped"
            stats.parsed += outcome == "parsed"
            stats.from_cache += outcome == "cached"
            stats.skipped += outcome == "skipped"
            seen.add(str(path))
            if progress is not None and (done == total or done % 25 == 0):
                progress(done, total)
        with self._lock:
            for stale in set(self._tables) - seen:
                self._drop(stale)
        stats.seconds = time.perf_counter() - started
        self.stats = stats
        self._ready.set()
        log.info(
            "indexed %s: %d files (%d parsed, %d cached, %d skipped) in %.2fs",
            self.root, stats.files, stats.parsed, stats.from_cache, stats.skipped, stats.seconds,
        )
        return stats

    def start_background(
        self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> threading.Thread:
        """Build the index in a daemon thread; `wait()` blocks until it is done."""
        self._ready.clear()
        thread = threading.Thread(target=self.build, args=(progress, cancel), name="workspace-index", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the first build finished; False on timeout."""
        return self._ready.wait(timeout)

    @property
    def ready(self) -> bool:
        """Whether a build has completed."""
        return self._ready.is_set()

    def update_file(self, path: str | Path) -> bool:
        """Re-index one file after didSave / didChangeWatchedFiles; a deleted file is dropped."""
        file_path = Path(path).resolve()
        if not file_path.exists():
            self.remove_file(file_path)
            return False
        language = language_for(None, file_path.name)
        if language is None or self._ignored(file_path):
            return False
        return self._index_file(file_path, language) != "skipped"

    def remove_file(self, path: str | Path) -> None:
        """Forget a file (deleted or now ignored)."""
        with self._lock:
            self._drop(str(Path(path).resolve()))

    def _ignored(self, path: Path) -> bool:
        try:
            relative_parts = path.relative_to(self.root).parts
        except ValueError:
            return True
        ignore = _GitIgnore(self.root, self.exclude)
        current = self.root
        ignore.load(current)
        for part in relative_parts[:-1]:
            if part in ALWAYS_SKIPPED_DIRS or ignore.ignored(current / part, is_dir=True):
                return True
            current = current / part
            ignore.load(current)
        return ignore.ignored(path, is_dir=False)

    def _index_file(self, path: Path, language: Language) -> str:
        try:
            stat = path.stat()
        except OSError:
            return "skipped"
        if stat.st_size > self.max_file_bytes or _looks_binary(path):
            return "skipped"
        key = f"{self._key_salt}:{path}:{stat.st_mtime_ns}:{stat.st_size}"
        table = self._stored(key)
        outcome = "cached"
        if table is None:
            outcome = "parsed"
            try:
                source = path.read_bytes()
            except OSError:
                return "skipped"
            tree = parse(language, source)
            table = extract_symbols(language, tree, source, str(path)) if tree else SymbolTable(path=str(path))
            self._store(key, table)
        with self._lock:
            self._drop(str(path))
            self._tables[str(path)] = table
            for definition in table.definitions:
                self._by_name[definition.name].append(definition)
        return outcome

    def _drop(self, path: str) -> None:
        table = self._tables.pop(path, None)
        if table is None:
            return
        for definition in table.definitions:
            bucket = self._by_name.get(definition.name)
            if bucket:
                bucket[:] = [other for other in bucket if other.path != path]
                if not bucket:
                    del self._by_name[definition.name]

    # ----- queries -------------------------------------------------------------------------
    def lookup(self, name: str) -> list[Definition]:
        """Every indexed definition of `name`."""
        with self._lock:
            return list(self._by_name.get(name, ()))

    def table(self, path: str | Path) -> SymbolTable | None:
        """The symbols of one indexed file."""
        with self._lock:
            return self._tables.get(str(path))

    def files(self) -> list[str]:
        """Paths of every indexed file."""
        with self._lock:
            return list(self._tables)

    def close(self) -> None:
        """Release the on-disk cache."""
        if self._cache is not None:
            self._cache.close()
