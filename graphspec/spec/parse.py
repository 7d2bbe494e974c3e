"""Source + schema -> a typed :class:`~graphspec.spec.schema.Spec`, or located diagnostics."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Tag, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from graphspec.spec import calls, layers
from graphspec.spec import schema
from graphspec.spec.catalog import did_you_mean
from graphspec.diagnostics import Diagnostic, Diagnostics, PathKey, Severity
from graphspec.spec.source import Source

_CODE_BY_TYPE = {
    "missing": "GS100",
    "extra_forbidden": "GS101",
    "literal_error": "GS103",
    "string_pattern_mismatch": "GS103",
    "string_too_long": "GS103",
    "greater_than_equal": "GS103",
    "greater_than": "GS103",
    "less_than_equal": "GS500",  # only dimensions have an upper bound: absurd sizes are budget errors
    "less_than": "GS103",
}


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[PathKey, bool]:
    """Map a pydantic error location onto a path in the data (dropping union tags)."""
    path: list[str | int] = []
    cur = data
    reached = True
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
        elif isinstance(part, str) and isinstance(cur, (dict, list)):
            continue  # a union member's tag (`InputSpec`, `list[...]`) or a missing key
        else:
            reached = False
            break
    return tuple(path), reached


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at `loc` (for did-you-mean on unknown keys).

    In a union the location names the member that was tried (`('data', 'source',
    'synthetic', 'name')`): the fields are that member's, not the first member's.
    """
    current: dict[str, type[BaseModel]] = {model.__name__: model}
    for part in loc[:-1]:
        if isinstance(part, str) and part in current and len(current) > 1:
            current = {part: current[part]}  # the union member the error is about
            continue
        for member in current.values():
            fields = member.model_fields
            if isinstance(part, str) and part in fields:
                current = _models_in(fields[part].annotation) or current
                break
    names: set[str] = set()
    for member in current.values():
        names.update(member.model_fields)
    return sorted(names)


def _models_in(annotation: Any) -> dict[str, type[BaseModel]]:
    """The models an annotation may hold, by the tag pydantic names them with in error locations."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {annotation.__name__: annotation}
    found: dict[str, type[BaseModel]] = {}
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        tags = [m.tag for m in meta if isinstance(m, Tag)]
        members = _models_in(inner)
        if tags and len(members) == 1:
            return {tags[0]: next(iter(members.values()))}
        return members
    for arg in typing.get_args(annotation):
        found.update(_models_in(arg))
    return found


def _type_message(err: ErrorDetails) -> str:
    msg = str(err["msg"])
    inp = err.get("input")
    if err["type"] == "missing":
        return f"missing required field `{err['loc'][-1]}`"
    if err["type"] == "extra_forbidden":
        return f"unknown field `{err['loc'][-1]}`"
    if err["type"] == "less_than_equal" and isinstance(inp, int):
        return f"{inp:,} is larger than the largest dimension Keras can hold ({err.get('ctx', {}).get('le', 0):,})"
    shown = repr(inp) if len(repr(inp)) < 60 else type(inp).__name__
    if err["type"] == "value_error":  # graphspec's own validators: their message says what is wrong
        msg = msg.removeprefix("Value error, ")
        if shown in msg:
            return f"{msg[0].lower()}{msg[1:]}"
    return f"{msg[0].lower()}{msg[1:]}; got {shown}"


def _literal_hint(err: ErrorDetails) -> str | None:
    """Did-you-mean for a value that must be one of a few strings (`dtype: float33`)."""
    import re

    inp = err.get("input")
    if err["type"] != "literal_error" or not isinstance(inp, str):
        return None
    return did_you_mean(inp, re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", ""))))


def schema_diagnostics(src: Source, exc: ValidationError, model: type[BaseModel] = schema.Spec) -> list[Diagnostic]:
    """Turn pydantic's errors into located diagnostics, one per place."""
    by_path: dict[tuple[PathKey, str], Diagnostic] = {}
    errors = exc.errors(include_url=False)
    paths = [_data_path(src.data, tuple(e["loc"]))[0] for e in errors]
    # In a union, the branch that matched the data's shape goes deeper; a type
    # error from another branch at a shallower place is noise.
    deeper = [any(len(q) > len(p) and q[:len(p)] == p for q in paths) for p in paths]
    errors = [e for e, d in zip(errors, deeper) if not (d and _CODE_BY_TYPE.get(e["type"], "GS102") == "GS102")]
    # A misspelt field is reported once, as unknown with a did-you-mean, not also as missing.
    suggested: set[tuple[tuple[int | str, ...], str]] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = tuple(err["loc"])
            suggested.update((loc[:-1], f) for f in _fields_at(model, loc) if did_you_mean(str(loc[-1]), [f]))
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "missing" and (loc[:-1], loc[-1]) in suggested:
            continue
        path, _ = _data_path(src.data, loc)
        code = _CODE_BY_TYPE.get(err["type"], "GS102")
        hint = None
        if err["type"] == "extra_forbidden":
            fields = _fields_at(model, loc)
            hint = did_you_mean(str(loc[-1]), fields)
            if hint is None and 0 < len(fields) <= 12:
                hint = "the fields here are " + ", ".join(f"`{f}`" for f in fields)
            at_key = True
        else:
            hint = _literal_hint(err)
            at_key = err["type"] == "missing"
        if path == ("graphspec",) and code != "GS100":
            code = "GS104"
        if err["type"] == "missing":
            where = path
        else:
            where = path
        key = (where, code)
        message = _type_message(err)
        if key in by_path:
            old = by_path[key]
            if message not in old.message and len(old.notes) < 4:
                by_path[key] = Diagnostic(old.code, old.severity, old.message, old.location, old.hint,
                                          old.notes + (message,))
            continue
        by_path[key] = Diagnostic(code, Severity.ERROR, message, src.location(where, key=at_key), hint)
    return list(by_path.values())


