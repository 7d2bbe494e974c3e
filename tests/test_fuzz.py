"""Fuzzing the pure stages: lint only ever answers with diagnostics.

Hypothesis mutates the example specs (lines deleted and duplicated, characters
swapped, YAML tokens and hostile values inserted, words exchanged) and also
feeds random bytes. For every input :func:`graphspec.compiler.check` must
return -- no exception of any kind -- within a bounded time, with diagnostics
that carry known codes, and every output format must render them.

GRAPHSPEC_FUZZ_EXAMPLES=5000 runs a deeper search locally.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphspec import compiler
from graphspec.render import lint as render_lint
from graphspec.diagnostics import CODES, Diagnostic
from graphspec.render.lint import FileReport

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.yaml"))]
SECONDS = 10.0  # a guard against hangs and blow-ups, not a speed claim (speed is measured in bench/)
EXAMPLES = int(os.environ.get("GRAPHSPEC_FUZZ_EXAMPLES", "400"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # time is asserted per example below, on the check alone
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

TOKENS = [
    ":", ": ", "- ", "-", "[", "]", "{", "}", ",", "&a ", "*a", "&b [*a, *a, *a]", "<<: *a", "? ", "|", ">",
    "!!python/object/apply:os.system [ls]", "!!binary ", "!custom ", "!!str ", "!!int ", "!!float ", "!!map ",
    "\t", "\n", "  ", "    ", "---\n", "...\n", "%YAML 1.1\n", "#", "'", '"', "\\", "\x00", "\x07", "\ufeff", "é",
    "null", "~", "yes", "no", "on", "true", "-1", "0", "0x1F", "0o17", "0b101", "1_000", "1:30:00", "1e999",
    "1.0e+400", ".nan", ".inf", "-.inf", "2001-12-14", "9" * 40, "2147483648", "1000000000000", "-0",
    "Lambda", "os.system", "builtins.eval", "keras.utils.get_file", "keras.config.enable_unsafe_deserialization",
    "inputs: ", "outputs: ", "type: ", "share: ", "model: ", "op: ", "application: ", "expect: ", "models: ",
    "nodes: ", "compile: ", "loss: ", "shape: ", "units: ", "fresh: true", "submodel: true", "[]", "{}",
    "[null]", "[0]", "[-1]", "{type: Dense}", "{type: Add, inputs: [a, b]}", "vgg19.*", "x.y", "*",
    "${width}", "block: ", "vars: ", "blocks: ",
]
WORDS = sorted({w for s in SEEDS for w in s.replace(":", " ").replace(",", " ").replace("{", " ")
                .replace("}", " ").replace("[", " ").replace("]", " ").split() if w.isidentifier()})


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        lines = text.split("\n")
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "word", "number", "indent"]))
        if op == "delete" and len(lines) > 1:
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
        elif op == "duplicate":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
            text = "\n".join(lines)
        elif op == "swap" and len(text) > 2:
            i = draw(st.integers(0, len(text) - 2))
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        elif op == "insert":
            i = draw(st.integers(0, len(text)))
            token = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)))
            text = text[:i] + token + text[i:]
        elif op == "word" and WORDS:
            old, new = draw(st.sampled_from(WORDS)), draw(st.sampled_from(WORDS + TOKENS))
            text = text.replace(old, new, draw(st.integers(1, 3)))
        elif op == "number":
            digits = [i for i, c in enumerate(text) if c.isdigit()]
            if digits:
                i = draw(st.sampled_from(digits))
                text = text[:i] + draw(st.sampled_from(["0", "-1", "1e12", "99999999999", ".nan", "null", "[]",
                                                         "3.5", "yes", "'3'"])) + text[i + 1:]
        elif op == "indent":
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[i].lstrip()
            text = "\n".join(lines)
    return text


def _check_answers(result: compiler.Checked, elapsed: float, shown: str) -> None:
    assert elapsed < SECONDS, f"check took {elapsed:.2f} s on:\n{shown}"
    diags = result.diagnostics.sorted()
    for d in diags:
        assert isinstance(d, Diagnostic)
        assert d.code in CODES, d.code
        assert d.code != "GS900"
    # Every output format renders whatever the stages produced.
    report = FileReport(result.file, diags, [], result.source.text if result.source else None)
    render_lint.text([report])
    json.loads(render_lint.json_text([report]))
    render_lint.github([report])
    json.loads(render_lint.sarif_text([report]))
    if result.analysis is not None:
        for info in result.analysis.models.values():
            assert info.params is None or info.params >= 0


@SETTINGS
@given(mutated())
def test_mutated_specs_only_produce_diagnostics(text: str) -> None:
    started = time.perf_counter()
    result = compiler.check(text=text)
    _check_answers(result, time.perf_counter() - started, text[:2000])


@SETTINGS
@given(st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda seed, junk, at: seed.encode()[:at] + junk + seed.encode()[at:],
              st.sampled_from(SEEDS), st.binary(min_size=1, max_size=64), st.integers(0, 1500)),
))
def test_random_bytes_only_produce_diagnostics(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(data)
        started = time.perf_counter()
        result = compiler.check(path)
        _check_answers(result, time.perf_counter() - started, repr(data[:500]))


@SETTINGS
@given(st.text(max_size=400))
def test_random_text_only_produces_diagnostics(text: str) -> None:
    started = time.perf_counter()
    result = compiler.check(text=text)
    _check_answers(result, time.perf_counter() - started, repr(text))
