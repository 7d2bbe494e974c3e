"""`graphspec lint`: formats, exit codes, path expansion, --strict, and no TensorFlow.

None of these tests builds a model; they run where TensorFlow is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import sarif_check
from typer.testing import CliRunner

from graphspec.render import lint as render_lint
from graphspec.cli.app import app
from graphspec.cli.lint import PathError, expand_paths
from graphspec.diagnostics import CODES, Diagnostic, Location, Severity
from graphspec.render.lint import FileReport, ModelReport

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
CORPUS = ROOT / "tests" / "corpus"
PLUGIN = SPECS / "plugins" / "custom_dense.py"
GOOD = SPECS / "mnist_mlp.yaml"

runner = CliRunner()


def lint(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["lint", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """A folder with a clean spec, a spec with a warning, a broken one, and files lint must skip."""
    (tmp_path / "good.yaml").write_text(GOOD.read_text())
    sub = tmp_path / "nested" / "deeper"
    sub.mkdir(parents=True)
    (sub / "warn.yml").write_text((CORPUS / "unused_node.yaml").read_text())
    (tmp_path / "nested" / "bad.yaml").write_text((CORPUS / "unknown_layer_type.yaml").read_text())
    (tmp_path / "notes.txt").write_text("not a spec")
    hidden = tmp_path / ".hidden"
    hidden.mkdir()
    (hidden / "ignored.yaml").write_text("graphspec: [")
    return tmp_path


# -- exit codes ---------------------------------------------------------------------


def test_clean_spec_exits_0_with_model_statistics() -> None:
    code, out = lint(GOOD)
    assert code == 0
    assert f"{GOOD}: model mnist_model: 55,050 params (215 KiB of float32 weights)" in out
    assert out.rstrip().endswith("0 errors, 0 warnings in 1 file")


def test_problems_exit_1_and_show_source_line_caret_and_hint() -> None:
    code, out = lint(CORPUS / "unknown_layer_type.yaml")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{CORPUS / 'unknown_layer_type.yaml'}:8:13: error[GS110]: unknown layer type 'Desne'"
    assert lines[1] == "   8 |   d: {type: Desne, units: 4}"
    assert lines[2] == "     |             ^~~~~"
    assert lines[3] == "  hint: did you mean `Dense`?"
    assert lines[-1] == "1 error, 0 warnings in 1 file"


def test_warnings_exit_0_unless_strict() -> None:
    spec = CORPUS / "unused_node.yaml"
    code, out = lint(spec)
    assert code == 0 and "warning[GS204]" in out and "0 errors, 1 warning" in out
    code, out = lint(spec, "--strict")
    assert code == 1 and "error[GS204]" in out and "1 error, 0 warnings" in out


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lint", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_glob_matching_nothing_is_a_usage_error(tmp_path: Path) -> None:
    assert runner.invoke(app, ["lint", str(tmp_path / "*.yaml")]).exit_code == 2


def test_folder_without_specs_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    assert runner.invoke(app, ["lint", str(tmp_path)]).exit_code == 2


def test_bad_format_and_no_paths_are_usage_errors() -> None:
    assert runner.invoke(app, ["lint", str(GOOD), "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["lint"]).exit_code == 2


def test_missing_plugin_is_a_usage_error() -> None:
    result = runner.invoke(app, ["lint", str(GOOD), "--plugin", "no/such/plugin.py"])
    assert result.exit_code == 2
    assert "not found" in result.stderr


def test_internal_error_is_gs900_for_that_file_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphspec import compiler

    real = compiler.check

    def flaky(path, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith("resnet.yaml"):
            raise ZeroDivisionError("boom")
        return real(path, **kwargs)

    monkeypatch.setattr(compiler, "check", flaky)
    code, out = lint(SPECS / "resnet.yaml", GOOD)
    assert code == 3  # its own code: a bug in graphspec, not a usage error (2)
    assert "error[GS900]: internal error while checking this file: ZeroDivisionError: boom" in out
    assert "Traceback" not in out
    assert "model mnist_model: 55,050 params" in out  # the other file was still checked


# -- paths ----------------------------------------------------------------------------


def test_folders_are_searched_recursively(specs: Path) -> None:
    files = expand_paths([str(specs)])
    names = [Path(f).relative_to(specs).as_posix() for f in files]
    assert names == ["good.yaml", "nested/bad.yaml", "nested/deeper/warn.yml"]


def test_globs_files_and_repeats(specs: Path) -> None:
    files = expand_paths([str(specs / "**" / "*.y*ml"), str(specs / "good.yaml")])
    names = sorted(Path(f).relative_to(specs).as_posix() for f in files)
    assert names == ["good.yaml", "nested/bad.yaml", "nested/deeper/warn.yml"]
    assert expand_paths([str(specs / "notes.txt")]) == [os.path.normpath(specs / "notes.txt")]
    with pytest.raises(PathError):
        expand_paths([str(specs / "missing" / "*.yaml")])


def test_symbolic_links_out_of_the_tree_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password: hunter2\n")
    tree = tmp_path / "repo" / "specs"
    tree.mkdir(parents=True)
    (tree / "good.yaml").write_text(GOOD.read_text())
    (tree / "leak.yaml").symlink_to(secret)
    (tree / "alias.yaml").symlink_to(tree / "good.yaml")  # inside the tree: fine
    monkeypatch.chdir(tmp_path / "repo")
    for args in (["specs"], ["specs/*.yaml"], ["specs/leak.yaml", "specs/alias.yaml"]):
        code, out = lint(*args, "-f", "json")
        doc = json.loads(out)
        leak = [d for d in doc["diagnostics"] if d["file"].endswith("leak.yaml")]
        assert code == 1 and [d["code"] for d in leak] == ["GS001"], args
        assert "symbolic link to a file outside" in leak[0]["message"]
        assert "hunter2" not in out
        assert not [d for d in doc["diagnostics"] if d["file"].endswith("alias.yaml")]


def test_folder_summary_counts_files(specs: Path) -> None:
    code, out = lint(specs)
    assert code == 1
    assert out.rstrip().endswith("1 error, 1 warning in 3 files")


def test_stdin() -> None:
    result = runner.invoke(app, ["lint", "-"], input=GOOD.read_text())
    assert result.exit_code == 0
    assert "<stdin>: model mnist_model: 55,050 params" in result.stdout
    result = runner.invoke(app, ["lint", "-"], input="graphspec: 1\nname: x\n")
    assert result.exit_code == 1 and "<stdin>:1:1: error[GS100]" in result.stdout


def test_examples_are_clean_with_their_plugin(example_data: Path) -> None:
    code, out = lint(SPECS, "--plugin", PLUGIN)
    assert code == 0, out
    assert " 0 errors" in out or out.splitlines()[-1].startswith("0 errors")


# -- formats -------------------------------------------------------------------------


def test_json_is_one_document_with_every_diagnostic(specs: Path) -> None:
    code, out = lint(specs, "--format", "json")
    assert code == 1
    doc = json.loads(out)  # the whole output is one JSON document
    assert doc["summary"] == {"files": 3, "errors": 1, "warnings": 1, "strict": False, "exit_code": 1, "skipped": 0}
    assert [d["code"] for d in doc["diagnostics"]] == ["GS110", "GS204"]
    first = doc["diagnostics"][0]
    assert first["line"] == 8 and first["col"] == 13 and first["severity"] == "error"
    assert first["hint"] == "did you mean `Dense`?"
    good = next(f for f in doc["files"] if f["file"].endswith("good.yaml"))
    assert good["models"] == [{
        "name": "mnist_model", "params": 55050, "trainable_params": 55050, "non_trainable_params": 0,
        "weight_bytes": 220200, "macs": 54912, "output_shapes": {"predictions": [10]}, "unchecked_nodes": [],
        "submodel": False,
    }]


def test_json_strict_makes_warnings_errors() -> None:
    code, out = lint(CORPUS / "unused_node.yaml", "--format", "json", "--strict")
    doc = json.loads(out)
    assert code == 1 and doc["summary"]["strict"] is True
    assert doc["diagnostics"][0]["severity"] == "error"


def test_github_annotations() -> None:
    code, out = lint(CORPUS / "unknown_layer_type.yaml", CORPUS / "unused_node.yaml", "-f", "github", "-q")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("::error file=")
    assert ",line=8,col=13,endLine=8,endColumn=18,title=graphspec GS110::GS110: unknown layer type 'Desne'" \
        in lines[0]
    assert "%0Ahint: did you mean `Dense`?" in lines[0]
    assert lines[1].startswith("::warning file=") and "GS204" in lines[1]
    assert lines[-1] == "1 error, 1 warning in 2 files"


def test_github_escaping() -> None:
    d = Diagnostic("GS101", Severity.ERROR, "50% of a,b:\nc", Location("a,b:c.yaml", 1, 2))
    line = render_lint.github_line(d)
    assert line == "::error file=a%2Cb%3Ac.yaml,line=1,col=2,title=graphspec GS101::GS101: 50%25 of a,b:%0Ac"


def _validate_sarif(doc: dict) -> None:
    """The official SARIF 2.1.0 schema, and the parts of it that GitHub code scanning requires."""
    sarif_check.validate(doc)
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(doc["runs"], list) and len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "graphspec" and isinstance(driver["version"], str)
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(CODES)
    for r in rules:
        assert r["shortDescription"]["text"]
        assert r["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    for res in run["results"]:
        assert res["ruleId"] in CODES
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in {"error", "warning", "note", "none"}
        assert res["message"]["text"]
        (loc,) = res["locations"]
        phys = loc["physicalLocation"]
        assert phys["artifactLocation"]["uri"]
        if "region" in phys:
            region = phys["region"]
            assert region["startLine"] >= 1 and region["startColumn"] >= 1
            assert region.get("endLine", region["startLine"]) >= region["startLine"]
    assert run["invocations"][0]["executionSuccessful"] in {True, False}


def test_sarif(specs: Path) -> None:
    code, out = lint(specs, "--format", "sarif")
    assert code == 1
    doc = json.loads(out)
    _validate_sarif(doc)
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["GS110", "GS204"]
    assert [r["level"] for r in results] == ["error", "warning"]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 8, "startColumn": 13, "endLine": 8, "endColumn": 18}
    rule = doc["runs"][0]["tool"]["driver"]["rules"][list(CODES).index("GS204")]
    assert rule["defaultConfiguration"]["level"] == "warning"


def test_sarif_relative_and_absolute_paths() -> None:
    reports = [
        FileReport("specs/a b.yaml", [Diagnostic("GS110", Severity.ERROR, "m", Location("specs/a b.yaml", 2, 3))]),
        FileReport("/abs/x.yaml", [Diagnostic("GS001", Severity.ERROR, "m", Location("/abs/x.yaml"))]),
    ]
    doc = render_lint.sarif_doc(reports, version="1")
    _validate_sarif(doc)
    first, second = (r["locations"][0]["physicalLocation"] for r in doc["runs"][0]["results"])
    assert first["artifactLocation"] == {"uri": "specs/a%20b.yaml", "uriBaseId": "%SRCROOT%"}
    assert second["artifactLocation"] == {"uri": "file:///abs/x.yaml"}
    assert second["region"] == {"startLine": 1, "startColumn": 1}  # a whole-file diagnostic: its first line


def test_every_format_renders_every_corpus_file() -> None:
    from graphspec.cli.lint import lint_file, render

    reports = [lint_file(str(p)) for p in sorted(CORPUS.glob("*.yaml"))]
    for fmt in ("text", "json", "github", "sarif"):
        text = render(reports, fmt)
        if fmt in {"json", "sarif"}:
            doc = json.loads(text)
            if fmt == "sarif":
                _validate_sarif(doc)


# -- pure rendering helpers -------------------------------------------------------------


def test_human_bytes() -> None:
    assert render_lint.human_bytes(516) == "516 B"
    assert render_lint.human_bytes(1548) == "1.51 KiB"
    assert render_lint.human_bytes(74688) == "72.9 KiB"
    assert render_lint.human_bytes(220200) == "215 KiB"
    assert render_lint.human_bytes(5568388) == "5.31 MiB"
    assert render_lint.human_bytes(4 * 10**12) == "3.64 TiB"


def test_model_line_unknown_params() -> None:
    m = ModelReport("vgg", None, None, None, {}, ("vgg19",))
    assert render_lint.model_line("s.yaml", m) == "s.yaml: model vgg: parameters not known statically " \
        "(no static shape or size for `vgg19`)"


def test_exit_code_and_strict() -> None:
    warn = Diagnostic("GS204", Severity.WARNING, "w", Location("f"))
    crash = Diagnostic("GS900", Severity.ERROR, "c", Location("g"))
    assert render_lint.exit_code([FileReport("f", [warn])]) == 0
    assert render_lint.exit_code(render_lint.strict([FileReport("f", [warn])])) == 1
    assert render_lint.exit_code([FileReport("f", [warn]), FileReport("g", [crash])]) == 3
    assert render_lint.warning_codes() >= {"GS204", "GS302", "GS401"}


# -- no TensorFlow --------------------------------------------------------------------

_NO_TF = """
import sys
from graphspec.cli.app import app
try:
    app(args=sys.argv[1:], prog_name="graphspec")
    code = 0
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras", "jax", "torch"})
assert not heavy, f"imported {heavy[:5]}"
sys.exit(code)
"""


@pytest.mark.parametrize("args,expected", [
    (["lint", "specs/", "--plugin", "specs/plugins/custom_dense.py"], 0),
    (["lint", "specs/", "tests/corpus/", "--plugin", "specs/plugins/custom_dense.py", "-f", "sarif"], 1),
    (["lint", "--help"], 0),
    (["--help"], 0),
    (["schema"], 0),
])
def test_lint_never_imports_tensorflow(args: list[str], expected: int) -> None:
    env = dict(os.environ, GRAPHSPEC_TF_LOGS="0")
    proc = subprocess.run([sys.executable, "-c", _NO_TF, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == expected, proc.stderr[-2000:] + proc.stdout[-2000:]
