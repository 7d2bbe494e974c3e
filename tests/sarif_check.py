"""Validate a SARIF log against the official SARIF 2.1.0 JSON Schema (committed under tests/schemas/, see its
README), with the jsonschema library: what every test that produces SARIF calls on it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).resolve().parent / "schemas" / "sarif-schema-2.1.0.json"


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(doc: Any) -> None:
    """Raise AssertionError listing every place `doc` breaks the SARIF 2.1.0 schema."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])
