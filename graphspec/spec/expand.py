"""Variables and reusable blocks, expanded on the loaded data before validation.

Runs right after ``--set`` overrides and before the schema: its input is a
:class:`~graphspec.spec.source.Source` that may use ``vars:``, ``blocks:``, ``${...}``
and block instances; its output is a Source of plain nodes whose position maps
point every expanded node at the lines of the block definition it came from,
with notes (``Source.origins``) naming the instance, so that any later
diagnostic about an expanded node says where and for which instance.

This module expands node bodies and block instances and maps their positions; the
``${...}`` language is :mod:`graphspec.spec.expressions`, the scopes of variables and
parameters :mod:`graphspec.spec.variables`, and block definitions :mod:`graphspec.spec.blocks`.

The format (docs/blocks.md has the long version)::

    vars:
      width: 64
    blocks:
      mlp_block:
        inputs: x                       # names the block's nodes use for what is passed in
        outputs: drop                   # default: the last node
        params: {units: null, rate: 0.1}   # null: required
        nodes:
          dense: {type: Dense, units: $units, activation: relu, inputs: x}
          drop: {type: Dropout, rate: "${rate}"}
    nodes:
      body: {block: mlp_block, repeat: 3, units: "${2 * width}", first: {rate: 0}}
      logits: {type: Dense, units: 10}   # takes `body`, the last repetition's output

* ``${expr}`` is replaced by a variable's (or, inside a block, a parameter's)
  value; ``expr`` is a name or integer arithmetic (``+ - * / // %``, parentheses).
  A string that is exactly ``${expr}`` (or ``$name``) takes the value with its
  type; inside longer text the value is interpolated. ``$$`` escapes a ``$``.
* Instance nodes are named ``<instance>_<node>`` (``<instance>_<i>_<node>`` for
  repetition ``i`` when ``repeat`` is given); the instance's output is named
  after the instance itself (``<instance>_<output>`` when the block has several).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graphspec.spec.blocks import MAX_DEPTH, RESERVED, Block, read_blocks
from graphspec.spec import catalog
from graphspec.spec.catalog import did_you_mean
from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec.expressions import Abort, Failed, fmt
from graphspec.spec.source import Source, Span
from graphspec.spec.variables import Scope, Substituter

MAX_REPEAT = 1000
MAX_NODES = 10_000  # nodes after expansion


@dataclasses.dataclass
class _Frame:
    """One body being expanded: the top level, or one repetition of one instance."""

    prefix: str  # prepended to the body's local node names
    src_prefix: PathKey  # where the body is written: ("nodes",) or ("blocks", b, "nodes")
    strict: bool  # inside a block: references must name a block input or node
    block: str | None = None
    bindings: dict[str, str] = dataclasses.field(default_factory=dict)  # local name -> expanded reference
    renames: dict[str, str] = dataclasses.field(default_factory=dict)  # local output -> final name
    default_input: str | None = None
    default_why: str = ""  # why there is no default input
    # `${...}` values, by the source path of the node they are in, then by their own source path
    value_notes: dict[PathKey, dict[PathKey, str]] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()  # blocks being instantiated, outermost first

    def name(self, local: str) -> str:
        return self.renames.get(local, self.prefix + local)


class _Expander(Substituter):
    """One spec's expansion: variables substituted, block instances expanded, positions mapped."""

    def __init__(self, src: Source) -> None:
        super().__init__(src)
        self.blocks: dict[str, Block] = {}
        self.broken_blocks: set[str] = set()
        self.out: dict[str, Any] = {}
        self.where: dict[str, tuple[PathKey, tuple[str, ...]]] = {}  # expanded node -> (origin path, notes)
        self.added_inputs: set[str] = set()
        self.node_value_notes: dict[str, dict[PathKey, str]] = {}
        self.dropped: set[str] = set()  # top-level nodes that were instances

    # -- references ----------------------------------------------------------------------
    def ref(self, text: Any, frame: _Frame, path: PathKey) -> Any:
        if not frame.strict or not isinstance(text, str):
            return text
        node, dot, layer = text.partition(".")
        target = frame.bindings.get(node)
        if target is None:
            choices = list(frame.bindings)
            self.error("GS126", f"`{node}` is neither an input nor a node of block `{frame.block}`", path,
                       hint=did_you_mean(node, choices) or f"it has: {', '.join(choices)}", notes=frame.notes)
            raise Failed
        if dot and "." in target:
            self.error("GS126", f"`{text}`: `{node}` is `{target}`, which already names a layer", path,
                       notes=frame.notes)
            raise Failed
        return target + dot + layer

    def refs(self, value: Any, frame: _Frame, path: PathKey) -> Any:
        """The `inputs:` of a node, with block-local names replaced."""
        if isinstance(value, list):
            return [self.ref(v, frame, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.refs(v, frame, path + (k,)) for k, v in value.items()}
        return self.ref(value, frame, path)

    # -- bodies ---------------------------------------------------------------------------
    def body(self, nodes: dict[str, Any], frame: _Frame, top_inputs: list[str] | None = None) -> None:
        # Pass 1: what each local name refers to (nodes may refer to later nodes).
        for local, node in nodes.items():
            if isinstance(node, dict) and "block" in node:
                bname = node["block"]
                block = self.blocks.get(bname) if isinstance(bname, str) else None
                outs = block.outputs if block else []
                if len(outs) <= 1:
                    frame.bindings[local] = frame.name(local)
                else:
                    for o in outs:
                        frame.bindings[f"{local}_{o}"] = frame.name(f"{local}_{o}")
            else:
                frame.bindings[local] = frame.name(local)
        # Pass 2: expand.
        previous: str | None = frame.default_input
        why_none = frame.default_why
        after_instance = False
        failed_before = False
        first = True
        for local, node in nodes.items():
            npath = frame.src_prefix + (local,)
            if isinstance(node, dict) and "block" in node:
                implicit = previous
                if first and not frame.strict:
                    implicit, why_none = self._only_input(top_inputs)
                produced = self.instance(local, node, npath, frame, implicit, why_none)
                if produced is not None and len(produced) == 1:
                    previous, why_none = produced[0], ""
                else:
                    previous = None
                    why_none = f"`{local}` is an instance of a block with several outputs"
                failed_before = produced is None
                after_instance = True
                first = False
                continue
            name = frame.name(local)
            data = node
            if isinstance(node, dict):
                data = dict(node)
                needs_input = frame.strict or after_instance
                try:
                    if "inputs" in node:
                        data["inputs"] = self.refs(node["inputs"], frame, npath + ("inputs",))
                    elif needs_input and not node.get("application") and (
                            "op" not in node or catalog.op_takes_input(node["op"], node)):
                        if previous is None and failed_before:
                            pass  # the instance before it already has an error
                        elif previous is None:
                            what = f"block `{frame.block}`" if frame.strict else "the spec"
                            self.error("GS205", f"cannot tell the input of node `{local}` in {what}"
                                       + (f": {why_none}" if why_none else ""), npath, key=True,
                                       hint="say which with `inputs:`", notes=frame.notes)
                        else:
                            data["inputs"] = previous
                            self.added_inputs.add(name)
                    share = node.get("share")
                    if frame.strict and isinstance(share, str) and share in nodes and share in frame.bindings:
                        data["share"] = frame.bindings[share]
                except Failed:
                    pass
            self.add(name, data, npath, frame)
            previous, why_none = name, ""
            after_instance = failed_before = False
            first = False

    def _only_input(self, top_inputs: list[str] | None) -> tuple[str | None, str]:
        if top_inputs is not None and len(top_inputs) == 1:
            return top_inputs[0], ""
        if not top_inputs:
            return None, "the spec declares no inputs"
        return None, f"the spec has several inputs ({', '.join(top_inputs)})"

    def add(self, name: str, data: Any, origin: PathKey, frame: _Frame) -> None:
        notes = frame.notes
        if name in self.out:
            first_origin, first_notes = self.where[name]
            span = self.src.span(first_origin, key=True)
            where = "" if span is None else (f" ({span.file} line {span.line})" if span.file else f" (line {span.line})")
            made = f", made by {first_notes[-1].removeprefix('in ')}" if first_notes else ""
            self.error("GS129", f"node name `{name}` is already taken{where}{made}", origin, key=True,
                       notes=notes, hint="rename the node or the instance")
            return
        if len(self.out) >= MAX_NODES:
            raise self.budget(f"the spec expands to more than {MAX_NODES:,} nodes", origin, notes,
                              hint="check `repeat` counts and blocks inside blocks")
        self.out[name] = data
        self.where[name] = (origin, notes)
        self.node_value_notes[name] = frame.value_notes.get(origin, {})

    # -- instances --------------------------------------------------------------------------
    def instance(self, local: str, node: dict[str, Any], npath: PathKey, frame: _Frame,
                 implicit: str | None, why_none: str) -> list[str] | None:
        """Expand one instance node; its output names, or None if it failed."""
        notes = frame.notes
        bname = node["block"]
        if not isinstance(bname, str):
            self.error("GS102", f"`block` must be a block name; got {fmt(bname)}", npath + ("block",), notes=notes)
            return None
        if bname in self.broken_blocks:
            return None
        block = self.blocks.get(bname)
        if block is None:
            names = list(self.blocks) + list(self.broken_blocks)
            self.error("GS123", f"unknown block `{bname}`", npath + ("block",), notes=notes,
                       hint=did_you_mean(bname, names) or (f"blocks: {', '.join(names)}" if names
                                                           else "define it under `blocks:`"))
            return None
        if bname in frame.chain:
            cycle = frame.chain[frame.chain.index(bname):] + (bname,)
            self.error("GS127", f"block `{bname}` instantiates itself: {' -> '.join(cycle)}",
                       npath + ("block",), notes=notes)
            return None
        if len(frame.chain) >= MAX_DEPTH:
            self.error("GS127", f"blocks nested more than {MAX_DEPTH} deep", npath + ("block",), notes=notes)
            return None
        ok = True
        # repeat
        indexed = "repeat" in node
        n = node.get("repeat", 1)
        if isinstance(n, bool) or not isinstance(n, int):
            self.error("GS128", f"`repeat` must be a whole number; got {fmt(n)}", npath + ("repeat",), notes=notes)
            return None
        if n < 1:
            self.error("GS128", f"`repeat` must be at least 1; got {n}", npath + ("repeat",), notes=notes,
                       hint="remove the node to leave the block out")
            return None
        if n > MAX_REPEAT:
            self.error("GS500", f"`repeat: {n:,}` is more than the limit of {MAX_REPEAT:,}", npath + ("repeat",),
                       notes=notes)
            return None
        # parameters
        params = {k: v for k, v in node.items() if k not in RESERVED}
        first = node.get("first", {})
        known = block.required + list(block.defaults)
        if not isinstance(first, dict):
            self.error("GS128", f"`first` must be a mapping of parameters for the first repetition; got "
                       f"{fmt(first)}", npath + ("first",), notes=notes)
            ok = False
            first = {}
        each = node.get("each", {})
        if not isinstance(each, dict):
            self.error("GS128", f"`each` must be a mapping of parameters to one value per repetition; got "
                       f"{fmt(each)}", npath + ("each",), notes=notes)
            ok = False
            each = {}
        for k, v in each.items():
            if not isinstance(v, list) or len(v) != n:
                got = f"{len(v)} values" if isinstance(v, list) else fmt(v)
                self.error("GS128", f"`each: {k}` needs a list of one value per repetition ({n}); got {got}",
                           npath + ("each", k), notes=notes,
                           hint=f"give `repeat: {len(v)}`" if isinstance(v, list) and v else None)
                ok = False
        given_each = set(each)
        each = {k: v for k, v in each.items() if isinstance(v, list) and len(v) == n}
        for where, given in ((npath, params), (npath + ("first",), first), (npath + ("each",), each)):
            for k in given:
                if k not in known:
                    hint = did_you_mean(str(k), known) or (
                        f"parameters of `{bname}`: {', '.join(known)}" if known else f"`{bname}` takes no parameters")
                    self.error("GS125", f"block `{bname}` has no parameter `{k}`", where + (k,), key=True,
                               hint=hint, notes=notes)
                    ok = False
        missing_all = [p for p in block.required if p not in params and p not in given_each
                       and (n > 1 or p not in first)]
        if missing_all:
            listed = ", ".join(f"`{p}`" for p in missing_all)
            self.error("GS124", f"instance `{local}` of block `{bname}` needs {listed}", npath, key=True,
                       hint="give " + ", ".join(f"`{p}: ...`" for p in missing_all), notes=notes)
            ok = False
        # inputs
        bound = self.bind(node, block, npath, frame, implicit, why_none)
        if bound is None or not ok:
            return None
        if n > 1 and len(block.outputs) != len(block.inputs):
            self.error("GS126", f"`repeat` feeds each repetition's outputs into the next one's inputs, but block "
                       f"`{bname}` has {len(block.inputs)} input(s) and {len(block.outputs)} output(s)",
                       npath + ("repeat",), notes=notes)
            return None
        base = frame.prefix + local
        if len(block.outputs) == 1:
            final = [frame.name(local)]
        else:
            final = [frame.name(f"{local}_{o}") for o in block.outputs]
        span = self.src.span(npath, key=True)
        at = "" if span is None or self.src.location(npath).file.startswith("--set") else (
            f" ({span.file} line {span.line})" if span.file else f" (line {span.line})")
        current = bound
        for r in range(1, n + 1):
            prefix = f"{base}_{r}_" if indexed else f"{base}_"
            rep = f", repetition {r} of {n}" if indexed else ""
            note = f"in `{base}`{rep}: an instance of block `{bname}`{at}"
            child = _Frame(
                prefix=prefix, src_prefix=("blocks", bname, "nodes"), strict=True, block=bname,
                bindings=dict(zip(block.inputs, current)),
                renames=dict(zip(block.outputs, final)) if r == n else {},
                default_input=current[0] if len(block.inputs) == 1 else None,
                default_why=f"block `{bname}` has several inputs ({', '.join(block.inputs)})",
                notes=notes + (note,), chain=frame.chain + (bname,),
            )
            scope = Scope(self, "parameter", self.globals)
            values = dict(params)
            if r == 1:
                values.update(first)
            values.update({k: v[r - 1] for k, v in each.items()})
            scope.values.update(values)
            for k, v in block.defaults.items():
                if k not in values:
                    scope.lazy[k] = (v, ("blocks", bname, "params", k))
            self.value_notes = {}
            body, _ = self.subst_soft(block.nodes, scope, ("blocks", bname, "nodes"), child.notes)
            depth = len(child.src_prefix) + 1
            for p, text in self.value_notes.items():
                child.value_notes.setdefault(p[:depth], {})[p] = text
            if not isinstance(body, dict):
                return None
            self.body(body, child)
            current = [child.bindings[o] for o in block.outputs]
        return final

    def bind(self, node: dict[str, Any], block: Block, npath: PathKey, frame: _Frame, implicit: str | None,
             why_none: str) -> list[str] | None:
        """The references passed to the block's inputs, in the block's order."""
        notes = frame.notes
        raw = node.get("inputs")
        names = block.inputs
        try:
            if raw is None:
                if len(names) != 1:
                    self.error("GS126", f"block `{block.name}` has inputs {', '.join(names)}: give them with "
                               "`inputs:`", npath, key=True, notes=notes,
                               hint="`inputs: {" + ", ".join(f"{x}: ..." for x in names) + "}`")
                    return None
                if implicit is None:
                    where = f"block `{frame.block}`" if frame.strict else "the spec"
                    self.error("GS205", f"cannot tell the input of instance `{frame.prefix}{npath[-1]}` in {where}"
                               + (f": {why_none}" if why_none else ""), npath, key=True,
                               hint="say which with `inputs:`", notes=notes)
                    return None
                return [implicit]
            if isinstance(raw, str):
                if len(names) != 1:
                    self.error("GS126", f"block `{block.name}` has {len(names)} inputs ({', '.join(names)}); "
                               "got one", npath + ("inputs",), notes=notes,
                               hint="`inputs: {" + ", ".join(f"{x}: ..." for x in names) + "}`")
                    return None
                return [self.ref(raw, frame, npath + ("inputs",))]
            if isinstance(raw, list):
                if len(raw) != len(names) or not all(isinstance(r, str) for r in raw):
                    self.error("GS126", f"block `{block.name}` takes {len(names)} input(s) ({', '.join(names)}); "
                               f"got {fmt(raw)}", npath + ("inputs",), notes=notes)
                    return None
                return [self.ref(r, frame, npath + ("inputs", i)) for i, r in enumerate(raw)]
            if isinstance(raw, dict):
                ok = True
                for k, v in raw.items():
                    if k not in names:
                        self.error("GS126", f"block `{block.name}` has no input `{k}`", npath + ("inputs", k),
                                   key=True, notes=notes,
                                   hint=did_you_mean(str(k), names) or f"its inputs: {', '.join(names)}")
                        ok = False
                    elif not isinstance(v, str):
                        self.error("GS102", f"input `{k}` of a block takes one reference; got {fmt(v)}",
                                   npath + ("inputs", k), notes=notes)
                        ok = False
                missing = [x for x in names if x not in raw]
                if missing:
                    self.error("GS126", f"instance `{npath[-1]}` of block `{block.name}` does not give input(s) "
                               f"{', '.join(f'`{x}`' for x in missing)}", npath + ("inputs",), key=True, notes=notes)
                    ok = False
                if not ok:
                    return None
                return [self.ref(raw[x], frame, npath + ("inputs", x)) for x in names]
        except Failed:
            return None
        self.error("GS102", f"`inputs` of a block instance must be a name, a list or a mapping; got {fmt(raw)}",
                   npath + ("inputs",), notes=notes)
        return None

    # -- the whole spec ----------------------------------------------------------------------
    def run(self) -> Source:
        src = self.src
        data = src.data
        if not isinstance(data, dict) or not _uses_expansion(data):
            return src
        self.blocks, self.broken_blocks = read_blocks(self, data)
        raw_vars = data.get("vars")
        if isinstance(raw_vars, dict):
            for k, v in raw_vars.items():
                self.globals.lazy[str(k)] = (v, ("vars", k))
        out: dict[str, Any] = {}
        try:
            # Every variable, used or not, must make sense.
            for name in list(self.globals.lazy):
                try:
                    self.globals.lookup(name, ("vars", name), ())
                except Failed:
                    pass
            self.value_notes = {}
            for key, value in data.items():
                if key in ("vars", "blocks"):
                    continue
                out[key], _ = self.subst_soft(value, self.globals, (key,), ())
            top_notes = dict(self.value_notes)
            nodes = out.get("nodes")
            if isinstance(nodes, dict) and any(isinstance(v, dict) and "block" in v for v in nodes.values()):
                # Expansion builds node names from these keys: one that YAML read as a
                # number (`1: {block: b}`) is reported here, before the schema sees it.
                bad_names = [k for k in nodes if not isinstance(k, str)]
                for k in bad_names:
                    self.error("GS102", f"node names must be strings; got {fmt(k)}", ("nodes", k), key=True,
                               hint=f'quote it: `"{k}"`')
                if bad_names:
                    return self._source(out, top_notes)
                self.dropped = {k for k, v in nodes.items() if isinstance(v, dict) and "block" in v}
                ins = out.get("inputs")
                top_inputs = [str(k) for k in ins] if isinstance(ins, dict) else None
                self.body(nodes, _Frame(prefix="", src_prefix=("nodes",), strict=False), top_inputs)
                out["nodes"] = self.out
        except Abort:
            return src
        return self._source(out, top_notes)

    def _source(self, data: dict[str, Any], top_notes: dict[PathKey, str]) -> Source:
        src = self.src
        values = dict(src.values)
        keys = dict(src.keys)
        overrides = dict(src.overrides)
        origins: dict[PathKey, tuple[str, ...]] = dict(src.origins)
        for path, note in top_notes.items():
            origins[path] = origins.get(path, ()) + (note,)
        if self.where:
            # Drop the instance nodes' own entries: their names now belong to expanded nodes.
            gone = {("nodes", n) for n in self.dropped}
            values = {p: s for p, s in values.items() if p[:2] not in gone}
            keys = {p: s for p, s in keys.items() if p[:2] not in gone}
            overrides = {p: s for p, s in overrides.items() if p[:2] not in gone}
            origins = {p: n for p, n in origins.items() if p[:2] not in gone}
            index: dict[PathKey, list[tuple[PathKey, Span, bool]]] = {}
            for table, is_key in ((src.values, False), (src.keys, True)):
                for p, s in table.items():
                    if len(p) >= 4 and p[0] == "blocks" and p[2] == "nodes":
                        index.setdefault(p[:4], []).append((p[4:], s, is_key))
            for name, (origin, notes) in self.where.items():
                new: PathKey = ("nodes", name)
                if origin != new:
                    for rest, span, is_key in index.get(origin, ()):
                        (keys if is_key else values)[new + rest] = span
                    for p, item in src.overrides.items():
                        if p[:len(origin)] == origin:
                            overrides[new + p[len(origin):]] = item
                if name in self.added_inputs:
                    at = src.keys.get(origin) or src.values.get(origin)
                    if at is not None:
                        values[new + ("inputs",)] = at
                        keys[new + ("inputs",)] = at
                if notes:
                    origins[new] = tuple(reversed(notes))
                for p, note in self.node_value_notes.get(name, {}).items():
                    if p[:len(origin)] == origin and origin != new:
                        q = new + p[len(origin):]
                        origins[q] = origins.get(q, ()) + (note,)
        return dataclasses.replace(src, data=data, values=values, keys=keys, overrides=overrides, origins=origins)


def _uses_expansion(data: dict[str, Any]) -> bool:
    if "vars" in data or "blocks" in data:
        return True
    stack: list[Any] = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "$" in v:
                return True
        elif isinstance(v, dict):
            if isinstance(v.get("block"), (str, int, float)) and v is not data:
                return True
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _may_use_expansion(src: Source) -> bool:
    """A look at the text before walking the data: no `$` and no `block` in it, nothing to expand."""
    texts = [src.text, *src.bases.values()]  # a variable may come from a base the spec extends
    return bool(src.overrides) or not src.text or any(
        "$" in _after_header(text) or "block" in text or "vars" in text for text in texts)


def _after_header(text: str) -> str:
    """The text after its leading comment lines (`# yaml-language-server: $schema=...` is no variable)."""
    start = 0
    while text.startswith("#", start) or text.startswith("\n", start):
        end = text.find("\n", start)
        if end < 0:
            return ""
        start = end + 1
    return text[start:]


def expand(src: Source) -> tuple[Source, list[Diagnostic]]:
    """Substitute variables and expand block instances; (the plain Source, diagnostics).

    A spec that uses neither comes back unchanged. On errors the returned Source
    is still plain data, but later stages should not run.
    """
    if not _may_use_expansion(src):
        return src, _too_many_nodes(src)
    ex = _Expander(src)
    result = ex.run()
    if not any(d.code == "GS500" for d in ex.diags):
        ex.diags.extend(_too_many_nodes(result))
    return result, ex.diags


def _too_many_nodes(src: Source) -> list[Diagnostic]:
    """The node limit for nodes as written (expansion counts the nodes it makes as it goes): one `len`."""
    nodes = src.data.get("nodes") if isinstance(src.data, dict) else None
    if not isinstance(nodes, dict) or len(nodes) <= MAX_NODES:
        return []
    return [Diagnostic("GS500", Severity.ERROR, f"the spec has {len(nodes):,} nodes; the limit is {MAX_NODES:,}",
                       src.location(("nodes",), key=True), "split the model, or use fewer, wider layers")]


__all__ = ["expand", "MAX_REPEAT", "MAX_NODES"]
