"""The two model tiers: which model serves typing, which serves actions and hover, and how they load.

- completion tier (`model.*`): ghost text as you type; must answer in ~150 ms. `model.name = "auto"`
  takes the code model when it is fast enough here (a GPU backend, or a measured decode speed that
  keeps a line suggestion within COMPLETION_BUDGET_MS), else the fast embedded model.
- quality tier (`actions.model.*`): every code action and hover. `"auto"` takes the code model when
  it is installed; without it the completion model answers, and the user is told once how to install it.

Both run on the one model thread (engine/worker.py): completions preempt quality work.
"""

from __future__ import annotations

import json
import logging
import weakref
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from codeassist_lsp.config import ModelSettings, Settings, effective_threads
from codeassist_lsp.engine.base import CancelFlag, DecodeBackend, Tier
from codeassist_lsp.errors import ModelNotAvailable
from codeassist_lsp.engine.models import (
    ModelSpec, cache_dir, default_model_name, install_hint, installed_model_path, registry, resolve_model_path,
)

if TYPE_CHECKING:
    from codeassist_lsp.engine.llama import LlamaBackend

log = logging.getLogger(__name__)

AUTO = "auto"
# A line suggestion is about this many tokens; the completion tier must produce it within the budget.
LINE_TOKENS = 12
COMPLETION_BUDGET_MS = 150.0


def quality_model_name() -> str:
    """The registry's code model for the quality tier."""
    return next((spec.name for spec in registry().values() if spec.tier == "quality"), default_model_name())


def _speed_record() -> Path:
    return cache_dir() / "exactness-probes.json"


def _record_key(model_id: str, settings: ModelSettings, gpu_layers: int) -> str:
    import llama_cpp

    return (f"{model_id}|llama-cpp-python {llama_cpp.__version__}|{effective_threads(settings)} threads"
            f"|gpu layers {gpu_layers}")


