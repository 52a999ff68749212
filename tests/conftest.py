"""Shared fixtures: the real embedded model, loaded once per test module."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeassist_lsp.config import ModelSettings
from codeassist_lsp.engine.models import default_model_name, resolve_model_path
from codeassist_lsp.errors import ModelNotAvailable

# Suggestions made by tests are no user's outcomes: every server the suite starts (they inherit the
# environment) keeps its acceptance feedback in a throwaway folder, not in the user's cache dir.
os.environ.setdefault("CODEASSIST_FEEDBACK_DIR", tempfile.mkdtemp(prefix="codeassist-feedback-tests-"))


def _own_feedback_dir(folder: Path) -> Iterator[None]:
    previous = os.environ["CODEASSIST_FEEDBACK_DIR"]
    os.environ["CODEASSIST_FEEDBACK_DIR"] = str(folder)
    yield
    os.environ["CODEASSIST_FEEDBACK_DIR"] = previous


# One store per module (its servers start with the module) and per test: a server refits its gate
# on the outcomes it finds, and those of earlier tests' servers (nothing ever accepted) would make
# it withhold the suggestions a later test needs.
@pytest.fixture(scope="module", autouse=True)
def module_feedback_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from _own_feedback_dir(tmp_path_factory.mktemp("feedback"))


@pytest.fixture(autouse=True)
def test_feedback_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from _own_feedback_dir(tmp_path_factory.mktemp("feedback"))


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
