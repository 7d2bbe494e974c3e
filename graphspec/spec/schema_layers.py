"""The JSON Schema of a node, generated from the layer catalog: what an editor (yaml-language-server) and
check-jsonschema refuse before lint runs.

`type` is one of the catalog's layers (or a plugin's, where the config lists plugins); a layer's arguments
are a closed set, each typed from the rule lint applies to it (:func:`graphspec.spec.layers.checker_for`):
`units: "8"`, `type: Densse`, `unit: 8`, `units: -3` and `activation: rellu` are refused. Every typed value
also accepts a variable and `_delete_` (:mod:`graphspec.spec.schema_json`). The schema is never stricter than
lint: a rule it cannot express leaves the value open (`tests/test_schema_clients.py` checks both directions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphspec.spec import catalog, layers
from graphspec.spec.schema_json import REPLACE, for_value

_POSITIVE: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": layers.MAX_DIM}
_NULL: dict[str, Any] = {"type": "null"}


def _named(table: catalog.Table) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{_def_name(table)}"}


def _def_name(table: catalog.Table) -> str:
    return "Keras" + table.kind.title().replace(" ", "")


def named_defs() -> dict[str, Any]:
    """The $defs the layer arguments refer to: a name from one of the catalog's tables (activations,
    initializers, ...), `{type: Class, ...}`, or null."""
    out = {}
    for table in _TABLES.values():
        names = sorted(set(table.classes) | set(table.aliases))
        out[_def_name(table)] = {"anyOf": [{"enum": names}, {"type": "object", "required": ["type"]}, _NULL],
                                 "description": f"A Keras {table.kind}: its name, or `{{type: Class, ...}}`."}
    return out


_TABLES = {layers.activation: catalog.ACTIVATIONS, layers.initializer: catalog.INITIALIZERS,
           layers.regularizer: catalog.REGULARIZERS, layers.constraint: catalog.CONSTRAINTS}
_BY_CHECKER: dict[Callable[..., Any], dict[str, Any]] = {
    layers.positive_int: _POSITIVE,
    layers.optional_positive_int: {"anyOf": [_POSITIVE, _NULL]},
    layers.non_negative_int: {"type": "integer", "minimum": 0},
    layers.any_int: {"type": "integer"},
    layers.int_tuple: {"anyOf": [_POSITIVE, {"type": "array", "items": _POSITIVE, "minItems": 1}]},
    layers.optional_int_tuple: {"anyOf": [_POSITIVE, {"type": "array", "items": _POSITIVE, "minItems": 1}, _NULL]},
    layers.int_list: {"type": "array", "items": {"type": "integer"}},
    layers.rate: {"type": "number", "minimum": 0, "maximum": 1},
    layers.finite_number: {"type": "number"},
    layers.optional_number: {"type": ["number", "null"]},
    layers.boolean: {"type": "boolean"},
    layers.string: {"type": "string"},
    layers.dtype: {"anyOf": [{"enum": sorted(layers.DTYPES)}, _NULL]},
    layers.axis: {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}, "minItems": 1}]},
}


def _typed(checker: Callable[..., Any]) -> dict[str, Any]:
    """The schema of the values `checker` accepts, or {} (anything) where it cannot be said exactly."""
    if checker in _TABLES:
        return _named(_TABLES[checker])
    if checker in _BY_CHECKER:
        return dict(_BY_CHECKER[checker])
    if checker.__qualname__ == "one_of.<locals>.check" and checker.__closure__:
        choices = checker.__closure__[0].cell_contents
        return {"enum": list(choices)}
    return {}


def node_json_schema(base: dict[str, Any], plugin_layers: list[str] | None = None) -> dict[str, Any]:
    """A node: the generic fields, `type` from the catalog (and `plugin_layers`), and per layer type its
    arguments, typed and closed."""
    # (`name` too: a layer argument graphspec sets from the node, which a spec may give, e.g. in a block)
    generic = {name: True for name in base.get("properties", {})} | {REPLACE: True, "name": True}
    variants = []
    for name, entry in sorted(catalog.LAYERS.items()):
        props: dict[str, Any] = dict(generic)
        props["type"] = {"const": name, "description": entry.get("doc", "")}
        for arg, p in layers.layer_params(name).items():
            prop = for_value(_typed(layers.checker_for(name, arg, p)))
            if "default" in p and not p.get("opaque_default"):
                prop["default"] = p["default"]
            if meaning := catalog.arg_doc(name, arg):  # what Keras's docstring says it is: the editor shows it
                prop["description"] = meaning
            props[arg] = prop
        variants.append({
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": props, "additionalProperties": False},
        })
    schema = dict(base)
    properties = dict(schema.get("properties", {}))
    known = sorted(set(catalog.LAYERS) | set(plugin_layers or ()))
    properties["type"] = {**for_value({"anyOf": [{"enum": known}, _NULL]}),
                          "description": "A Keras layer class (`Dense`, `Conv2D`, ...) or a plugin's layer."}
    schema["properties"] = properties
    schema["allOf"] = variants
    return schema
