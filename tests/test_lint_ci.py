"""Lint output as CI consumes it: SARIF paths and rules, positions of whole-file problems, `--set`.

- SARIF URIs are relative to the repository root (git top level, or `--root`),
  whatever folder lint runs from, never starting with `..`; absolute (`file://`)
  only for a file outside any repository;
- every SARIF rule has `help` (text and markdown), a name that is not its id, and
  the run says how columns are counted;
- a problem with a whole file (empty, only a comment, not UTF-8, a NUL byte, too
  large, too deep) has a line and column in every format;
- `lint --set` works like every other command's, and a problem an override caused
  is located at it (`--set #2`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from . import sarif_check
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.diagnostics import CODES
from graphspec.spec import overrides, source

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
CORPUS = ROOT / "tests" / "corpus"
BAD = (CORPUS / "unknown_layer_type.yaml").read_text(encoding="utf-8")  # GS110 at 8:13

runner = CliRunner()


def lint(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["lint", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


def sarif(*args: str | Path) -> dict[str, Any]:
    _, out = lint(*args, "-f", "sarif")
    doc: dict[str, Any] = json.loads(out)
    sarif_check.validate(doc)
    return doc


def _artifacts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]]


# -- SARIF paths -------------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository (a `.git` file, as in a worktree) with a spec in specs/ and an empty sub/ folder."""
    root = tmp_path / "repo"
    (root / "specs" / "deep").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / ".git").write_text("gitdir: /elsewhere\n")
    (root / "specs" / "deep" / "bad model.yaml").write_text(BAD)
    return root