def _problem(src: Source, path: PathKey, at_key: bool, problem: layers.Problem) -> Diagnostic:
    code, message, hint = problem
    return Diagnostic(code, Severity.ERROR, message, src.location(path, key=at_key), hint)


_KINDS = ("type", "share", "model", "application", "op")


def check_nodes(src: Source, nodes: dict[str, schema.NodeSpec],
                plugin_layers: dict[str, dict[str, Any]]) -> list[Diagnostic]:
    """Check every node's kind, layer type and arguments."""
    out: list[Diagnostic] = []
    plugin_names = frozenset(plugin_layers)
    for name, node in nodes.items():
        path: PathKey = ("nodes", name)
        kinds = [k for k in _KINDS if getattr(node, k) is not None]
        if len(kinds) != 1:
            msg = (f"node `{name}` needs one of `type`, `share`, `model`, `application` or `op`" if not kinds
                   else f"node `{name}` has both {' and '.join(f'`{k}`' for k in kinds)}: choose one")
            out.append(Diagnostic("GS105", Severity.ERROR, msg, src.location(path, key=True)))
            continue
        args = node.args
        if node.type is not None:
            problem = layers.check_layer_type(node.type, plugin_names)
            if problem:
                out.append(_problem(src, path + ("type",), False, problem))
                continue
            for p, at_key, prob in layers.check_args(node.type, args, path, plugins=plugin_layers):
                out.append(_problem(src, p, at_key, prob))
            out.extend(_check_inputs(src, node, "type", node.type, path))
        elif node.application is not None:
            for p, at_key, prob in layers.check_application(node.application, args, path):
                out.append(_problem(src, p, at_key, prob))
        elif node.op is not None:
            op_problems = layers.check_op(node.op, args, path)
            for p, at_key, prob in op_problems:
                out.append(_problem(src, p, at_key, prob))
            if not op_problems:
                out.extend(_check_inputs(src, node, "op", node.op, path, given=list(args)))
        elif node.share is not None:
            shared = _shared_type(nodes, node.share)
            if shared is not None:
                out.extend(_check_inputs(src, node, "type", shared, path))
        if node.type is None and node.application is None and node.op is None:
            for key in args:
                out.append(Diagnostic(
                    "GS111", Severity.ERROR,
                    f"`{kinds[0]}` nodes take no layer arguments; `{key}` belongs on the node "
                    f"that defines the layer",
                    src.location(path + (key,), key=True)))
        owner = nodes.get(node.share) if node.share is not None else None
        layer_type = node.type if node.type is not None else (owner.type if owner is not None else None)
        for p, at_key, prob in calls.check_call(kinds[0], layer_type, node.call, path, plugin_layers):
            out.append(_problem(src, p, at_key, prob))
        if node.fresh and node.model is None:
            out.append(Diagnostic("GS103", Severity.ERROR, "`fresh` only applies to `model` nodes",
                                  src.location(path + ("fresh",), key=True)))
    return out


def _check_inputs(src: Source, node: schema.NodeSpec, kind: str, name: str, path: PathKey,
                  given: list[str] | None = None) -> list[Diagnostic]:
    """The names of an `inputs:` mapping, passed to the layer's (or op's) call (`call:` is checked apart)."""
    raw = node.inputs
    if not isinstance(raw, dict):
        return []
    found = calls.check_inputs(kind, name, list(raw), path, [*node.call, *(given or [])])
    return [_problem(src, p, at_key, prob) for p, at_key, prob in found]