def _read_records() -> dict[str, Any]:
    try:
        known = json.loads(_speed_record().read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _write_record(key: str, value: Any) -> None:
    known = _read_records()
    known[key] = value
    try:
        _speed_record().parent.mkdir(parents=True, exist_ok=True)
        _speed_record().write_text(json.dumps(known, indent=1))
    except OSError as error:  # an unwritable cache dir only costs the probe next time
        log.warning("could not record the model probe: %s", error)


def remember_speed(backend: object) -> None:
    """Record the speeds this session measured for a model (the next session's estimates start there).

    The first record comes from the first probe, which may run on a busy machine; without this it
    would set every later session's hover estimates and tier choice.
    """
    key = getattr(backend, "speed_record_key", "")
    if not key or "decode" not in getattr(backend, "measured_phases", ()):
        return
    _write_record(key + "|speed", {"prompt_ms": getattr(backend, "prompt_ms_per_token", None),
                                   "decode_ms": getattr(backend, "decode_ms_per_token", None)})


def recorded_decode_ms(path: Path, settings: ModelSettings) -> float | None:
    """The decode speed (ms per token) measured for this model file, build and threads, if any (CPU)."""
    model_id = f"{path.name}:{path.stat().st_size}"
    record = _read_records().get(_record_key(model_id, settings, 0) + "|speed")
    return float(record["decode_ms"]) if isinstance(record, dict) and "decode_ms" in record else None


def fast_enough_for_typing(decode_ms_per_token: float | None, *, gpu: bool) -> bool:
    """Whether a model decoding at this speed keeps a line suggestion within the completion budget."""
    if gpu:
        return True
    return decode_ms_per_token is not None and decode_ms_per_token * LINE_TOKENS <= COMPLETION_BUDGET_MS


def _gpu_offload(settings: ModelSettings) -> bool:
    from codeassist_lsp.engine.llama import gpu_offload_supported

    return settings.gpu_layers != 0 and gpu_offload_supported()


def completion_model(settings: Settings) -> tuple[Path, ModelSpec | None]:
    """The GGUF the completion tier loads (raises ModelNotAvailable when it is missing)."""
    model = settings.model
    if model.path or model.name != AUTO:
        return resolve_model_path(model.name if model.name != AUTO else None, model.path)
    coder = installed_model_path(quality_model_name())
    if coder is not None and fast_enough_for_typing(recorded_decode_ms(coder, model), gpu=_gpu_offload(model)):
        return resolve_model_path(quality_model_name(), None)
    return resolve_model_path(default_model_name(), None)


def preload_path() -> Path | None:
    """The installed model the default settings' completion tier would load (no hashing), for preloading."""
    try:
        path, _spec = completion_model(Settings())
    except Exception:  # no model installed: nothing to preload
        return None
    return path


def quality_model(settings: Settings) -> tuple[Path, ModelSpec | None] | None:
    """The GGUF the quality tier loads; None when `auto` finds no code model (the completion model serves)."""
    model = settings.actions.model
    if model.path or model.name != AUTO:
        return resolve_model_path(model.name if model.name != AUTO else None, model.path)
    if installed_model_path(quality_model_name()) is None:
        return None
    return resolve_model_path(quality_model_name(), None)


def missing_code_model_hint() -> str:
    """What to tell a user whose actions and hover run on the fast model."""
    return (f"Code actions and hover use the small completion model, whose answers are often wrong. "
            f"{install_hint(quality_model_name())} (1.1 GB)")


@attrs.frozen
class ModelFile:
    """A loaded model's file as it was at load time, to notice it being replaced on disk afterwards.

    A file renamed over or deleted changes nothing until the model is loaded again (the mapped
    weights keep the old file's pages); one overwritten in place does (see engine/llama.py).
    """

    path: Path
    identity: tuple[int, int, int]  # inode, size, mtime

    @classmethod
    def of(cls, path: Path) -> ModelFile:
        """The file as it is now."""
        return cls(path, _identity(path))

    def changed(self) -> bool:
        """Whether the file was replaced, rewritten or removed since."""
        try:
            return _identity(self.path) != self.identity
        except OSError:
            return True


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


_MODEL_FILES: weakref.WeakKeyDictionary[object, ModelFile] = weakref.WeakKeyDictionary()


def model_file_of(backend: object) -> ModelFile | None:
    """The file a backend was loaded from (None for backends not loaded from a file)."""
    try:
        return _MODEL_FILES.get(backend)
    except TypeError:  # not weak-referenceable: not one of ours
        return None


def load_backend(path: Path, spec: ModelSpec | None, settings: Settings, model: ModelSettings) -> LlamaBackend:
    """A llama.cpp backend for one tier's model settings."""
    from codeassist_lsp.engine.llama import LlamaBackend

    try:
        loaded_from: ModelFile | None = ModelFile.of(path)
    except OSError:  # gone already: LlamaBackend says so in the user's terms
        loaded_from = None
    backend = LlamaBackend(path, model, prompt_format=spec.prompt_format if spec else "auto",
                           stop=spec.stop if spec else (), speculation=settings.speculation)
    if loaded_from is not None:
        _MODEL_FILES[backend] = loaded_from
    return backend


def make_completion_backend(settings: Settings) -> DecodeBackend:
    """Load the completion tier's engine (on the model thread)."""
    if settings.model.engine == "remote" and settings.engine != "fake":
        return _remote_backend(settings.model, "completion", lambda: _local_completion_backend(settings))
    return _local_completion_backend(settings)


def _remote_backend(model: ModelSettings, tier: Tier, local: Callable[[], DecodeBackend | None] | None,
                    borrowed: DecodeBackend | None = None) -> DecodeBackend:
    """A tier on an inference server, with its local model (loaded on the first outage) as the stand-in."""
    from codeassist_lsp.engine.llama import discard_preloaded_model
    from codeassist_lsp.engine.remote import FailoverBackend, RemoteBackend, RemoteUnavailable

    if tier == "completion":
        discard_preloaded_model()  # the server answers: the preloaded local weights would only take memory
    backend = FailoverBackend(RemoteBackend(model.remote, tier), local, borrowed)
    try:
        backend.remote_backend.warm_up()
    except RemoteUnavailable as error:  # told once; the local model answers until the server is back
        backend._outage(error)
    return backend


def _local_completion_backend(settings: Settings) -> DecodeBackend:
    if settings.engine == "fake":
        from codeassist_lsp.engine.fake import FakeBackend
        from codeassist_lsp.engine.llama import discard_preloaded_model

        discard_preloaded_model()
        return FakeBackend()
    path, spec = completion_model(settings)
    backend = load_backend(path, spec, settings, settings.model)
    if settings.draft.path and settings.speculation.mode != "off":
        from codeassist_lsp.engine.speculative import attach_draft_model

        attach_draft_model(backend, settings)  # raises VocabularyMismatch for a foreign draft
    if settings.speculation.mode == "auto" and settings.model.engine == "local":
        probe_exactness(backend, settings.model)  # ~2 s on the first start only, before typing starts
    return backend


def make_quality_backend(settings: Settings, completion: DecodeBackend | None) -> DecodeBackend | None:
    """Load the quality tier's model; the completion backend itself when both tiers name one model."""
    try:
        return _load_quality_backend(settings, completion)
    except ModelNotAvailable as error:  # its hint must name the quality tier's setting, not the completion tier's
        raise ModelNotAvailable(error.message, hint=error.hint.replace(
            "codeassist.model.path", "codeassist.actions.model.path")) from error


def _load_quality_backend(settings: Settings, completion: DecodeBackend | None) -> DecodeBackend | None:
    if settings.engine == "fake":
        return None
    if settings.actions.model.engine == "remote":
        return _remote_backend(settings.actions.model, "quality", lambda: _local_quality_backend(settings, completion),
                               borrowed=completion)
    return _local_quality_backend(settings, completion)


def _local_quality_backend(settings: Settings, completion: DecodeBackend | None = None) -> DecodeBackend | None:
    chosen = quality_model(settings)
    if chosen is None:
        return None
    path, spec = chosen
    if getattr(completion, "model_id", None) == f"{path.name}:{path.stat().st_size}":
        if _load_settings(settings.actions.model) == _load_settings(settings.model):
            return completion  # one model serves both tiers: loaded once
        log.info("both tiers name %s with different load settings: it is loaded twice", path.name)
    backend = load_backend(path, spec, settings, settings.actions.model)
    backend.warm_up()
    return backend


def _load_settings(model: ModelSettings) -> tuple[object, ...]:
    """What must match for one loaded model to serve both tiers."""
    return model.context_size, model.gpu_layers, effective_threads(model), model.batch_size


def probe_exactness(backend: LlamaBackend, model: ModelSettings, cancel: CancelFlag | None = None) -> bool:
    """The speculation exactness probe, once per model and build (recorded); False when cancelled."""
    key = _record_key(backend.model_id, model, backend.gpu_layers)
    backend.speed_record_key = key
    known = _read_records()
    if isinstance(known.get(key + "|exact batch"), int) and known[key + "|exact batch"] >= 1:
        backend.set_exact_batch_limit(known[key + "|exact batch"])
        speed = known.get(key + "|speed")
        if isinstance(speed, dict):
            backend.prompt_ms_per_token = backend.prompt_ms_per_token or speed.get("prompt_ms")
            backend.decode_ms_per_token = backend.decode_ms_per_token or speed.get("decode_ms")
        return True
    limit = backend.exact_batch_limit(cancel)
    if cancel is not None and cancel.is_set:
        return False
    _write_record(key + "|exact batch", limit)
    remember_speed(backend)  # what the probe's decodes measured
    return True
