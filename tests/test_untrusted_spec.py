"""Untrusted specs (issue 15, spec side): YAML 1.2 scalars, file arguments, callables and call
arguments, variable expansion limits, --set depth, plugins read statically, memory budgets,
and messages that do not echo hostile values whole. Pure: no backend is imported here.

tests/hostile/ runs the same attacks end to end in subprocesses.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from graphspec import compiler
from graphspec.analysis import memory
from graphspec.diagnostics import Diagnostic, Location, Severity, clip
from graphspec.errors import SpecError, UsageError
from graphspec.render.text import diagnostic_text
from graphspec.spec import files, overrides, plugins, source, yaml12
from graphspec.spec.schema import byte_size

HEAD = "graphspec: 1\nname: t\ninputs:\n  x: [4]\n"


def check(body: str, *, head: str = HEAD, path: Path | None = None, **kwargs: Any) -> Any:
    text = head + textwrap.dedent(body)
    if path is not None:
        path.write_text(text, encoding="utf-8")
        return compiler.check(path, **kwargs)
    return compiler.check(text=text, **kwargs)


def codes(result: Any) -> list[str]:
    return [d.code for d in result.diagnostics.sorted()]


def messages(result: Any) -> str:
    return "\n".join(f"{d.code} {d.message} | {d.hint}" for d in result.diagnostics.sorted())


# -- YAML 1.2 scalars (item 13) -------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("1e-4", 1e-4), (".5e3", 500.0), ("0o17", 15), ("0x1F", 31), ("08", 8), ("-.5", -0.5), ("+12", 12),
    ("true", True), ("False", False), ("~", None), ("yes", "yes"), ("1:3", "1:3"), ("0b11", "0b11"),
    ("1_000", "1_000"), (".inf", math.inf), ("2024-01-01", "2024-01-01"),
])
def test_yaml12_core_schema(text: str, value: Any) -> None:
    assert yaml12.same(yaml12.resolve(text), value)


@pytest.mark.parametrize(("text", "value"), [
    ("1e-4", 1e-4), ("0o17", 15), ("08", 8), ("-.5", -0.5), ('"010"', "010"), ("'on'", "on"),
    ("!!int 010", 8), ("!!str 1:3", "1:3"), ("2024-01-01", "2024-01-01"), ("y", "y"),
])
def test_values_read_as_yaml_12(text: str, value: Any) -> None:
    assert yaml12.same(source.loads(f"v: {text}\n").data["v"], value)


@pytest.mark.parametrize(("text", "words"), [
    ("1:3", "base-60 number in YAML 1.1 (63)"), ("010", "octal number in YAML 1.1 (8) but 10"),
    ("0b11", "binary number in YAML 1.1 (3)"), ("1_000", "`_` separators in YAML 1.1 (1,000)"),
    ("on", "`on` is true in YAML 1.1"), ("No", "`No` is false in YAML 1.1"), ("+0x10", "(16)"),
    ("1:30.5", "base-60 number"),
])
def test_yaml11_forms_are_refused(text: str, words: str) -> None:
    with pytest.raises(source.SourceError) as info:
        source.loads(f"graphspec: 1\nv: {text}\n", "s.yaml")
    d = info.value.diagnostic
    assert (d.code, d.location.line, d.location.col) == ("GS007", 2, 4)
    assert words in d.message and d.hint


def test_yaml11_boolean_keys_stay_names() -> None:
    assert source.loads("on: 1\nyes: 2\ntrue: 3\n").data == {"on": 1, "yes": 2, "true": 3}


@pytest.mark.parametrize("version", ["true", "1.0", "'1'"])
def test_format_version_must_be_the_integer_1(version: str) -> None:
    result = check("nodes:\n  d: {type: Dense, units: 2}\n", head=f"graphspec: {version}\nname: t\ninputs:\n  x: [4]\n")
    assert codes(result) == ["GS104"]


def test_a_long_integer_in_yaml_12_form_is_refused() -> None:
    with pytest.raises(source.SourceError) as info:
        source.loads("v: 0o" + "7" * 40 + "\n")
    assert info.value.diagnostic.code == "GS500"


# -- messages (item 14) --------------------------------------------------------------------------
def test_clip_shortens_long_quoted_values_only_in_long_messages() -> None:
    assert clip("unknown layer type 'Dence'") == "unknown layer type 'Dence'"
    text = clip("unknown layer type '" + "A" * 900_000 + "'")
    assert len(text) < 200 and "(900,000 characters)" in text
    d = Diagnostic("GS110", Severity.ERROR, "x `" + "b" * 5000 + "`", Location("f"), "h" * 5000,
                   tuple(f"n{i}" for i in range(50)))
    assert len(d.message) < 300 and len(d.hint or "") <= 1000 and len(d.notes) == 21


def test_a_long_source_line_is_shown_as_a_window_around_the_fault() -> None:
    line = "  d: {type: " + "A" * 10_000 + ", units: 2}"
    d = Diagnostic("GS111", Severity.ERROR, "m", Location("f", 1, len(line) - 8, 1, len(line) - 3))
    shown = diagnostic_text(d, line).splitlines()
    assert len(shown[1]) < 200 and shown[1].endswith("units: 2}")
    caret = shown[2].index("^")
    assert shown[1][caret:caret + 5] == "units"


def test_a_long_unknown_type_name_is_reported_short() -> None:
    result = check("nodes:\n  d: {type: " + "Q" * 900_000 + ", units: 2}\n")
    (d,) = result.diagnostics.sorted()
    assert d.code == "GS110" and len(d.message) < 300


def test_dashed_names_and_subtraction() -> None:
    result = check("""
        vars: {a: 8, b: 2}
        nodes:
          d: {type: Dense, units: "${a-b}"}
          e: {type: Dense, units: "${a-b + 1}"}
          f: {type: Dense, units: "${a - b}"}
    """)
    assert codes(result) == ["GS120", "GS121"]
    assert "`a-b` is one name, not a subtraction" in messages(result)
    assert "`${a - b}`" in messages(result)
    ok = check("""
        vars: {a-b: 3, a: 8, b: 2}
        nodes:
          d: {type: Dense, units: "${a-b}"}
    """)
    assert ok.ok and ok.source.data["nodes"]["d"]["units"] == 3


# -- variables (item 8) --------------------------------------------------------------------------
def test_a_long_chain_of_variables_in_any_order() -> None:
    chain = "".join(f"  v{i}: ${{v{i + 1}}}\n" for i in range(5000)) + "  v5000: 3\n"
    result = check("vars:\n" + chain + "nodes:\n  d: {type: Dense, units: $v0}\n")
    assert result.ok, messages(result)
    assert result.source.data["nodes"]["d"]["units"] == 3


def test_a_cycle_among_many_variables_is_named() -> None:
    chain = "".join(f"  v{i}: ${{v{i + 1}}}\n" for i in range(2000)) + "  v2000: $v0\n"
    result = check("vars:\n" + chain + "nodes:\n  d: {type: Dense, units: 2}\n")
    assert "GS122" in codes(result)


def test_a_variable_that_multiplies_is_capped_and_named() -> None:
    levels = "".join(f"  v{i}: [" + ", ".join([f"$v{i - 1}"] * 10) + "]\n" for i in range(1, 9))
    result = check("vars:\n  v0: [x, x, x, x, x, x, x, x, x, x]\n" + levels
                   + "nodes:\n  d: {type: Dense, units: 2, bias_initializer: $v8}\n")
    diags = result.diagnostics.sorted()
    assert [d.code for d in diags] == ["GS500"]
    assert "variable `v4` expands to 111,111 values" in diags[0].message
    assert diags[0].location.line == 10


def test_variables_that_nest_deeper_and_deeper_are_capped() -> None:
    chain = "".join(f"  v{i}: [$v{i - 1}]\n" for i in range(1, 3000))
    result = check("vars:\n  v0: 1\n" + chain + "nodes:\n  d: {type: Dense, units: 2, bias_initializer: $v2999}\n")
    (d,) = result.diagnostics.sorted()
    assert d.code == "GS500" and "variable `v65` nests 65 levels deep" in d.message


def test_copies_of_a_large_variable_hit_the_total_budget() -> None:
    big = "[" + ", ".join(["1"] * 60_000) + "]"
    uses = "".join(f"  n{i}: {{type: Dense, units: 2, bias_initializer: $big}}\n" for i in range(20))
    result = check(f"vars:\n  big: {big}\nnodes:\n" + uses)
    assert codes(result) == ["GS500"]
    assert "more than 1,000,000 values" in messages(result)


# -- --set (item 9) -------------------------------------------------------------------------------
def test_set_path_depth_is_bounded() -> None:
    src = source.loads(HEAD + "nodes:\n  d: {type: Dense, units: 2}\n", "s.yaml")
    with pytest.raises(source.SourceError) as info:
        overrides.apply(src, [".".join(["a"] * 3000) + "=1"])
    d = info.value.diagnostic
    assert d.code == "GS600" and "3,000 parts" in d.message and len(d.location.file) < 300
    with pytest.raises(source.SourceError):
        overrides.apply(src, ["a." * 40 + "b=" + "[" * 30 + "1" + "]" * 30])
    assert overrides.apply(src, ["nodes.d.units=3"]).data["nodes"]["d"]["units"] == 3


# -- plugins (items 9, 14) -----------------------------------------------------------------------
def test_plugin_paths_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x = 1\n")
    (tmp_path / "folder").mkdir()
    for plugin, words in ((tmp_path / "notes.txt", "is not a Python file"), (tmp_path / "folder", "is a folder"),
                          (tmp_path / "none.py", "not found"), ("no_such_module_x", "nor a module")):
        with pytest.raises(UsageError, match=words):
            plugins.scan(str(plugin))


def test_a_plugin_too_deep_for_the_parser_is_a_usage_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.py"
    deep.write_text("X = " + "+".join(["1"] * 200_000) + "\n")
    with pytest.raises(UsageError, match="nested too deeply"):
        plugins.scan(str(deep))


PLUGIN = """
import keras

