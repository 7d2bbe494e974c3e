"""SARIF as its consumers read it: every log validates against the official SARIF 2.1.0 schema (jsonschema,
tests/schemas/), stdin has a declared base, the models are keyed like the results, fingerprints are stable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from graphspec.cli.app import app

from . import sarif_check
from .conftest import ROOT, SPECS

CORPUS = ROOT / "tests" / "corpus"


def sarif(*args: str, stdin: str | None = None) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["lint", "-f", "sarif", *args], input=stdin)
    assert result.exit_code in (0, 1), result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    sarif_check.validate(doc)
    return doc


def test_every_corpus_file_and_example_spec_gives_a_valid_log() -> None:
    doc = sarif(str(CORPUS), str(SPECS))
    run = doc["runs"][0]
    assert len(run["results"]) > len(list(CORPUS.glob("*.yaml")))  # every broken file says something
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert all(u.startswith("tests/corpus/") for u in uris), uris
    # The models are keyed by the same repository-root paths as the results.
    assert "specs/mnist_mlp.yaml" in run["properties"]["models"], sorted(run["properties"]["models"])
    assert all(not k.startswith(("/", "..")) for k in run["properties"]["models"])


def test_the_schema_check_can_fail() -> None:
    doc = sarif(str(CORPUS / "unknown_layer_type.yaml"))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    try:
        sarif_check.validate(doc)
    except AssertionError as exc:
        assert "level" in str(exc)
    else:
        raise AssertionError("an invalid level passed the SARIF schema")


def test_stdin_has_a_declared_base() -> None:
    text = (CORPUS / "unknown_layer_type.yaml").read_text(encoding="utf-8")
    run = sarif("-", stdin=text)["runs"][0]
    (result,) = run["results"]
    where = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert where == {"uri": "stdin", "uriBaseId": "STDIN"}
    assert "description" in run["originalUriBaseIds"]["STDIN"]


def test_fingerprints_are_stable_across_line_moves_and_distinct(tmp_path: Path) -> None:
    text = (CORPUS / "unknown_layer_type.yaml").read_text(encoding="utf-8")
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    before = sarif(str(spec))["runs"][0]["results"]
    spec.write_text("# a comment that moves every line down\n" + text)
    after = sarif(str(spec))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in before] == [r["partialFingerprints"] for r in after]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after] != [
        r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in before]
    many = sarif(str(CORPUS / "many_errors.yaml"))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["graphspec/v1"] for r in many]
    assert len(prints) > 1 and len(set(prints)) == len(prints)
