"""Files the repository ships for lint users stay in step with the code.

- graphspec.schema.json is what `graphspec schema` prints;
- every spec in specs/ points its editor at that schema;
- docs/codes.md is the table tools/gen_codes_doc.py renders from CODES;
- .pre-commit-hooks.yaml offers a `graphspec-lint` hook.
"""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import yaml
from typer.testing import CliRunner

from graphspec.cli.app import app
from graphspec.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "graphspec.schema.json"
HEADER = "# yaml-language-server: $schema="


def test_committed_json_schema_is_current() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    generated = json.loads(result.stdout)
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == generated, (
        "graphspec.schema.json is stale: run `graphspec schema -o graphspec.schema.json` and commit it")
    assert committed["$schema"].startswith("https://json-schema.org/")
    # required unless the file `extends` a base (a variant may leave them to the base)
    assert committed["if"] == {"not": {"required": ["extends"]}}
    assert {"graphspec", "name", "nodes"} <= set(committed["then"]["required"])
    assert "extends" in committed["properties"]


def test_every_spec_references_the_schema() -> None:
    specs = sorted((ROOT / "specs").rglob("*.y*ml"))
    assert specs
    for spec in specs:
        first = spec.read_text(encoding="utf-8").split("\n", 1)[0]
        assert first.startswith(HEADER), f"{spec.relative_to(ROOT)}: first line must be `{HEADER}...`"
        target = first.removeprefix(HEADER).strip()
        expected = Path(os.path.relpath(SCHEMA_FILE, spec.parent)).as_posix()
        assert target == expected, f"{spec.relative_to(ROOT)}: schema path {target!r}, expected {expected!r}"
        assert (spec.parent / target).resolve() == SCHEMA_FILE.resolve()


def test_codes_doc_matches_the_table() -> None:
    tool = runpy.run_path(str(ROOT / "tools" / "gen_codes_doc.py"))
    committed = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    assert committed == tool["render"](), "docs/codes.md is stale: run `python tools/gen_codes_doc.py`"
    for code, (title, _example) in CODES.items():
        assert f"`{code}`" in committed
        assert title.removesuffix("(warning)").strip().replace("|", "\\|") in committed


def test_codes_are_well_formed() -> None:
    for code, (title, example) in CODES.items():
        assert len(code) == 5 and code.startswith("GS") and code[2:].isdigit(), code
        assert title and isinstance(example, str)


def test_pre_commit_hook() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = [h for h in hooks if h["id"] == "graphspec-lint"]
    assert hook["entry"] == "graphspec lint --hook"
    assert hook["language"] == "python"
    import re

    assert re.search(hook["files"], "specs/model.yaml") and re.search(hook["files"], "a/b.yml")
    assert not re.search(hook["files"], "setup.py")


def test_lint_docs_exist_and_link_the_codes() -> None:
    text = (ROOT / "docs" / "lint.md").read_text(encoding="utf-8")
    assert "codes.md" in text
    for fmt in ("text", "json", "github", "sarif"):
        assert f"`{fmt}`" in text
