"""The VS Code extension's contributed settings are the server's settings: same keys, same defaults."""

from __future__ import annotations

import json
from typing import Any

from codeassist_lsp.config import Settings, parse_settings, settings_to_wire

from .support import EDITORS

CLIENT_ONLY = ("codeassist.server.", "codeassist.trace.")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _contributed() -> dict[str, Any]:
    package = json.loads((EDITORS / "vscode/package.json").read_text())
    properties = package["contributes"]["configuration"]["properties"]
    return {key.removeprefix("codeassist."): spec for key, spec in properties.items()
            if not key.startswith(CLIENT_ONLY)}


def test_every_vscode_setting_is_a_server_setting_with_its_default() -> None:
    server = _flatten(settings_to_wire(Settings()))
    for key, spec in _contributed().items():
        assert key in server, f"editors/vscode/package.json contributes codeassist.{key}, unknown to the server"
        default = spec["default"]
        assert default == server[key] or (default == "" and server[key] is None), (
            f"codeassist.{key}: default {default!r} in package.json, {server[key]!r} in the server")


def test_the_contributed_defaults_parse() -> None:
    tree: dict[str, Any] = {}
    for key, spec in _contributed().items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None if spec["default"] == "" else spec["default"]
    assert settings_to_wire(parse_settings({"codeassist": tree})) == settings_to_wire(Settings())
