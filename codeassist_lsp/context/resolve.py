"""Resolve an import as written to the workspace files it brings in, per language."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from codeassist_lsp.context.languages import Language
from codeassist_lsp.context.symbols import Import

log = logging.getLogger(__name__)

# Same-package files that are visible without an import statement.
_IMPLICIT_PACKAGE_LANGUAGES = frozenset({"go", "java", "kotlin", "scala", "c_sharp"})
_JS_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs")
_MAX_FILES_PER_IMPORT = 24


def _first_existing(candidates: Sequence[Path]) -> list[Path]:
    for candidate in candidates:
        if candidate.is_file():
            return [candidate]
    return []


def _ancestors(directory: Path, root: Path | None) -> list[Path]:
    """The directory and its parents up to (and including) root, or to the filesystem root."""
    found = []
    current = directory
    while True:
        found.append(current)
        if root is not None and current == root:
            break
        if current.parent == current:
            break
        current = current.parent
    return found


def _python(item: Import, importer: Path, root: Path | None) -> list[Path]:
    source = item.source
    if source.startswith("."):
        dots = len(source) - len(source.lstrip("."))
        base = importer.parent
        for _ in range(dots - 1):
            base = base.parent
        bases = [base]
        parts = [part for part in source[dots:].split(".") if part]
    else:
        bases = _ancestors(importer.parent, root)
        parts = source.split(".")
    found: list[Path] = []
    for base in bases:
        module = base.joinpath(*parts) if parts else base
        hits = _first_existing([module.with_suffix(".py"), module / "__init__.py", module.with_suffix(".pyi")])
        # `from package import name` may name a submodule rather than an attribute.
        for name in item.names:
            hits += _first_existing([module / f"{name}.py", module / name / "__init__.py"])
        if hits:
            found.extend(hits)
            break
    return found


def _javascript(item: Import, importer: Path, root: Path | None) -> list[Path]:
    if item.source.startswith("node:"):
        return []  # a Node builtin
    if not item.source.startswith("."):
        return _node_package(item.source, importer)
    target = (importer.parent / item.source).resolve()
    candidates = [target]
    candidates += [Path(f"{target}{ext}") for ext in _JS_EXTENSIONS]
    # ESM TypeScript imports name the emitted .js file.
    if target.suffix in (".js", ".mjs", ".cjs", ".jsx"):
        candidates += [target.with_suffix(ext) for ext in (".ts", ".tsx", ".mts", ".cts")]
    candidates += [target / f"index{ext}" for ext in _JS_EXTENSIONS]
    return _first_existing(candidates)


def _node_package(specifier: str, importer: Path) -> list[Path]:
    """A bare specifier resolved through the nearest node_modules (package.json main, else index)."""
    parts = specifier.split("/")
    package_name = "/".join(parts[:2]) if specifier.startswith("@") else parts[0]
    subpath = specifier[len(package_name) :].lstrip("/")
    for directory in _ancestors(importer.parent, None)[:12]:
        package_dir = directory / "node_modules" / package_name
        if not package_dir.is_dir():
            continue
        if subpath:
            target = package_dir / subpath
            return _first_existing([target] + [Path(f"{target}{ext}") for ext in _JS_EXTENSIONS]
                                   + [target / f"index{ext}" for ext in _JS_EXTENSIONS])
        main = _package_main(package_dir)
        candidates = [package_dir / main] if main else []
        if main:
            candidates += [Path(f"{package_dir / main}{ext}") for ext in _JS_EXTENSIONS]
            candidates += [package_dir / main / f"index{ext}" for ext in _JS_EXTENSIONS]
        candidates += [package_dir / f"index{ext}" for ext in _JS_EXTENSIONS]
        return _first_existing(candidates)
    return []


@functools.lru_cache(maxsize=1024)
def _package_main(package_dir: Path) -> str | None:
    """The entry file a package.json names ("main", else a string "exports")."""
    import json

    try:
        manifest = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    main = manifest.get("main")
    if isinstance(main, str):
        return main
    exports = manifest.get("exports")
    if isinstance(exports, str):
        return exports
    if isinstance(exports, dict):
        entry = exports.get(".", exports.get("require", exports.get("default")))
        while isinstance(entry, dict):
            entry = entry.get("require") or entry.get("default") or entry.get("node")
        if isinstance(entry, str):
            return entry
    return None


@functools.lru_cache(maxsize=256)
def _go_module(directory: Path) -> tuple[Path, str] | None:
    """The nearest go.mod above directory: (module root, module path)."""
    for candidate in _ancestors(directory, None):
        go_mod = candidate / "go.mod"
        if go_mod.is_file():
            match = re.search(r"^module\s+(\S+)", go_mod.read_text(errors="replace"), re.MULTILINE)
            if match:
                return candidate, match.group(1)
    return None


def _source_files(directory: Path, extension: str, exclude: Path | None = None) -> list[Path]:
    if not directory.is_dir():
        return []
    files = sorted(
        path
        for path in directory.iterdir()
        if path.suffix == extension and path != exclude and not path.name.endswith("_test.go")
    )
    return files[:_MAX_FILES_PER_IMPORT]


def _go(item: Import, importer: Path, root: Path | None) -> list[Path]:
    module = _go_module(importer.parent)
    if module is None:
        return []
    module_root, module_path = module
    if item.source == module_path or item.source.startswith(module_path + "/"):
        relative = item.source[len(module_path) :].lstrip("/")
        return _source_files(module_root / relative, ".go")
    return []


def _rust(item: Import, importer: Path, root: Path | None) -> list[Path]:
    source = item.source
    if re.fullmatch(r"\w+", source):  # `mod name;`
        base = importer.parent if importer.name in ("mod.rs", "lib.rs", "main.rs") else importer.with_suffix("")
        return _first_existing([base / f"{source}.rs", base / source / "mod.rs"])
    path_text = re.split(r"::\{|::\*", source)[0]
    parts = path_text.split("::")
    if not parts:
        return []
    if parts[0] == "crate":
        crate_root = next((d / "src" for d in _ancestors(importer.parent, root) if (d / "Cargo.toml").is_file()), None)
        if crate_root is None:
            return []
        base, rest = crate_root, parts[1:]
    elif parts[0] in ("super", "self"):
        base = importer.parent if importer.name in ("mod.rs", "lib.rs", "main.rs") else importer.with_suffix("")
        rest = parts[1:]
        while parts and parts[0] == "super":
            base = base.parent
            parts = parts[1:]
            rest = parts
    else:
        return []
    # `use crate::a::b::Item` : the longest module prefix that is a file wins.
    for cut in range(len(rest), 0, -1):
        module = base.joinpath(*rest[:cut])
        hits = _first_existing([module.with_suffix(".rs"), module / "mod.rs"])
        if hits:
            return hits
    return []


def _jvm(item: Import, importer: Path, root: Path | None, package: str | None, extension: str) -> list[Path]:
    source = item.source.removeprefix("import").strip().removeprefix("static").strip()
    source = re.split(r"[\s{]", source)[0].rstrip(".*_").rstrip(".")
    parts = [part for part in source.split(".") if part]
    if not parts:
        return []
    # The source root is the importer's directory minus its package path.
    source_root = importer.parent
    if package:
        for _ in package.split("."):
            source_root = source_root.parent
    candidates_roots = [source_root] + ([root] if root else [])
    for base in candidates_roots:
        for cut in range(len(parts), 0, -1):
            hits = _first_existing([base.joinpath(*parts[:cut]).with_suffix(extension)])
            if hits:
                return hits
        package_dir = base.joinpath(*parts[:-1]) if len(parts) > 1 else base
        files = _source_files(package_dir, extension)
        if files:
            return files
    return []


def _c_family(item: Import, importer: Path, root: Path | None, include_dirs: Sequence[Path]) -> list[Path]:
    header = item.source
    bases = [importer.parent] + _ancestors(importer.parent, root)[1:4]
    if root is not None:
        bases += [root, root / "include"]
    bases += list(include_dirs)
    return _first_existing([base / header for base in bases])


def _relative_file(item: Import, importer: Path, root: Path | None, extensions: Sequence[str]) -> list[Path]:
    """Imports that name a file path (bash source, R source, Julia include, CSS/HTML links, Ruby)."""
    source = item.source.strip("\"'")
    if not source or "$" in source or "://" in source:
        return []
    bases = [importer.parent] + ([root] if root else [])
    if root is not None:
        bases.append(root / "lib")
    candidates: list[Path] = []
    for base in bases:
        target = base / source
        candidates.append(target)
        candidates += [Path(f"{target}{ext}") for ext in extensions]
    return _first_existing(candidates)


def _lua(item: Import, importer: Path, root: Path | None) -> list[Path]:
    parts = item.source.strip("\"'").split(".")
    bases = [importer.parent] + ([root] if root else [])
    return _first_existing(
        [base.joinpath(*parts).with_suffix(".lua") for base in bases]
        + [base.joinpath(*parts) / "init.lua" for base in bases]
    )


def _haskell(item: Import, importer: Path, root: Path | None) -> list[Path]:
    parts = item.source.split(".")
    bases = _ancestors(importer.parent, root)
    return _first_existing([base.joinpath(*parts).with_suffix(".hs") for base in bases])


def _ocaml(item: Import, importer: Path, root: Path | None) -> list[Path]:
    name = item.source.split(".")[0]
    return _first_existing([importer.parent / f"{name[:1].lower()}{name[1:]}.ml"])


def resolve_import(
    language: Language,
    item: Import,
    importer: str | Path,
    root: str | Path | None = None,
    package: str | None = None,
    include_dirs: Sequence[str | Path] = (),
) -> list[Path]:
    """Workspace files that `item` (an import of file `importer`) brings into scope; [] if none."""
    importer_path = Path(importer)
    root_path = Path(root) if root else None
    name = language.name
    try:
        if name == "python":
            return _python(item, importer_path, root_path)
        if name in ("javascript", "typescript", "tsx"):
            return _javascript(item, importer_path, root_path)
        if name == "go":
            return _go(item, importer_path, root_path)
        if name == "rust":
            return _rust(item, importer_path, root_path)
        if name in ("java", "kotlin", "scala"):
            extension = {"java": ".java", "kotlin": ".kt", "scala": ".scala"}[name]
            return _jvm(item, importer_path, root_path, package, extension)
        if name in ("c", "cpp"):
            return _c_family(item, importer_path, root_path, [Path(d) for d in include_dirs])
        if name == "lua":
            return _lua(item, importer_path, root_path)
        if name == "haskell":
            return _haskell(item, importer_path, root_path)
        if name == "ocaml":
            return _ocaml(item, importer_path, root_path)
        extensions = {
            "ruby": (".rb",), "php": (".php",), "bash": (".sh", ".bash"), "r": (".R", ".r"),
            "julia": (".jl",), "css": (".css",), "html": (),
        }.get(name)
        if extensions is not None:
            return _relative_file(item, importer_path, root_path, extensions)
    except (OSError, ValueError) as error:
        log.debug("cannot resolve %r from %s: %s", item.source, importer, error)
    return []


def implicit_neighbours(language: Language, importer: str | Path) -> list[Path]:
    """Files whose definitions are visible without an import (Go/JVM/C# same package)."""
    if language.name not in _IMPLICIT_PACKAGE_LANGUAGES:
        return []
    importer_path = Path(importer)
    extension = importer_path.suffix
    return _source_files(importer_path.parent, extension, exclude=importer_path)


def bound_names(language: Language, item: Import) -> tuple[str, ...]:
    """The local names an import makes usable (e.g. `import os.path` binds `os`)."""
    if item.names:
        return item.names
    if language.name == "python":
        return (item.source.lstrip(".").split(".")[0],) if item.source.lstrip(".") else ()
    tail = re.split(r"[/.:\\]+", item.source.strip("\"'<>"))
    tail = [part for part in tail if part and part not in ("*", "h", "hpp", "js", "ts")]
    return (tail[-1],) if tail else ()
