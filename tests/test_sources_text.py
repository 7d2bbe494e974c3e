"""The `text` source: `.txt` files per class folder, checked at open (size, encoding), fed as strings."""

from __future__ import annotations

import os

from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.cli.lint import lint_file

runner = CliRunner()

SPEC = """\
graphspec: 1
name: txt
inputs:
  doc: {{shape: [], dtype: string}}
nodes:
  vec: {{type: TextVectorization, vocabulary: [good, great, fine, bad, awful, poor], output_mode: multi_hot}}
  out: {{type: Dense, units: {units}, activation: softmax}}
models:
  m: {{outputs: out}}
compile: {{optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
data:
  source: {{kind: text, train: data{extra}}}
  batch_size: 4
train: {{epochs: 1, tensorboard: false, seed: 1}}
"""


def make_texts(root: Path) -> None:
    for label, words in (("neg", "bad awful poor"), ("pos", "good great fine")):
        (root / label).mkdir(parents=True)
        for i in range(5):
            (root / label / f"{i}.txt").write_text(f"{words} {i}\n", encoding="utf-8")


def write_spec(folder: Path, units: int = 2, extra: str = "") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(units=units, extra=extra), encoding="utf-8")
    return spec


def test_lint_counts_the_classes_of_a_text_folder(tmp_path: Path) -> None:
    make_texts(tmp_path / "data")
    assert lint_file(str(write_spec(tmp_path))).diagnostics == []
    [d] = lint_file(str(write_spec(tmp_path, units=5))).diagnostics
    assert d.code == "GS411" and "2 classes" in d.message


@pytest.mark.keras
def test_trains_on_text_files_and_refuses_a_file_that_is_not_utf8(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_texts(tmp_path / "data")
    # a file name that is not UTF-8 (Latin-1 bytes, as old archives unpack) is a file like any other
    (tmp_path / "data" / "neg" / os.fsdecode(b"\xe9t\xe9.txt")).write_text("poor awful\n", encoding="utf-8")
    spec = write_spec(tmp_path)
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code == 0, result.output
    (tmp_path / "data" / "pos" / "bad.txt").write_bytes(b"caf\xe9 latin-1")
    result = runner.invoke(app, ["train", str(spec)])
    assert result.exit_code != 0 and "GS441" in result.output and "bad.txt" in result.output
    result = runner.invoke(app, ["train", str(write_spec(tmp_path, extra=", on_error: skip"))])
    assert result.exit_code == 0, result.output
