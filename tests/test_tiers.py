"""Which model serves which tier (engine/tiers.py), without loading any model."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeassist_lsp.config import Settings, parse_settings
from codeassist_lsp.engine import tiers
from codeassist_lsp.engine.models import default_model_name


def test_a_model_is_fast_enough_for_typing_on_a_gpu_or_when_a_line_fits_the_budget() -> None:
    assert tiers.fast_enough_for_typing(None, gpu=True)
    assert not tiers.fast_enough_for_typing(None, gpu=False)  # never measured: not chosen on a CPU
    assert tiers.fast_enough_for_typing(tiers.COMPLETION_BUDGET_MS / tiers.LINE_TOKENS, gpu=False)
    assert not tiers.fast_enough_for_typing(55.0, gpu=False)  # Qwen2.5-Coder 1.5B on 2 cores


@pytest.fixture()
def coder_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for an installed code model (the choice only looks at its path and recorded speed)."""
    path = tmp_path / "coder.gguf"
    path.write_bytes(b"GGUF")
    monkeypatch.setattr(tiers, "installed_model_path", lambda name=None: path if name == tiers.quality_model_name()
                        else None)
    monkeypatch.setattr(tiers, "resolve_model_path", lambda name, file: (path if name == tiers.quality_model_name()
                                                                         else tmp_path / "fast.gguf", None))
    monkeypatch.setattr(tiers, "_gpu_offload", lambda model: False)
    return path


def test_auto_types_with_the_fast_model_unless_the_code_model_measured_fast(coder_file: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiers, "recorded_decode_ms", lambda path, model: 55.0)
    assert tiers.completion_model(Settings())[0].name == "fast.gguf"
    monkeypatch.setattr(tiers, "recorded_decode_ms", lambda path, model: 8.0)
    assert tiers.completion_model(Settings())[0] == coder_file
    monkeypatch.setattr(tiers, "_gpu_offload", lambda model: True)
    monkeypatch.setattr(tiers, "recorded_decode_ms", lambda path, model: None)
    assert tiers.completion_model(Settings())[0] == coder_file


def test_the_quality_tier_takes_the_code_model_when_installed_and_names_win(coder_file: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert tiers.quality_model(Settings()) == (coder_file, None)
    named = parse_settings({"actions": {"model": {"name": default_model_name()}}})
    assert tiers.quality_model(named)[0].name == "fast.gguf"
    monkeypatch.setattr(tiers, "installed_model_path", lambda name=None: None)
    assert tiers.quality_model(Settings()) is None  # auto without the code model: the completion model serves


def test_actions_model_settings_parse_and_an_empty_list_means_no_settings() -> None:
    settings = parse_settings({"actions": {"model": {"name": "qwen2.5-coder-1.5b", "gpuLayers": 0}}})
    assert settings.actions.model.name == "qwen2.5-coder-1.5b" and settings.actions.model.gpu_layers == 0
    assert parse_settings([]) == Settings()  # Neovim sends an empty Lua table as []


@pytest.mark.model
def test_a_slow_recorded_speed_gives_way_to_this_sessions_and_is_written_back(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A first probe on a busy machine recorded 5 s per token: the first real measurement replaces it
    # (a moving average would drag it along for many requests), and remember_speed (run when the
    # service closes) records it for the next session.
    import json

    from codeassist_lsp.config import ModelSettings
    from codeassist_lsp.engine.base import CancelFlag, GenerationRequest
    from codeassist_lsp.engine.llama import LlamaBackend

    monkeypatch.setenv("CODEASSIST_CACHE_DIR", str(tmp_path))
    settings = ModelSettings()
    backend = LlamaBackend(model_path, settings)
    try:
        key = tiers._record_key(backend.model_id, settings, backend.gpu_layers)
        record = tmp_path / "exactness-probes.json"
        record.write_text(json.dumps({f"{key}|exact batch": 7, f"{key}|speed": {"prompt_ms": 50.0, "decode_ms": 5000.0}}))
        assert tiers.probe_exactness(backend, settings) and backend.decode_ms_per_token == 5000.0
        prompt = tuple(backend.tokenize("1, 2, 3, 4, 5, 6, 7, 8, 9,", add_bos=True))
        result = backend.run(GenerationRequest(prompt_tokens=prompt, max_tokens=12), CancelFlag())
        assert result.generated_tokens >= 5, result
        assert backend.decode_ms_per_token is not None and backend.decode_ms_per_token < 1000
        tiers.remember_speed(backend)
        written = json.loads(record.read_text())[f"{key}|speed"]["decode_ms"]
        assert written == backend.decode_ms_per_token
    finally:
        backend.close()
