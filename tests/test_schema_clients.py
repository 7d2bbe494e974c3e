"""The committed JSON Schema (graphspec.schema.json) as editors and CI read it: jsonschema in-process and the
check-jsonschema command. It refuses the common layer mistakes, and it is never stricter than lint: a file
the schema refuses is one lint refuses too, over every example spec and every corpus file."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app

from .conftest import ROOT, SPECS

pytest.importorskip("jsonschema")
SCHEMA = ROOT / "graphspec.schema.json"
CORPUS = ROOT / "tests" / "corpus"
FILES = sorted(SPECS.rglob("*.yaml")) + sorted(CORPUS.glob("*.yaml"))

GOOD = """\
graphspec: 1
name: five
vars: {width: 8}
inputs:
  x: {shape: [4]}
nodes:
  hidden: {type: Dense, units: $width, activation: relu}
  out: {type: Dense, units: "${width * 2}"}
"""
MISTAKES = {  # the five mistakes of issue 21, each in a node of GOOD
    "units_string": ('units: $width', 'units: "8"'),
    "type_misspelt": ("type: Dense, units: $width", "type: Densse, units: $width"),
    "argument_misspelt": ("units: $width, activation", "unit: 8, activation"),
    "units_negative": ("units: $width", "units: -3"),
    "activation_misspelt": ("activation: relu", "activation: rellu"),
}


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _load(text: str) -> Any:
    """YAML 1.2, as check-jsonschema and yaml-language-server read it (ruamel.yaml), or None if it is not YAML."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, RecursionError):
        return None


def _schema_errors(text: str) -> list[str]:
    data = _load(text)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in _validator().iter_errors(data)]


def _lint_errors(paths: list[Path]) -> dict[str, int]:
    result = CliRunner().invoke(app, ["lint", "-f", "json", *map(str, paths)])
    assert result.exit_code in (0, 1), result.output[-2000:]
    return {str(ROOT / f["file"]) if not Path(f["file"]).is_absolute() else f["file"]: f["errors"]
            for f in json.loads(result.stdout)["files"]}


def test_the_committed_schema_is_the_generated_one() -> None:
    from graphspec.spec.schema import json_schema

    assert json.loads(SCHEMA.read_text(encoding="utf-8")) == json.loads(json.dumps(json_schema()))


def test_the_five_mistakes_are_refused_by_the_schema_and_by_lint(tmp_path: Path) -> None:
    assert _schema_errors(GOOD) == []
    paths = []
    for name, (old, new) in MISTAKES.items():
        assert old in GOOD, name
        text = GOOD.replace(old, new, 1)
        assert _schema_errors(text), f"the schema accepts {name}: {new}"
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(text)
    (tmp_path / "good.yaml").write_text(GOOD)
    errors = _lint_errors([tmp_path])
    assert errors.pop(str(tmp_path / "good.yaml")) == 0
    assert all(n > 0 for n in errors.values()) and len(errors) == len(MISTAKES), errors


def test_the_schema_is_never_stricter_than_lint() -> None:
    """Every example spec and corpus file: refused by the schema -> refused by lint; accepted by lint -> valid."""
    errors = _lint_errors(FILES)
    refused_by_schema = 0
    for path in FILES:
        text = path.read_text(encoding="utf-8", errors="replace")
        if _load(text) is None:
            continue  # not YAML to a YAML 1.2 reader: lint refuses it too (checked by tests/test_corpus.py)
        problems = _schema_errors(text)
        if problems:
            refused_by_schema += 1
            assert errors[str(path)] > 0, f"lint accepts {path.name}, the schema refuses it: {problems[:3]}"
    assert all(_schema_errors(p.read_text()) == [] for p in sorted(SPECS.rglob("*.yaml")))
    assert refused_by_schema >= 20  # the corpus's layer mistakes are caught in the editor too


def test_check_jsonschema_reads_the_schema(tmp_path: Path) -> None:
    pytest.importorskip("check_jsonschema")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("type: Dense, units: $width", "type: Densse, units: $width", 1))
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    run = [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA)]
    ok = subprocess.run([*run, str(good), str(SPECS / "mnist_mlp.yaml"), str(SPECS / "resnet_family" /
                                                                             "resnet34.yaml")],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = subprocess.run([*run, str(bad)], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "Densse" in refused.stdout + refused.stderr, refused.stdout
