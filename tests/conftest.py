"""Shared fixtures: the real embedded model, loaded once per test module."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from codeassist_lsp.config import ModelSettings
from codeassist_lsp.engine.models import default_model_name, resolve_model_path
from codeassist_lsp.errors import ModelNotAvailable

# Suggestions made by tests are no user's outcomes: every server the suite starts (they inherit the
# environment) keeps its acceptance feedback in a throwaway folder, not in the user's cache dir.
os.environ.setdefault("CODEASSIST_FEEDBACK_DIR", tempfile.mkdtemp(prefix="codeassist-feedback-tests-"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The embedded default model; the suite fails loudly (not skips) when it is missing."""
    try:
        path, _spec = resolve_model_path(default_model_name(), None)
    except ModelNotAvailable as error:
        pytest.fail(f"{error.for_user()} (run ./dev.sh test, which installs it)")
    return path


@pytest.fixture(scope="module")
def backend(model_path: Path):  # type: ignore[no-untyped-def]
    """A real llama.cpp backend on the embedded model."""
    from codeassist_lsp.engine.llama import LlamaBackend

    loaded = LlamaBackend(model_path, ModelSettings(context_size=4096), stop=("<eos>",))
    yield loaded
    loaded.close()