class Scaler(keras.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)

    def call(self, x, training=None, scale=1.0, noisy=False, extra=None):
        return x
"""


def test_plugin_call_arguments_are_read_statically(tmp_path: Path) -> None:
    plugin = tmp_path / "scaler.py"
    plugin.write_text(PLUGIN)
    result = check("""
        nodes:
          a: {type: Scaler, call: {training: false, scale: 3, noisy: true, extra: anything}}
          b: {type: Scaler, call: {scale: big, noisy: 1, other: 1}}
    """, plugins=[str(plugin)])
    assert codes(result) == ["GS112", "GS112", "GS111"]


# -- call arguments and callables (item 3) -------------------------------------------------------
def test_call_arguments_follow_the_call_signature() -> None:
    result = check("""
        inputs:
          x: [4]
          s: [6, 4]
        nodes:
          drop: {type: Dropout, rate: 0.5, inputs: x, call: {training: '__import__("os")'}}
          ok: {type: Dropout, rate: 0.5, inputs: x, call: {training: false}}
          rnn: {type: LSTM, units: 2, inputs: s, call: {mask: 1, training: null}}
          att: {type: MultiHeadAttention, num_heads: 1, key_dim: 2, inputs: {query: s, value: s},
                call: {use_causal_mask: "yes", return_attention_scores: false}}
          dense: {type: Dense, units: 2, inputs: x, call: {payload: 1}}
          again: {share: drop, inputs: x, call: {training: 1}}
          op: {op: add, inputs: [x, x], call: {x: 1}}
    """, head="graphspec: 1\nname: t\n")
    assert [(d.code, d.location.line) for d in result.diagnostics.sorted() if d.is_error] == [
        ("GS112", 8), ("GS112", 10), ("GS112", 12), ("GS111", 13), ("GS112", 14), ("GS111", 15)]


def test_a_model_call_takes_only_training() -> None:
    result = check("""
        models:
          inner: {inputs: x, outputs: d, submodel: true}
          outer: {inputs: x, outputs: m}
        nodes:
          d: {type: Dense, units: 2}
          m: {model: inner, inputs: x, call: {training: false, mask: 1}}
    """)
    assert codes(result) == ["GS111"]


@pytest.mark.parametrize(("metric", "code"), [
    ("{type: MeanMetricWrapper, fn: os.system}", "GS115"),
    ("{type: MeanMetricWrapper, fn: system}", "GS114"),
    ("{type: MeanMetricWrapper, fn: [1]}", "GS114"),
    ("{type: MeanMetricWrapper, fn: mean_absolute_error}", None),
])
def test_arguments_keras_calls_name_a_catalog_function(metric: str, code: str | None) -> None:
    result = check(f"nodes:\n  d: {{type: Dense, units: 2}}\ncompile:\n  loss: mse\n  metrics: [{metric}]\n")
    assert codes(result) == ([code] if code else [])


def test_compile_class_arguments_are_typed_and_located() -> None:
    result = check("""
        nodes:
          d: {type: Dense, units: 2}
        compile:
          optimizer: {type: Adam, beta_1: os.system}
          loss: mse
    """)
    (d,) = result.diagnostics.sorted()
    assert d.code == "GS112" and (d.location.line, d.location.col) == (9, 35)
    schedule = check("""
        nodes:
          d: {type: Dense, units: 2}
        compile:
          optimizer: {type: Adam, learning_rate: {type: ExponentialDecay, initial_learning_rate: 0.1,
                                                  decay_steps: 10, decay_rate: 0.9}}
          loss: mse
    """)
    assert schedule.ok, messages(schedule)


# -- file arguments (item 2) ---------------------------------------------------------------------
VOCAB = "graphspec: 1\nname: v\ninputs:\n  s: {shape: [1], dtype: string}\n"


def test_file_arguments_stay_in_the_spec_folder(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "vocab.txt").write_text("a\nb\n")
    (spec_dir / "sub").mkdir()
    (tmp_path / "outside.txt").write_text("secret\n")
    (spec_dir / "link.txt").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(spec_dir / "pipe")
    result = check("""
        nodes:
          ok: {type: StringLookup, vocabulary: vocab.txt}
          up: {type: StringLookup, vocabulary: ../outside.txt, inputs: s}
          abs: {type: StringLookup, vocabulary: /etc/passwd, inputs: s}
          link: {type: StringLookup, vocabulary: link.txt, inputs: s}
          pipe: {type: StringLookup, vocabulary: pipe, inputs: s}
          dir: {type: TextVectorization, vocabulary: sub, inputs: s}
          url: {type: IntegerLookup, vocabulary: "https://example.com/v", inputs: s}
          none: {type: StringLookup, vocabulary: missing.txt, inputs: s}
          list: {type: StringLookup, vocabulary: [a, b], inputs: s}
    """, head=VOCAB, path=spec_dir / "spec.yaml")
    assert [(d.code, d.location.line) for d in result.diagnostics.sorted() if d.is_error] == [
        ("GS119", n) for n in range(8, 15)]
    with_root = check("nodes:\n  up: {type: StringLookup, vocabulary: ../outside.txt}\n", head=VOCAB,
                      path=spec_dir / "spec.yaml", data_roots=[str(tmp_path)])
    assert "GS119" not in codes(with_root)


def test_file_arguments_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "big.txt").write_text("x\n" * 100)
    monkeypatch.setattr(files, "MAX_BYTES", 50)
    roots = files.roots_for(str(tmp_path / "spec.yaml"))
    with pytest.raises(files.FileProblem, match="the limit is 50"):
        files.resolve("big.txt", roots)


def test_reading_rechecks_the_opened_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "vocab.txt").write_text("a\nb\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "vocab.txt").write_text("API_KEY\n")
    roots = files.roots_for(str(root / "spec.yaml"))
    assert files.read_vocabulary("data/vocab.txt", roots, integers=False) == ["a", "b"]
    checked = files.resolve

    def swap_file(value: str, r: files.Roots) -> Path:  # the file becomes a link after the check
        real = checked(value, r)
        real.unlink()
        real.symlink_to(secret / "vocab.txt")
        return real

    monkeypatch.setattr(files, "resolve", swap_file)
    with pytest.raises(files.FileProblem):
        files.read_bytes("data/vocab.txt", roots)
    (root / "data" / "vocab.txt").unlink()
    (root / "data" / "vocab.txt").write_text("a\n")

    def swap_folder(value: str, r: files.Roots) -> Path:  # a folder on the way becomes a link
        real = checked(value, r)
        (root / "data").rename(root / "old")
        (root / "data").symlink_to(secret)
        return real

    monkeypatch.setattr(files, "resolve", swap_folder)
    if files._opened_path(os.open(os.devnull, os.O_RDONLY)) is None:
        pytest.skip("this system cannot say where an open file is")
    with pytest.raises(files.FileProblem, match="outside"):
        files.read_bytes("data/vocab.txt", roots)


def test_integer_vocabularies(tmp_path: Path) -> None:
    (tmp_path / "ids.txt").write_text("3\n5\n")
    (tmp_path / "bad.txt").write_text("3\nfive\n")
    roots = files.roots_for(str(tmp_path / "spec.yaml"))
    assert files.read_vocabulary("ids.txt", roots, integers=True) == [3, 5]
    with pytest.raises(files.FileProblem, match="line 2"):
        files.read_vocabulary("bad.txt", roots, integers=True)


# -- memory budgets (item 10) -------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "size"), [
    ("8 GiB", 8 * 2**30), ("512MB", 512 * 10**6), ("1.5 G", 15 * 10**8), ("100", 100), (100, 100), ("2 kib", 2048),
])
def test_byte_sizes(text: Any, size: int) -> None:
    assert byte_size(text) == size


HUGE = "graphspec: 1\nname: huge\ninputs:\n  x: [50000]\nnodes:\n  wide: {type: Dense, units: 50000}\n"


def test_lint_warns_and_build_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.ENV, "8 GiB")
    result = compiler.check(text=HUGE)
    (d,) = result.diagnostics.sorted()
    assert (d.code, d.severity, d.location.line) == ("GS502", Severity.WARNING, 6)
    assert "weights 9.3 GiB" in d.message and "$GRAPHSPEC_MEMORY_BUDGET" in d.message
    with pytest.raises(SpecError) as info:
        compiler.build(result)  # refused before Keras is imported
    assert [x.code for x in info.value.diagnostics] == ["GS502"]
    # The operator's variable is a ceiling: a spec's budget lowers it, never raises it (issue 19 item 9).
    (raised,) = compiler.check(text=HUGE + "expect: {memory_budget: 64 GiB}\n").diagnostics.sorted()
    assert (raised.code, raised.location.line) == ("GS502", 7)
    assert "budget of 8.0 GiB ($GRAPHSPEC_MEMORY_BUDGET, which `expect.memory_budget` cannot raise)" in raised.message
    monkeypatch.delenv(memory.ENV)
    roomy = compiler.check(text=HUGE + "expect: {memory_budget: 64 GiB}\n")
    assert roomy.ok and not roomy.diagnostics


def test_budget_counts_training_and_synthetic_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.ENV, "1 GiB")
    result = check("""
        nodes:
          d: {type: Dense, units: 4}
        compile: {optimizer: adam, loss: mse}
        data:
          source: {kind: synthetic, samples: 100000000}
          batch_size: 32
    """)
    (d,) = result.diagnostics.sorted()
    assert d.code == "GS502" and "synthetic data 3.0 GiB" in d.message and d.location.line == 10
    assert compiler.check(text=HUGE.replace("50000", "100")).diagnostics.sorted() == []


def test_the_machine_budget() -> None:
    found = memory.machine_memory()
    assert found is None or found > 2**20


def test_one_hot_without_an_identity_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    from graphspec.run import data

    ids = np.array([[0], [2], [1]])
    assert np.array_equal(data.apply_transforms(ids, [data.OneHot(one_hot=3)], ("t",)),
                          np.eye(3, dtype=np.float32)[[0, 2, 1]])
    monkeypatch.setenv(memory.ENV, "1 MiB")
    with pytest.raises(data._Problem) as info:
        data.apply_transforms(ids, [data.OneHot(one_hot=2**24)], ("t",))
    assert info.value.code == "GS502"


# -- building (Keras) ---------------------------------------------------------------------------------
@pytest.mark.keras
def test_checked_arguments_build(tmp_path: Path, keras_clean: Any) -> None:
    (tmp_path / "words.txt").write_text("red\ngreen\nblue\n")
    (tmp_path / "ids.txt").write_text("7\n9\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""
        graphspec: 1
        name: built
        inputs:
          words: {shape: [1], dtype: string}
          ids: {shape: [1], dtype: int64}
          x: [4]
        nodes:
          w: {type: StringLookup, vocabulary: words.txt, inputs: words}
          i: {type: IntegerLookup, vocabulary: ids.txt, inputs: ids}
          d: {type: Dense, units: 2, inputs: x}
          drop: {type: Dropout, rate: 0.5, call: {training: false}}
        models:
          m: {inputs: [words, ids, x], outputs: [w, i, drop]}
        compile:
          loss: mse
          metrics: [{type: MeanMetricWrapper, fn: mean_absolute_error}]
    """))
    later = compiler.check(spec)
    assert later.ok, messages(later)
    built = compiler.build(compiler.check(spec))["m"]
    assert built.get_layer("w").get_vocabulary() == ["[UNK]", "red", "green", "blue"]
    assert built.get_layer("i").get_vocabulary() == [-1, 7, 9]
    (tmp_path / "words.txt").unlink()
    (tmp_path / "words.txt").symlink_to("/etc/passwd")  # after the check, before the build
    with pytest.raises(SpecError) as info:
        compiler.build(later)
    assert [(d.code, d.location.line) for d in info.value.diagnostics] == [("GS119", 9)]
