"""What lint checks and reports: folder discovery, `[tool.graphspec.lint]`, inline suppressions.

- walking folders (and globs) skips run folders, sweep folders and YAML files
  without a `graphspec:` or `extends:` key, and says how many; files named are always linted;
- `select`, `ignore`, `per-file-ignores` and `exclude` in pyproject.toml work as in ruff;
- `# graphspec: ignore[CODE]` on a diagnostic's line, or on its node's line, hides
  it; `--strict` reports suppressions that hide nothing (GS603).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphspec.analysis import lint_policy
from graphspec.cli.app import app
from graphspec.cli.lint import expand_paths
from graphspec.cli.lint_paths import Skipped
from graphspec.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
GOOD = (SPECS / "mnist_mlp.yaml").read_text(encoding="utf-8")
# A plugin layer that declares no static shape rule: every node of it is a GS302 warning.
PLUGIN_SOURCE = """\
import keras


class Undeclared(keras.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def call(self, inputs):
        return inputs
"""
PLUGIN = ""


@pytest.fixture(autouse=True, scope="module")
def _plugin(tmp_path_factory: pytest.TempPathFactory) -> None:
    global PLUGIN
    path = tmp_path_factory.mktemp("plugin") / "undeclared.py"
    path.write_text(PLUGIN_SOURCE)
    PLUGIN = str(path)

runner = CliRunner()


def lint(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["lint", "--plugin", PLUGIN, *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


# -- discovery ---------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Specs beside what a project also holds: run folders, a sweep, CI workflows, other YAML."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mnist.yaml").write_text(GOOD)
    (tmp_path / "specs" / "flow.yml").write_text("{graphspec: 1, name: f, inputs: {x: [2]}, nodes: {d: {type: Dense, "
                                                 "units: 1}}}\n")
    run = tmp_path / "runs" / "mnist" / "20250101-000000"
    run.mkdir(parents=True)
    (run / "spec.yaml").write_text(GOOD.replace("units: 64", "units: 0"))  # would be an error if linted
    (run / "state.json").write_text("{}")
    trial = tmp_path / "sweeps" / "lr" / "trial-0003"
    trial.mkdir(parents=True)
    (trial / "spec.yaml").write_text("graphspec: 1\nname: [\n")
    (trial / "state.json").write_text("{}")
    (tmp_path / "sweeps" / "lr" / "spec.yaml").write_text("graphspec: 1\nname: [\n")
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "ci.yml").write_text("jobs:\n  lint: {runs-on: ubuntu-latest}\n")
    (tmp_path / "mkdocs.yaml").write_text("site_name: docs\n")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_walking_skips_what_is_not_a_spec_and_says_so(project: Path) -> None:
    skipped: list[Skipped] = []
    files = expand_paths(["."], skipped=skipped)
    assert files == ["specs/flow.yml", "specs/mnist.yaml"]
    assert sorted((s.reason, s.path) for s in skipped) == [
        ("not a spec", "mkdocs.yaml"), ("not a spec", "workflows/ci.yml"),
        ("run folder", "runs/mnist/20250101-000000"), ("sweep folder", "sweeps/lr"),
    ]
    code, out, _ = lint(".", "-q")
    assert code == 0
    assert out.splitlines()[-1] == ("0 errors, 0 warnings in 2 files (skipped 2 YAML files without a `graphspec:` "
                                    "or `extends:` key, 1 run folder and 1 sweep folder)")
    _, out, _ = lint(".", "-f", "json")
    doc = json.loads(out)
    assert doc["summary"]["skipped"] == 4
    assert {"path": "runs/mnist/20250101-000000", "reason": "run folder"} in doc["skipped"]


def test_globs_skip_like_folders(project: Path) -> None:
    skipped: list[Skipped] = []
    assert expand_paths(["**/*.y*ml"], skipped=skipped) == ["specs/flow.yml", "specs/mnist.yaml"]
    assert sorted((s.reason, s.path) for s in skipped) == [
        ("not a spec", "mkdocs.yaml"), ("not a spec", "workflows/ci.yml"),
        ("run folder", "runs/mnist/20250101-000000"), ("run folder", "sweeps/lr/trial-0003"),
        ("sweep folder", "sweeps/lr"),
    ]
    assert expand_paths(["runs/**/*.yaml"]) == []  # matched, and skipped: not a usage error


def test_files_named_are_always_linted(project: Path) -> None:
    code, out, _ = lint("workflows/ci.yml", "runs/mnist/20250101-000000/spec.yaml", "-f", "json")
    doc = json.loads(out)
    assert code == 1 and doc["summary"]["files"] == 2 and doc["summary"]["skipped"] == 0
    assert {d["code"] for d in doc["diagnostics"] if d["file"] == "workflows/ci.yml"} >= {"GS100", "GS101"}
    assert any(d["file"].startswith("runs/") and d["code"] == "GS112" for d in doc["diagnostics"])
    # A run folder named on the command line is searched too.
    assert expand_paths(["runs/mnist/20250101-000000"]) == ["runs/mnist/20250101-000000/spec.yaml"]


def test_a_folder_without_specs_is_a_usage_error_that_says_what_was_skipped(project: Path) -> None:
    code, _, err = lint("workflows")
    assert code == 2 and "no specs under workflows (skipped 1 YAML file without a `graphspec:` or `extends:` key)" in err


# -- [tool.graphspec.lint] ------------------------------------------------------------------------------------

# Two warnings: GS204 (an unused node, line 8) and GS302 (a plugin layer without a shape rule, line 7).
WARNINGS = """\
graphspec: 1
name: w
inputs:
  x: {shape: [32, 32, 3]}
nodes:
  f: {type: Flatten}
  app: {type: Undeclared, units: 4}
  unused:
    type: Dense
    units: 3
    inputs: x
models:
  m: {outputs: [f, app]}
"""


def _codes(out: str) -> list[str]:
    return [d["code"] for d in json.loads(out)["diagnostics"]]


@pytest.mark.parametrize("config, path, expected", [
    ("", "w.yaml", ["GS302", "GS204"]),
    ('ignore = ["GS302"]', "w.yaml", ["GS204"]),
    ('ignore = ["GS3"]', "w.yaml", ["GS204"]),  # a prefix
    ('ignore = ["unused-node"]', "w.yaml", ["GS302"]),  # a rule name
    ('select = ["GS2"]', "w.yaml", ["GS204"]),
    ('select = ["GS2", "GS3"]\nignore = ["GS204"]', "w.yaml", ["GS302"]),
    ('[tool.graphspec.lint.per-file-ignores]\n"legacy/*.yaml" = ["GS302"]', "legacy/w.yaml", ["GS204"]),
    ('[tool.graphspec.lint.per-file-ignores]\n"legacy/*.yaml" = ["GS302"]', "w.yaml", ["GS302", "GS204"]),
    ('[tool.graphspec.lint.per-file-ignores]\n"w.yaml" = ["ALL"]', "legacy/w.yaml", []),
])
def test_select_ignore_and_per_file_ignores(config: str, path: str, expected: list[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.graphspec.lint]\n" + config + "\n")
    (tmp_path / ".git").mkdir()  # a repository: configuration is searched for up to its root
    (tmp_path / "legacy").mkdir()
    (tmp_path / path).write_text(WARNINGS)
    monkeypatch.chdir(tmp_path / "legacy")  # the nearest pyproject.toml with the section, from a subfolder
    _, out, _ = lint(tmp_path / path, "-f", "json")
    assert _codes(out) == expected


def test_exclude_applies_to_walking_not_to_files_named(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.graphspec.lint]\nexclude = ["flow.yml", "specs/old/"]\n')
    (project / "specs" / "old").mkdir()
    (project / "specs" / "old" / "x.yaml").write_text("graphspec: 1\n")
    code, out, _ = lint("specs", "-q")
    assert code == 0 and out.endswith("in 1 file (skipped 2 paths excluded by [tool.graphspec.lint])\n")
    code, out, _ = lint("specs/flow.yml", "-q")
    assert code == 0 and out.endswith("in 1 file\n")


@pytest.mark.parametrize("config, message", [
    ('ignore = ["GS3002"]', "'GS3002' is not a code, a code prefix or a rule name"),
    ('ignore = "GS302"', "ignore must be a list of strings"),
    ('selct = ["GS2"]', "has no setting 'selct' (did you mean `select`?)"),
    ('ignore = ["unused-nod"]', "(did you mean `unused-node`?)"),
    ("per-file-ignores = 3", "per-file-ignores must be a table"),
    ("ignore = [", "cannot read it"),
])
def test_a_mistake_in_the_configuration_is_a_usage_error(config: str, message: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.graphspec.lint]\n" + config + "\n")
    (tmp_path / "w.yaml").write_text(WARNINGS)
    monkeypatch.chdir(tmp_path)
    code, _, err = lint("w.yaml")
    assert code == 2 and message in err and "pyproject.toml" in err
    with pytest.raises(UsageError):
        lint_policy.load_config(tmp_path)


# -- inline suppressions --------------------------------------------------------------------------------------


def _suppressed(lines: dict[int, str]) -> str:
    text = WARNINGS.splitlines()
    for number, comment in lines.items():
        text[number - 1] += f"  # graphspec: {comment}"
    return "\n".join(text) + "\n"


@pytest.mark.parametrize("comments, strict, expected", [
    ({7: "ignore[GS302]"}, False, ["GS204"]),
    ({7: "ignore[GS302]"}, True, ["GS204"]),
    ({8: "ignore[GS204]"}, True, ["GS302"]),  # on the node's line: covers the node (GS204 is at its key)
    ({10: "ignore[GS204]"}, False, ["GS302", "GS204"]),  # inside the node, on another line: not its line
    ({7: "ignore[GS302, unused-node]", 8: "ignore[GS204]"}, False, []),
    ({7: "ignore[GS302, GS204]"}, False, ["GS204"]),  # GS204 is not on line 7
    ({7: "ignore[GS302, GS204]"}, True, ["GS603", "GS204"]),  # ... and the unused part is reported
    ({6: "ignore[GS110]"}, True, ["GS603", "GS302", "GS204"]),  # (sorted by line: 6, 7, 8)
    ({6: "ignore"}, True, ["GS603", "GS302", "GS204"]),  # no codes: suppresses nothing
    ({6: "ignore[GS9999]"}, True, ["GS603", "GS302", "GS204"]),
])
def test_inline_suppressions(comments: dict[int, str], strict: bool, expected: list[str], tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(_suppressed(comments))
    _, out, _ = lint(tmp_path / "w.yaml", "-f", "json", *(["--strict"] if strict else []))
    assert _codes(out) == expected


def test_a_suppression_inside_text_is_text(tmp_path: Path) -> None:
    # `#` inside a quoted value is part of the text, not a comment: it suppresses nothing.
    text = WARNINGS.replace("    units: 3\n", '    units: 3\n    activation: "rellu  # graphspec: ignore[GS115]"\n')
    (tmp_path / "w.yaml").write_text(text)
    _, out, _ = lint(tmp_path / "w.yaml", "-f", "json")
    assert _codes(out) == ["GS115"], out
    # ... while a real comment after the value still counts.
    (tmp_path / "w.yaml").write_text(text.replace('activation: "rellu  # graphspec: ignore[GS115]"',
                                                  'activation: "rellu # b"  # graphspec: ignore[GS115]'))
    _, out, _ = lint(tmp_path / "w.yaml", "-f", "json")
    assert "GS115" not in _codes(out), out


def test_an_unused_suppression_is_located_at_its_comment_and_fails_strict(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(_suppressed({6: "ignore[GS110]", 7: "ignore[GS302]", 8: "ignore[GS204]"}))
    code, out, _ = lint(tmp_path / "w.yaml", "-q")
    assert code == 0 and out.endswith("0 errors, 0 warnings in 1 file\n")
    code, out, _ = lint(tmp_path / "w.yaml", "-q", "--strict")
    assert code == 1
    assert out.splitlines()[0] == f"{tmp_path / 'w.yaml'}:6:23: error[GS603]: unused suppression: no GS110 here"


def test_suppressions_need_a_file_that_went_through_every_stage(tmp_path: Path) -> None:
    """With an error early on, what shapes would find is unknown: no suppression is called unused."""
    broken = _suppressed({7: "ignore[GS302]"}).replace("units: 3", "units: three")
    (tmp_path / "w.yaml").write_text(broken)
    _, out, _ = lint(tmp_path / "w.yaml", "-f", "json", "--strict")
    assert _codes(out) == ["GS112"]


def test_suppressions_in_blocks_cover_every_instance(tmp_path: Path) -> None:
    spec = """\
graphspec: 1
name: b
inputs: {x: {shape: [8, 8, 3]}}
blocks:
  feat:
    inputs: i
    nodes:
      app: {type: Undeclared, units: 4, inputs: i}  # graphspec: ignore[GS302]
nodes:
  one: {block: feat, inputs: x}
  two: {block: feat, inputs: x}
models:
  m: {inputs: x, outputs: [one, two]}
"""
    (tmp_path / "b.yaml").write_text(spec)
    _, out, _ = lint(tmp_path / "b.yaml", "-f", "json", "--strict")
    assert "GS302" not in _codes(out) and "GS603" not in _codes(out)


def test_internal_errors_are_never_suppressed() -> None:
    from graphspec.diagnostics import Diagnostic, Location, Severity

    crash = Diagnostic("GS900", Severity.ERROR, "boom", Location("f.yaml", 1, 1))
    config = lint_policy.parse_config({"ignore": ["ALL"]}, Path("pyproject.toml"))
    assert lint_policy.apply([crash], "f.yaml", config, None) == [crash]


def test_a_suppression_in_a_base_covers_its_node_in_every_variant(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(_suppressed({7: "ignore[GS302]", 6: "ignore[GS110]"}))
    (tmp_path / "wide.yaml").write_text("extends: base.yaml\nname: wide\nnodes:\n  unused: {units: 30}"
                                        "  # graphspec: ignore[GS204]\n")
    _, out, _ = lint(tmp_path / "wide.yaml", "-f", "json", "--strict")
    # GS302 is located in the base and suppressed there; the base's unused GS110 is not this file's to report.
    assert _codes(out) == []
    _, out, _ = lint(tmp_path / "wide.yaml", "-f", "json")
    assert _codes(out) == []