def _shared_type(nodes: dict[str, schema.NodeSpec], name: str) -> str | None:
    """The layer type a `share:` node calls (through chains of shares)."""
    for _ in range(len(nodes)):
        target = nodes.get(name)
        if target is None:
            return None
        if target.share is None:
            return target.type
        name = target.share
    return None


def parse(src: Source, *, plugin_layers: dict[str, dict[str, Any]] | None = None) -> tuple[schema.Spec | None, Diagnostics]:
    """Validate loaded data against the schema and the layer catalog."""
    diags = Diagnostics()
    if not isinstance(src.data, dict):
        kind = "empty" if src.data is None else layers._type_name(src.data)
        diags.add(Diagnostic("GS006", Severity.ERROR, f"a spec must be a mapping, but the document is {kind}",
                             src.location(()), "start with `graphspec: 1`, `name:` and `nodes:`"))
        return None, diags
    version = src.data.get("graphspec")
    if "graphspec" in src.data and (type(version) is not int or version != schema.FORMAT_VERSION):
        shown = json.dumps(version) if isinstance(version, (bool, float)) or version is None else repr(version)
        diags.add(Diagnostic("GS104", Severity.ERROR,
                             f"unsupported format version {shown}; this graphspec reads version "
                             f"{schema.FORMAT_VERSION}", src.location(("graphspec",)),
                             f"write `graphspec: {schema.FORMAT_VERSION}` (an integer)"
                             if isinstance(version, (bool, float)) else None))
        return None, diags
    try:
        spec = schema.Spec.model_validate(src.data)
    except ValidationError as exc:
        diags.extend(schema_diagnostics(src, exc))
        salvaged = salvage(src.data)
        if salvaged is None:
            return None, diags
        # Report layer-level problems too, on the parts that did validate.
        valid = {k: v for k, v in salvaged.nodes.items() if v.type != BROKEN}
        diags.extend(check_nodes(src, valid, plugin_layers or {}))
        return salvaged, diags
    diags.extend(check_nodes(src, spec.nodes, plugin_layers or {}))
    return spec, diags


# The layer type of a placeholder for a node whose own schema errors were reported:
# it keeps the node's name and place in the chain, so the graph stage can still
# check everything else without repeating or inventing errors about it.
BROKEN = "<invalid node>"


def salvage(data: dict[str, Any]) -> schema.Spec | None:
    """A Spec of the parts of `data` that validate on their own, for later stages to check.

    Invalid nodes and inputs become placeholders; invalid models and other sections
    are left out. None when not even the skeleton validates.
    """
    def valid(model: Any, value: Any) -> bool:
        try:
            model.validate_python(value)
            return True
        except (ValidationError, TypeError):
            return False

    fields = schema.Spec.model_fields
    out: dict[str, Any] = {"graphspec": schema.FORMAT_VERSION, "name": "spec", "nodes": {}}
    name = data.get("name")
    if valid(TypeAdapter(schema.Name), name):
        out["name"] = name
    nodes = data.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        return None  # no graph to check
    node_adapter = TypeAdapter(schema.NodeSpec)
    for key, value in nodes.items():
        if not valid(TypeAdapter(schema.Name), key):
            continue
        if valid(node_adapter, value):
            out["nodes"][key] = value
        else:
            raw = value.get("inputs") if isinstance(value, dict) else None
            keep = raw if valid(TypeAdapter(schema.Refs), raw) else None
            out["nodes"][key] = {"type": BROKEN, **({"inputs": keep} if keep is not None else {})}
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        adapter: TypeAdapter[Any] = TypeAdapter(dict[schema.Name, schema.InputSpec | list[schema.Dim | None]])
        out["inputs"] = {k: (v if valid(adapter, {k: v}) else [1]) for k, v in inputs.items()
                         if valid(TypeAdapter(schema.Name), k)}
    models = data.get("models")
    if isinstance(models, dict):
        models_adapter: TypeAdapter[Any] = TypeAdapter(dict[schema.Name, schema.ModelSpec])
        kept = {k: v for k, v in models.items() if valid(models_adapter, {k: v})}
        out["models"] = kept or None
    for key in fields:
        if key in out or key not in data:
            continue
        trial = {**out, key: data[key]}
        if valid(TypeAdapter(schema.Spec), trial):
            out[key] = data[key]
    try:
        return schema.Spec.model_validate(out)
    except ValidationError:
        return None
