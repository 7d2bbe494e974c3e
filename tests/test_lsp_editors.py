"""The editor configurations of docs/editor.md: each names a command that starts `graphspec lsp` and answers.

Helix's `languages.toml`, the VS Code extension's `package.json` and the Emacs file are read as the editors
read them (TOML, JSON, the Lisp list), and the command they name is started as they start it (an executable
found on PATH, over stdio) and sent `initialize` and a broken spec. Where Emacs and eglot are installed
(Debian: emacs-nox, elpa-eglot), `emacs --batch` drives eglot itself against the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from tests.lsp_client import ROOT, Session  # noqa: E402

EDITORS = ROOT / "editors"
BROKEN = "graphspec: 1\nname: bad\ninputs:\n  x: {shape: [4]}\nnodes:\n  d: {type: Dense2, units: 3}\n"
BIN = str(Path(sys.executable).parent)  # this environment's `graphspec` script, first on PATH


def _helix() -> list[str]:
    config = tomllib.loads((EDITORS / "helix" / "languages.toml").read_text(encoding="utf-8"))
    server = config["language-server"]["graphspec"]
    yaml = next(lang for lang in config["language"] if lang["name"] == "yaml")
    assert yaml["language-servers"] == ["yaml-language-server", "graphspec"]
    return [server["command"], *server["args"]]


def _vscode() -> list[str]:
    manifest = json.loads((EDITORS / "vscode" / "package.json").read_text(encoding="utf-8"))
    assert "onLanguage:yaml" in manifest["activationEvents"]
    command: list[str] = manifest["contributes"]["configuration"]["properties"]["graphspec.command"]["default"]
    assert 'getConfiguration("graphspec").get("command")' in (EDITORS / "vscode" / "extension.js").read_text()
    return command


def _emacs() -> list[list[str]]:
    text = (EDITORS / "emacs" / "graphspec-eglot.el").read_text(encoding="utf-8")
    found = re.findall(r"'\((yaml(?:-ts)?-mode) \. \(([^)]*)\)\)", text)
    assert [mode for mode, _ in found] == ["yaml-mode", "yaml-ts-mode"]
    return [json.loads("[" + args.replace('" "', '", "') + "]") for _, args in found]


def test_editor_configs_start_the_server_and_get_diagnostics(tmp_path: Path) -> None:
    commands = [_helix(), _vscode(), *_emacs()]
    assert all(c == ["graphspec", "lsp"] for c in commands), commands
    # docs/editor.md shows Helix's file as it is
    helix = (EDITORS / "helix" / "languages.toml").read_text(encoding="utf-8")
    table = helix[helix.index("[language-server.graphspec]"):].strip()
    assert table in (ROOT / "docs" / "editor.md").read_text(encoding="utf-8")
    # as an editor starts it: the executable found on PATH, the arguments, stdio
    exe = shutil.which(commands[0][0], path=BIN + os.pathsep + os.environ.get("PATH", ""))
    assert exe is not None
    session = Session(root=tmp_path, command=[exe, *commands[0][1:]],
                      env={**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")})
    try:
        info = session.init_result
        assert info.server_info is not None and info.server_info.name == "graphspec"
        assert info.capabilities.hover_provider and info.capabilities.inlay_hint_provider
        _, diags = session.open(tmp_path / "bad.yaml", BROKEN)
        assert [(d.code, d.range.start.line) for d in diags] == [("GS110", 5)]
    finally:
        session.close()


def _eglot() -> str | None:
    emacs = shutil.which("emacs")
    if emacs is None:
        return None
    probe = subprocess.run([emacs, "--batch", "--eval", "(require 'eglot)"], capture_output=True, timeout=60)
    return emacs if probe.returncode == 0 else None


def test_emacs_eglot_shows_the_servers_diagnostic(tmp_path: Path) -> None:
    emacs = _eglot()
    if emacs is None:
        pytest.skip("Emacs with eglot is not installed (Debian: emacs-nox elpa-eglot)")
    spec = tmp_path / "bad.yaml"
    spec.write_text(BROKEN, encoding="utf-8")
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    out = subprocess.run(
        [emacs, "--batch", "-l", str(EDITORS / "emacs" / "graphspec-eglot.el"),
         "-l", str(ROOT / "tools" / "emacs_eglot_check.el"), str(spec)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("6:13: graphspec [GS110]: unknown layer type 'Dense2'"), out.stdout
