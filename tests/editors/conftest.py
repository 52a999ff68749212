"""Fixtures of the end-to-end tests in real editors: a clean home, a workspace, the artifacts folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codeassist_lsp.engine.models import cache_dir

from .support import REPO, SAMPLE_PY, VENV_BIN


@pytest.fixture(scope="module")
def editor_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for an editor: a temporary HOME and XDG dirs, the installed model still found."""
    home = tmp_path_factory.mktemp("home")
    # The installed models are shared (a link); everything else the server keeps (workspace
    # index, completion cache) starts empty, so no earlier run can answer for the model.
    codeassist_cache = home / ".cache" / "codeassist"
    codeassist_cache.mkdir(parents=True)
    (codeassist_cache / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    env = {key: value for key, value in os.environ.items() if key != "CODEASSIST_CACHE_DIR"}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    })
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small project folder with the sample file."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "pyproject.toml").write_text('[project]\nname = "sample"\n')
    (root / "sample.py").write_text(SAMPLE_PY)
    return root


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots and logs of editor runs are kept (gitignored)."""
    path = REPO / ".artifacts" / "editors"
    path.mkdir(parents=True, exist_ok=True)
    return path
