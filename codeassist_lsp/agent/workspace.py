"""The agent's view of a workspace: files read from disk, edits staged in memory, never written.

Every tool of the agent goes through `StagedWorkspace`: listing (gitignore-aware, source files only,
bounded), reading (the staged text when there is one), searching and staging. The user's files are
only ever changed by the editor applying the one WorkspaceEdit the agent hands back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs

from codeassist_lsp.context.languages import Language, language_for
from codeassist_lsp.context.workspace import _GitIgnore

MAX_FILES = 2000
MAX_FILE_BYTES = 256 * 1024


@attrs.frozen
class Hit:
    """One line a search found."""

    path: str
    line: int
    text: str


class StagedWorkspace:
    """A folder's source files plus the agent's staged edits (relative paths with '/')."""

    def __init__(self, root: Path, scope: Path | None = None, open_texts: dict[str, str] | None = None) -> None:
        """`open_texts`: relative path -> the text the editor has open (may be unsaved): read instead of disk."""
        self.root = root.resolve()
        self._open = dict(open_texts or {})
        self.scope = (scope or root).resolve()
        self._ignore = _GitIgnore(self.root)
        self._staged: dict[str, str] = {}
        self._originals: dict[str, str] = {}
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        """Source files in scope (gitignore and hidden folders skipped; at most MAX_FILES)."""
        if self._files is None:
            self._files = sorted(self._walk())[:MAX_FILES]
        return list(self._files)

    def _walk(self) -> Iterator[str]:
        stack = [self.scope]
        while stack:
            folder = stack.pop()
            self._ignore.load(folder)
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name in ("node_modules", "__pycache__"):
                    continue
                if self._ignore.ignored(entry, entry.is_dir()):
                    continue
                if entry.is_dir():
                    stack.append(entry)
                elif self.language(entry.name) is not None and entry.stat().st_size <= MAX_FILE_BYTES:
                    yield entry.relative_to(self.root).as_posix()

    @staticmethod
    def language(path: str) -> Language | None:
        """The language of a file, by its name."""
        return language_for(None, path)

    def read(self, path: str) -> str:
        """The file's text as the agent sees it (its staged edit, if any)."""
        if path in self._staged:
            return self._staged[path]
        return self.original(path)

    def original(self, path: str) -> str:
        """The file's text on disk (read once)."""
        if path not in self._originals:
            self._originals[path] = self._open.get(path) or (self.root / path).read_text(encoding="utf-8")
        return self._originals[path]

    def is_open(self, path: str) -> bool:
        """Whether the editor has the file open (its text may differ from disk)."""
        return path in self._open

    def stage(self, path: str, text: str) -> None:
        """Keep an edit in memory (dropped again when it restores the original)."""
        if text == self.original(path):
            self._staged.pop(path, None)
        else:
            self._staged[path] = text

    def changed(self) -> dict[str, tuple[str, str]]:
        """path -> (original, staged) for every staged file."""
        return {path: (self.original(path), text) for path, text in sorted(self._staged.items())}

    def search(self, needle: str, limit: int = 200) -> list[Hit]:
        """Lines that contain `needle`, in file order."""
        hits: list[Hit] = []
        for path in self.files():
            for number, line in enumerate(self.read(path).splitlines(), 1):
                if needle in line:
                    hits.append(Hit(path, number, line.strip()))
                    if len(hits) >= limit:
                        return hits
        return hits