@pytest.mark.parametrize("cwd, path", [
    ("", "specs/deep/bad model.yaml"),
    ("sub", "../specs/deep/bad model.yaml"),  # a workflow step with `working-directory: sub`
    ("specs/deep", "bad model.yaml"),
    ("specs", "."),
])
def test_sarif_uris_are_relative_to_the_repository_root(repo: Path, cwd: str, path: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / cwd)
    doc = sarif(path)
    assert _artifacts(doc) == [{"uri": "specs/deep/bad%20model.yaml", "uriBaseId": "%SRCROOT%"}]
    assert doc["runs"][0]["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.as_uri() + "/"}}


def test_sarif_root_option(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "sub")
    doc = sarif("../specs/deep/bad model.yaml", "--root", "../specs")
    assert _artifacts(doc) == [{"uri": "deep/bad%20model.yaml", "uriBaseId": "%SRCROOT%"}]
    code, _ = lint(str(repo / "specs"), "--root", "nowhere", "-f", "sarif")
    assert code == 2


def test_sarif_uris_outside_any_repository_are_absolute(repo: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.yaml").write_text(BAD)
    monkeypatch.chdir(loose)  # outside any repository: no root at all
    assert [a["uri"] for a in _artifacts(sarif("a.yaml"))] == [(loose / "a.yaml").as_uri()]
    monkeypatch.chdir(repo / "sub")  # in a repository, a file outside it
    found = _artifacts(sarif(loose / "a.yaml", "../specs"))
    assert found == [{"uri": (loose / "a.yaml").as_uri()},
                     {"uri": "specs/deep/bad%20model.yaml", "uriBaseId": "%SRCROOT%"}]
    assert not any(a["uri"].startswith("..") for a in found)


# -- SARIF rules ---------------------------------------------------------------------------------------------


def test_sarif_rules_have_help_names_and_the_run_a_column_kind() -> None:
    doc = sarif(CORPUS / "unknown_layer_type.yaml")
    run = doc["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CODES)
    names = [r["name"] for r in rules]
    assert len(set(names)) == len(names)
    for rule in rules:
        title = CODES[rule["id"]][0].removesuffix("(warning)").strip()
        assert rule["name"] != rule["id"] and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule["name"]), rule["name"]
        assert title.lower() in rule["help"]["text"].lower()
        assert rule["help"]["markdown"].startswith(f"**{rule['id']} `{rule['name']}`**")
        assert f"ignore[{rule['id']}]" in rule["help"]["text"]
        assert rule["helpUri"].endswith(f"#{rule['id'].lower()}")


# -- positions of whole-file problems --------------------------------------------------------------------

_TOO_LARGE = b"graphspec: 1\n" + b"#" * (source.MAX_BYTES + 10) + b"\n"
WHOLE_FILE = [
    # (name, bytes, code, line, col)
    ("empty", b"", "GS006", 1, 1),
    ("only a comment", b"# nothing here\n", "GS006", 1, 1),
    ("invalid UTF-8 at byte 6", b"name: \xff\xfe\n", "GS001", 1, 7),
    ("invalid UTF-8 on line 2", b"graphspec: 1\nname: caf\xe9\n", "GS001", 2, 10),
    ("a NUL byte", b"graphspec: 1\nname: a\x00b\n", "GS001", 2, 8),
    ("over the size cap", _TOO_LARGE, "GS001", 2, source.MAX_BYTES - len(b"graphspec: 1\n") + 1),
    # the root mapping is level 0 and `a`'s list level 1: the first list too deep opens at column 3 + 65
    ("nesting over the cap", b"a: " + b"[" * 80 + b"]" * 80 + b"\n", "GS003", 1, 3 + source.MAX_DEPTH + 1),
    ("a scalar document", b"just text\n", "GS006", 1, 1),
]


@pytest.mark.parametrize("name, data, code, line, col", WHOLE_FILE, ids=[c[0] for c in WHOLE_FILE])
def test_whole_file_problems_have_a_position_in_every_format(name: str, data: bytes, code: str, line: int,
                                                             col: int, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "s.yaml").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    _, text = lint("s.yaml")
    assert text.startswith(f"s.yaml:{line}:{col}: error[{code}]"), text[:300]
    _, out = lint("s.yaml", "-f", "json")
    (d,) = json.loads(out)["diagnostics"]
    assert (d["code"], d["line"], d["col"]) == (code, line, col)
    _, out = lint("s.yaml", "-f", "github")
    assert out.startswith(f"::error file=s.yaml,line={line},col={col},")
    (result,) = sarif("s.yaml")["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (result["ruleId"], region["startLine"], region["startColumn"]) == (code, line, col)


def test_a_shown_source_line_never_carries_control_characters(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_bytes(b"graphspec: 1\nname: \x1b]0;pwned\x07\n")  # terminal escape sequences
    code, out = lint(tmp_path / "s.yaml")
    assert code == 1 and "\x1b" not in out and "\x07" not in out and "\ufffd]0;pwned\ufffd" in out


# -- --set ------------------------------------------------------------------------------------------------------

SHORTHAND = """\
graphspec: 1
name: short
inputs: {x: [4]}
nodes:
  d: {type: Dense, units: 2}
compile: {optimizer: adam, loss: mse}
data:
  source: synthetic
"""


def test_lint_takes_set_and_errors_point_at_the_override() -> None:
    code, out = lint(SPECS / "mnist_mlp.yaml", "--set", "data.batch_size=8", "--set", "nodes.dense_1.units=true")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "--set #2: error[GS112]: expected a positive integer, got a boolean (True)"
    assert lines[1] == "  note: --set #2 is `nodes.dense_1.units=true`"
    code, out = lint(SPECS / "mnist_mlp.yaml", "--set", "data.batch_size=16", "-q")
    assert code == 0 and out == "0 errors, 0 warnings in 1 file\n"


def test_a_kind_changed_by_an_override_points_at_it_without_a_self_suggestion() -> None:
    code, out = lint(SPECS / "resnet_cifar10.yaml", "--set", "data.source.kind=synthetic", "-f", "json")
    assert code == 1
    (d,) = json.loads(out)["diagnostics"]
    assert (d["code"], d["file"], d["line"], d["message"]) == ("GS101", "--set #1", 0, "unknown field `name`")
    assert "did you mean" not in d["hint"] and "`sequence_length`" in d["hint"]
    assert d["notes"] == ["--set #1 is `data.source.kind=synthetic`",
                          f"`data.source.name` is on line 9 of {SPECS / 'resnet_cifar10.yaml'}"]


@pytest.mark.parametrize("sets, expected", [
    (["data.source.sequence_length=3"], []),  # `source: synthetic` is `{kind: synthetic}`, not `{type: ...}`
    (["data.source.samples=0"], ["GS103 --set #1"]),
    (["data.source.name=mnist"], ["GS101 --set #1"]),
    (["data.batch_size=4", "data.source.test_samples=true"], ["GS102 --set #2"]),
])
def test_overrides_of_a_shorthand_source(sets: list[str], expected: list[str], tmp_path: Path) -> None:
    spec = tmp_path / "short.yaml"
    spec.write_text(SHORTHAND)
    _, out = lint(spec, *[a for s in sets for a in ("--set", s)], "-f", "json")
    diags = json.loads(out)["diagnostics"]
    assert [f"{d['code']} {d['file']}" for d in diags] == expected
    assert not any("type" in d["message"] for d in diags)


@pytest.mark.parametrize("data, item, expected", [
    ({"data": {"source": "synthetic"}}, "data.source.samples=3", {"kind": "synthetic", "samples": 3}),
    ({"data": {"source": "keras:mnist"}}, "data.source.num_words=9", {"kind": "keras", "name": "mnist", "num_words": 9}),
    ({"compile": {"optimizer": "adam"}}, "compile.optimizer.learning_rate=0.1", {"type": "adam", "learning_rate": 0.1}),
])
def test_a_scalar_an_override_goes_into_becomes_the_mapping_it_stands_for(data: dict[str, Any], item: str,
                                                                       expected: dict[str, Any]) -> None:
    src = source.Source("s.yaml", "", data, {}, {})
    new = overrides.apply(src, [item])
    section, key = item.split(".")[:2]
    assert new.data[section][key] == expected
    assert str(new.location((section, key, "kind"))) == "--set #1"  # the whole mapping is the override's


def test_override_diagnostics_in_sarif_and_github() -> None:
    doc = sarif(SPECS / "mnist_mlp.yaml", "--set", "nodes.dense_1.units=0")
    (result,) = doc["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"].endswith("specs/mnist_mlp.yaml")
    assert physical["region"] == {"startLine": 1, "startColumn": 1}
    assert result["message"]["text"].startswith("--set #1: ")
    _, out = lint(SPECS / "mnist_mlp.yaml", "--set", "nodes.dense_1.units=0", "-f", "github")
    assert out.startswith("::error title=graphspec GS112::GS112: --set #1: ")


def test_malformed_overrides_are_numbered() -> None:
    code, out = lint(SPECS / "mnist_mlp.yaml", "--set", "data.batch_size=8", "--set", "novalue")
    assert code == 1 and out.startswith("--set #2: error[GS600]: --set expects KEY=VALUE, got 'novalue'")


@pytest.mark.parametrize("text, line, col", [
    ("a: " + "[" * 90_000 + "]" * 90_000 + "\n", 1, 3 + source.MAX_DEPTH + 1),  # past libyaml's own cap (1000)
    ("a: " + "[" * 900_000 + "\n", 1, 3 + source.MAX_DEPTH + 1),  # ... and over the value bound too
    ("x: 1\n" * 100 + "a: " + "[" * 1200 + "\n", 101, 3 + source.MAX_DEPTH + 1),
    ("- " * 40_000 + "x\n", 1, 2 * (source.MAX_DEPTH + 1) + 1),  # the list at level 65 starts at column 131
])
def test_deep_nesting_is_reported_where_our_limit_is_crossed(text: str, line: int, col: int) -> None:
    with pytest.raises(source.SourceError) as exc:
        source.loads(text)
    d = exc.value.diagnostic
    assert (d.code, d.location.line, d.location.col) == ("GS003", line, col)
