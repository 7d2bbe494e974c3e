"""The corpus of bad specs: each must produce exactly its expected codes, and nothing else.

Every file in tests/corpus/ states the codes it must produce on its first line
(`# expect: GS004`), or, when it cannot hold a comment (binary garbage, an empty
file), in tests/corpus/expected.yaml. A few cases are generated here instead of
committed (a file over the size limit, a document with too many values).

For each case lint runs in-process, like `graphspec lint FILE`: the codes must
match exactly (with multiplicity), no traceback may escape, the check must take
well under a second, and no module may be imported as a side effect -- not
TensorFlow or Keras, and not whatever an attack names (os.system, builtins.eval,
subprocess, keras.utils.get_file ...).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from graphspec.spec import source
from graphspec.cli.lint import lint_file

CORPUS = Path(__file__).resolve().parent / "corpus"
TABLE = CORPUS / "expected.yaml"
SPECS = Path(__file__).resolve().parents[1] / "specs"
SECONDS = 10.0  # a guard against hangs and blow-ups, not a speed claim (speed is measured in bench/)

Case = tuple[str, Callable[[Path], Path], list[str]]


def _committed() -> list[Case]:
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8")) or {}
    cases: list[Case] = []
    for path in sorted(CORPUS.iterdir()):
        if path == TABLE or not path.name.endswith((".yaml", ".yml")):
            continue
        first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
        if first.startswith("# expect:"):
            codes = first.removeprefix("# expect:").split()
        else:
            codes = table.get(path.name)
        assert codes, f"{path.name}: no `# expect:` first line and no entry in {TABLE.name}"
        cases.append((path.name, lambda tmp, p=path: p, sorted(codes)))
    return cases


def _write(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8")
        return p

    return make


_GOOD = (SPECS / "mnist_mlp.yaml").read_text(encoding="utf-8")
_GENERATED: list[Case] = [
    # Over the size cap: refused by its size, before it is read.
    ("generated:huge_file", _write("huge.yaml", _GOOD + "#" + "x" * (source.MAX_BYTES + 10) + "\n"), ["GS001"]),
    # Within the size cap, but more values than any spec needs.
    ("generated:too_many_values", _write("many.yaml", "graphspec: 1\nname: many\nvalues: ["
                                         + "1," * (source.MAX_NODES + 5) + "1]\n"), ["GS003"]),
    # A 200-level deep block mapping (the committed deep_nesting.yaml uses flow style).
    ("generated:deep_block", _write("deep.yaml", "graphspec: 1\nname: deep\nnodes:\n" + "".join(
        "  " * (i + 1) + f"k{i}:\n" for i in range(200)) + "  " * 201 + "x: 1\n"), ["GS003"]),
    # An integer whose digits alone would cost seconds to convert.
    ("generated:int_50k_digits", _write("bigint.yaml", "graphspec: 1\nname: big\ninputs: {x: [4]}\n"
                                        "nodes: {d: {type: Dense, units: " + "9" * 50_000 + "}}\n"), ["GS500"]),
    # Not UTF-8 at all.
    ("generated:latin1", _write("latin1.yaml", "name: caf\xe9\n".encode("latin-1")), ["GS001"]),
    # A UTF-8 byte-order mark is fine: the rest is a good spec.
    ("generated:bom", _write("bom.yaml", "\ufeff" + _GOOD), []),
]



def _special(name: str, kind: str) -> Callable[[Path], Path]:
    """A link to a device, or a named pipe: lint must refuse it without reading (forever)."""

    def make(tmp: Path) -> Path:
        p = tmp / name
        if kind == "fifo":
            os.mkfifo(p)
        else:
            p.symlink_to(kind)
        return p

    return make


if os.path.exists("/dev/zero") and hasattr(os, "mkfifo"):
    _GENERATED += [
        ("generated:link_to_dev_zero", _special("zero.yaml", "/dev/zero"), ["GS001"]),
        ("generated:fifo", _special("pipe.yaml", "fifo"), ["GS001"]),
    ]

CASES = _committed() + _GENERATED

# What a clean run may import lazily the first time (graphspec's own modules);
# anything else appearing in sys.modules during a check is a finding.
_ALLOWED_PREFIXES = ("graphspec",)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import everything a normal check imports, so that a later import is a side effect of the case."""
    for spec in sorted(SPECS.glob("*.yaml")):
        lint_file(str(spec))
    lint_file(str(CORPUS / "yaml_tabs.yaml"))
    lint_file(str(CORPUS / "binary_garbage.yaml"))


@pytest.mark.parametrize("make,expected", [pytest.param(m, e, id=n) for n, m, e in CASES])
def test_corpus(make: Callable[[Path], Path], expected: list[str], tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> None:
    path = make(tmp_path)
    monkeypatch.chdir(tmp_path)  # a payload that ran would leave a file here
    before = set(sys.modules)
    started = time.perf_counter()
    report = lint_file(str(path))  # never raises: a crash would be a GS900 diagnostic
    elapsed = time.perf_counter() - started
    new = {m for m in set(sys.modules) - before if not m.startswith(_ALLOWED_PREFIXES)}

    codes = sorted(d.code for d in report.diagnostics)
    shown = "\n".join(f"  {d.location}: {d.code}: {d.message}" for d in report.diagnostics)
    assert "GS900" not in codes, f"internal error:\n{shown}"
    assert codes == expected, f"expected {expected}, got {codes}:\n{shown}"
    assert not new, f"checking {path.name} imported {sorted(new)}"
    assert elapsed < SECONDS, f"{path.name} took {elapsed:.2f} s"
    assert not list(tmp_path.glob("graphspec_corpus_pwned*")), "a payload in the spec ran"
    for d in report.diagnostics:
        assert d.location.file == str(path)
        assert d.message and "\n" not in d.code
        # Whole-file problems too (an empty file, a link to a device): SARIF and editors need a line.
        assert d.location.line >= 1 and d.location.col >= 1, f"{d.code} has no position: {d.message}"


def test_corpus_covers_every_source_and_attack_code() -> None:
    """The corpus keeps exercising each hostile-input defence."""
    produced = {c for _, _, codes in CASES for c in codes}
    for code in ("GS001", "GS002", "GS003", "GS004", "GS005", "GS006", "GS115", "GS500", "GS501",
                 "GS110", "GS111", "GS112", "GS200", "GS202", "GS300"):
        assert code in produced, code
