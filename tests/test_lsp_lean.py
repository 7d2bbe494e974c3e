"""`graphspec lsp` on the lean install plus the `[lsp]` extra: an environment where Keras, numpy
and every backend are absent, so the server working there proves it never imports them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pygls")

from tests.lsp_client import ROOT, Session  # noqa: E402
from tests.test_lean_install import _closure, _link, lean  # noqa: E402, F401 - `lean` is a fixture


def test_lsp_runs_on_the_lean_install_plus_its_extra(lean: dict[str, Any]) -> None:  # noqa: F811
    python = str(lean["python"])
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for dist in _closure({"pygls", "lsprotocol"}):
        _link(dist, site)
    absent = subprocess.run([python, "-c", "import importlib.util as u; print([m for m in ('keras', 'numpy', "
                             "'tensorflow', 'jax', 'torch') if u.find_spec(m)])"], capture_output=True, text=True,
                            env=lean["env"], timeout=60)
    assert absent.stdout.strip() == "[]", absent.stderr
    s = Session(ROOT, (str(lean["bin"] / "graphspec"), "lsp"), env=lean["env"])
    try:
        uri, diags = s.open(ROOT / "specs" / "custom_layer.yaml")  # a plugin layer: read, never imported
        assert diags == []
        hints = s.inlay(uri, 100)
        assert hints and all(h.label for h in hints)
        text = (ROOT / "specs" / "custom_layer.yaml").read_text(encoding="utf-8").splitlines()
        line = next(i for i, t in enumerate(text) if t.startswith("nodes:")) + 1
        assert "output: `(None," in (s.hover(uri, line, 3) or "")
        s.close_doc(uri)
        assert s.errors() == []
    finally:
        s.close()
