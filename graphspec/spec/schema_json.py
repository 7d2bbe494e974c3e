"""The JSON Schema for editors accepts every spec lint accepts, not only what pydantic validates.

Pydantic's schema describes a spec after vars and blocks are expanded and bases
merged. A file as written may also hold:

* a variable wherever a value goes, outside `vars` and `blocks` (``$name``,
  ``${expr}``, or text with ``${...}`` inside, docs/blocks.md): expansion replaces
  it before anything is validated;
* in a variant (`extends`, docs/variants.md), the merge markers: `KEY: _delete_`
  as any value, and `_replace_: true` in any mapping; the merge removes them.

:func:`for_editors` rewrites pydantic's schema so, and no more: a value that is
neither of the right type, nor a variable, nor a marker is still refused.
"""

from __future__ import annotations

from typing import Any

# What the JSON Schema accepts as a variable reference: `$name` alone, or any text
# with a `${...}` in it (graphspec.spec.expressions reads them).
VARIABLE_PATTERN = r"^\$[A-Za-z_][A-Za-z0-9_\-]*$|\$\{[^{}]*\}"
REPLACE, DELETE = "_replace_", "_delete_"  # graphspec.spec.extends
_VARIABLE, _DELETE = "Variable", "Delete"
_ANNOTATIONS = ("title", "description", "default", "examples")
_CONSTRAINTS = ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "not", "pattern", "format",
                "maxLength", "minLength")
_DEFS = {
    _VARIABLE: {
        "type": "string",
        "pattern": VARIABLE_PATTERN,
        "description": "A variable: `$name`, `${expression}`, or text with `${...}` in it (see docs/blocks.md); "
        "replaced by its value before the spec is checked.",
    },
    _DELETE: {
        "const": DELETE,
        "description": "In a variant (`extends`): remove this key of the base (see docs/variants.md).",
    },
}
_REPLACE_PROPERTY = {
    "const": True,
    "description": "In a variant (`extends`): this mapping replaces the base's instead of merging into it "
    "(see docs/variants.md).",
}


def for_editors(schema: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's schema of a spec, also accepting variables and merge markers where lint does."""
    defs = {name: _rewrite(sub, wrap=False) for name, sub in schema.get("$defs", {}).items()}
    out: dict[str, Any] = _rewrite(schema, wrap=False)
    out["$defs"] = {**defs, **_DEFS}
    return out


def for_value(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` for a value position: also a variable or `_delete_` (an unconstrained schema stays so)."""
    return _accept_variable(dict(schema))


def _rewrite(schema: Any, *, wrap: bool) -> Any:
    """`schema` with every value position (properties, items, ...) also accepting a variable or
    `_delete_`, and every mapping `_replace_: true`."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {k: _rewrite(v, wrap=True) for k, v in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _rewrite(out[key], wrap=True)
    if isinstance(out.get("prefixItems"), list):
        out["prefixItems"] = [_rewrite(v, wrap=True) for v in out["prefixItems"]]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_rewrite(v, wrap=False) for v in out[key]]
    if out.get("type") == "object" and out.get("additionalProperties") is not True:
        _accept_replace(out)
    return _accept_variable(out) if wrap else out


def _accept_replace(out: dict[str, Any]) -> None:
    """A closed mapping (fields, or names matching a pattern) may also hold `_replace_: true`."""
    if isinstance(out.get("patternProperties"), dict):  # `_replace_` matches the name pattern: keep it out
        out["patternProperties"] = {f"^(?!{REPLACE}$){p[1:]}" if p.startswith("^") else p: v
                                    for p, v in out["patternProperties"].items()}
    if "properties" in out or "patternProperties" in out:
        out["properties"] = {**out.get("properties", {}), REPLACE: _REPLACE_PROPERTY}


def _accept_variable(out: dict[str, Any]) -> dict[str, Any]:
    if not any(k in out for k in _CONSTRAINTS) or (
            out.get("type") == "string" and not any(k in out for k in _CONSTRAINTS if k != "type")):
        return out  # accepts any text already
    extra = [{"$ref": f"#/$defs/{_VARIABLE}"}, {"$ref": f"#/$defs/{_DELETE}"}]
    if set(out) <= {"anyOf", *_ANNOTATIONS}:
        return {**out, "anyOf": [*out["anyOf"], *extra]}
    notes = {k: out.pop(k) for k in _ANNOTATIONS if k in out}
    return {**notes, "anyOf": [out, *extra]}
