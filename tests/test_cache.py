"""The completion cache: keys, tiers, persistence, broken directories and typed-ahead reuse."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from codeassist_lsp.cache import CachedCompletion, CompletionCache, DiskTier, MemoryTier, completion_key
from codeassist_lsp.config import CacheSettings, Settings
from codeassist_lsp.engine.base import CancelFlag, GenerationRequest, GenerationResult
from codeassist_lsp.engine.fake import FakeBackend
from codeassist_lsp.service import CompletionService

SOURCE = "import os\n\n\ndef home():\n    return "


class CountingBackend(FakeBackend):
    """The deterministic engine, counting the requests that reach it."""

    def __init__(self, model_id: str = "model-a", continuation: str = "os.path.expanduser('~')\n") -> None:
        super().__init__()
        self.model_id = model_id  # type: ignore[misc]
        self.CONTINUATION = continuation  # type: ignore[misc]
        self.step_seconds = 0.0
        self.runs = 0

    def run(self, request: GenerationRequest, cancel: CancelFlag, on_partial=None) -> GenerationResult:  # type: ignore[no-untyped-def]
        """Count, then generate like the fake engine."""
        if request.max_tokens > 0:
            self.runs += 1
        return super().run(request, cancel, on_partial)


def _service(tmp_path: Path, backend: CountingBackend, **cache: object) -> CompletionService:
    settings = Settings()
    settings.completion.debounce_ms = 0
    settings.completion.prewarm = False
    settings.cache = CacheSettings(directory=str(tmp_path / "completions"), **cache)  # type: ignore[arg-type]
    service = CompletionService(settings, backend_factory=lambda: backend)
    service.wait_until_loaded(30)
    return service


def test_key_changes_with_model_params_and_prompt() -> None:
    base = completion_key("a.gguf:1", {"max_tokens": 24}, ("def f(", None))
    assert base == completion_key("a.gguf:1", {"max_tokens": 24}, ("def f(", None))
    assert base != completion_key("b.gguf:1", {"max_tokens": 24}, ("def f(", None))
    assert base != completion_key("a.gguf:1", {"max_tokens": 25}, ("def f(", None))
    assert base != completion_key("a.gguf:1", {"max_tokens": 24}, ("def g(", None))


def test_memory_tier_evicts_the_least_recently_used() -> None:
    tier = MemoryTier(max_entries=2)
    for key in ("a", "b"):
        tier.set(key, CachedCompletion(key, "stop"))
    assert tier.get("a") is not None  # "b" is now the oldest
    tier.set("c", CachedCompletion("c", "stop"))
    assert tier.get("b") is None and tier.get("a") is not None and len(tier) == 2


def test_disk_tier_survives_a_restart_and_is_private(tmp_path: Path) -> None:
    directory = tmp_path / "completions"
    settings = CacheSettings(directory=str(directory))
    first = CompletionCache.from_settings(settings)
    assert first.tier_names == ["memory", "disk"]
    first.set("k", CachedCompletion("return 1", "stop", 3))
    first.close()
    second = CompletionCache.from_settings(settings)
    hit = second.get("k")
    assert hit == (CachedCompletion("return 1", "stop", 3), "disk")
    assert second.get("k") is not None and second.stats.hits == {"disk": 1, "memory": 1}  # promoted
    second.close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [entry for entry in directory.iterdir() if entry.is_file()]
    assert files and all(stat.S_IMODE(entry.stat().st_mode) == 0o600 for entry in files)


def test_corrupted_cache_dir_gives_one_warning_and_memory_only(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "completions"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"this is not a sqlite database" * 100)
    with caplog.at_level(logging.WARNING, logger="codeassist_lsp.cache"):
        cache = CompletionCache.from_settings(CacheSettings(directory=str(directory)))
    assert cache.tier_names == ["memory"]
    assert len([r for r in caplog.records if "disk cache disabled" in r.message]) == 1


def test_unwritable_cache_dir_gives_a_warning_and_the_service_keeps_working(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "completions"
    blocker.write_text("a file where the cache directory should be")  # root ignores chmod; this always fails
    backend = CountingBackend()
    with caplog.at_level(logging.WARNING, logger="codeassist_lsp.cache"):
        service = _service(tmp_path, backend)
        try:
            first = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
            again = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        finally:
            service.close()
    assert first.text == again.text == "os.path.expanduser('~')"
    assert backend.runs == 1  # the memory tier still answers
    assert sum("disk cache disabled" in r.message for r in caplog.records) == 1


def test_a_disk_tier_that_fails_later_is_dropped(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path / "d", 1 << 20)
    cache = CompletionCache([MemoryTier(), disk])
    disk._cache.close()
    disk._cache = None  # type: ignore[assignment]  # every call now raises
    cache.set("k", CachedCompletion("x", "stop"))
    assert cache.tier_names == ["memory"] and cache.get("k") is not None


def test_service_answers_a_repeated_prompt_from_cache_and_never_across_models(tmp_path: Path) -> None:
    backend = CountingBackend("model-a", "os.path.expanduser('~')\n")
    service = _service(tmp_path, backend)
    try:
        first = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        prepared = service.prepare(SOURCE, len(SOURCE), path="home.py", language_id="python")
        assert prepared.cached is not None and service.submit(prepared) is None
        hit = service.finish(prepared, None)
        assert hit.text == first.text and hit.timings["cache"] == "memory" and backend.runs == 1
    finally:
        service.close()
    # A restart with another model over the same cache dir: no stale text.
    other = CountingBackend("model-b", "pathlib.Path.home()\n")
    service = _service(tmp_path, other)
    try:
        switched = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        assert switched.text == "pathlib.Path.home()" and other.runs == 1
    finally:
        service.close()
    # The first model again, after a restart: answered from disk.
    again = CountingBackend("model-a", "something else entirely\n")
    service = _service(tmp_path, again)
    try:
        restored = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        assert restored.text == first.text and again.runs == 0 and restored.timings["cache"] == "disk"
    finally:
        service.close()


def test_a_changed_setting_misses_the_cache(tmp_path: Path) -> None:
    backend = CountingBackend()
    service = _service(tmp_path, backend)
    try:
        service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        service.settings.completion.max_tokens = 8
        short = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        assert backend.runs == 2 and short.text.startswith("os.path") and short.text != "os.path.expanduser('~')"
    finally:
        service.close()


def test_typed_ahead_answers_with_the_rest_of_the_shown_suggestion(tmp_path: Path) -> None:
    backend = CountingBackend()
    service = _service(tmp_path, backend, disk=False)
    try:
        shown = service.complete(SOURCE, len(SOURCE), path="home.py", language_id="python")
        assert shown.text == "os.path.expanduser('~')"
        typed = SOURCE + "os.pa"
        prepared = service.prepare(typed, len(typed), path="home.py", language_id="python")
        assert prepared.typed_ahead == "th.expanduser('~')" and service.submit(prepared) is None
        rest = service.finish(prepared, None)
        assert rest.text == "th.expanduser('~')" and rest.timings["cache"] == "typed-ahead"
        # Typing on from there keeps reusing it.
        further = typed + "th.exp"
        assert service.complete(further, len(further), path="home.py").text == "anduser('~')"
        assert backend.runs == 1
        # A character that is not the suggestion's next one goes to the model.
        wrong = typed + "x"
        service.complete(wrong, len(wrong), path="home.py", language_id="python")
        assert backend.runs == 2
    finally:
        service.close()


def test_fake_engine_bypasses_the_cache(tmp_path: Path) -> None:
    settings = Settings(engine="fake")
    settings.cache = CacheSettings(directory=str(tmp_path / "c"))
    service = CompletionService(settings, backend_factory=CountingBackend)
    try:
        assert service.cache is None
    finally:
        service.close()
