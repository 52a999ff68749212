"""Workspace index: persists across restarts, respects .gitignore, skips binaries and huge files."""

from __future__ import annotations

import shutil
from pathlib import Path

from codeassist_lsp.context.workspace import WorkspaceIndex

from .conftest import WORKSPACES


def _copy_workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(WORKSPACES / "python", root)
    return root


def test_restart_reads_the_index_from_disk(tmp_path: Path) -> None:
    root = _copy_workspace(tmp_path)
    first = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    stats = first.build()
    assert stats.parsed == 3 and stats.from_cache == 0
    first.close()
    second = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    progress: list[tuple[int, int]] = []
    stats = second.build(progress=lambda done, total: progress.append((done, total)))
    assert stats.parsed == 0 and stats.from_cache == 3
    assert progress[-1] == (3, 3)
    assert [d.path for d in second.lookup("apply_discount")] == [str(root / "shop" / "pricing.py")]


def test_changed_file_is_parsed_again(tmp_path: Path) -> None:
    root = _copy_workspace(tmp_path)
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.build()
    pricing = root / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text() + "\n\ndef round_price(price: float) -> float:\n    return round(price, 2)\n")
    assert index.update_file(pricing)
    assert index.lookup("round_price")
    restarted = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    assert restarted.build().parsed == 0  # update_file stored the new version
    pricing.unlink()
    index.update_file(pricing)
    assert not index.lookup("apply_discount")


def test_gitignore_binaries_and_huge_files_are_skipped(tmp_path: Path) -> None:
    root = _copy_workspace(tmp_path)
    (root / ".gitignore").write_text("generated/\n*.gen.py\n!keep.gen.py\n")
    (root / "generated").mkdir()
    (root / "generated" / "models.py").write_text("def generated_model():\n    pass\n")
    (root / "shop" / "schema.gen.py").write_text("def generated_schema():\n    pass\n")
    (root / "shop" / "keep.gen.py").write_text("def kept_schema():\n    pass\n")
    (root / "shop" / "nested").mkdir()
    (root / "shop" / "nested" / ".gitignore").write_text("local.py\n")
    (root / "shop" / "nested" / "local.py").write_text("def local_only():\n    pass\n")
    (root / "shop" / "blob.py").write_bytes(b"def binary():\n\0\0\0")
    (root / "shop" / "huge.py").write_text("def huge():\n    pass\n" + "# filler\n" * 200_000)
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.build()
    assert index.lookup("apply_discount") and index.lookup("kept_schema")
    for ignored in ("generated_model", "generated_schema", "local_only", "binary", "huge"):
        assert not index.lookup(ignored), ignored
    assert not index.update_file(root / "generated" / "models.py")


def test_background_build_reports_progress(tmp_path: Path) -> None:
    root = _copy_workspace(tmp_path)
    index = WorkspaceIndex(root, persist=False)
    seen: list[tuple[int, int]] = []
    index.start_background(progress=lambda done, total: seen.append((done, total)))
    assert index.wait(timeout=30)
    assert index.ready and seen[-1] == (3, 3)
