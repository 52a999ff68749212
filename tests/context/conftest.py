"""Shared paths for the context tests."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "context"
SAMPLES = DATA / "samples"
WORKSPACES = DATA / "workspaces"

# One real sample per language of the list.
SAMPLE_FILES = {
    "python": "sample.py", "javascript": "sample.js", "typescript": "sample.ts", "tsx": "sample.tsx",
    "java": "Sample.java", "go": "sample.go", "rust": "sample.rs", "c": "sample.c", "cpp": "sample.cpp",
    "c_sharp": "Sample.cs", "ruby": "sample.rb", "php": "sample.php", "kotlin": "sample.kt",
    "scala": "sample.scala", "lua": "sample.lua", "bash": "sample.sh", "haskell": "sample.hs",
    "elixir": "sample.ex", "ocaml": "sample.ml", "r": "sample.R", "julia": "sample.jl", "sql": "sample.sql",
    "html": "sample.html", "css": "sample.css",
}
