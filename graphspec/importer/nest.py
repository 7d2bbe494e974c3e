"""Chains that repeat inside blocks and between branches, written once as inner blocks.

:mod:`graphspec.importer.repeats` finds structure that repeats at the top level: units with one
input and one output. A shortcut that spans a residual block keeps its body from being cut into
units, and so do skips that span a U-Net or branches that meet (Inception), yet what lies between
is often a chain of the same few layers over and over: ResNet's (convolution, batch normalization,
ReLU) twice, a U-Net's in every stage. This module finds those, in the blocks' bodies and in the
top-level nodes, and writes them once, as inner blocks that the bodies instantiate with `repeat`:

1. **Chains.** A chain is a run of nodes that each take the node before them (implicitly, as
   written) when nothing else uses that node; its first node takes one tensor. Nodes that share a
   layer, are shared, call a model or are indexed by output stay out of chains.
2. **Patterns.** A pattern is a sequence of up to MAX_PATTERN layers (and ops) with the same
   arguments that have no default; repetitions of it in a chain, one after the other, are one
   instance with `repeat`. Patterns are compared across all the bodies, and a layer's `type` may
   differ within its Keras family (the package: convolutional, pooling, ...): one inner block then
   serves them all, with the type as a parameter (`type: $conv2d`, docs/blocks.md) — when every
   argument written is one that all those layer types take.
3. **Choice.** The pattern that saves the most lines (its occurrences' nodes, less one instance line
   each and the inner block's definition) is written first, and the search goes on in what is left;
   a pattern is used only where it saves at least MIN_SAVED lines.

Parameters are found as for top-level blocks (:mod:`graphspec.importer.params`); a value that is an
expression of the outer block's parameters (`$filters`) is passed in by the instance. The nodes an
instance replaces are named `<instance>_<i>_<node>` (docs/blocks.md); the caller maps the Keras
names to those, and names the top level's instances (:func:`plan` returns what to replace where,
:func:`rewrite` does it in a block's body).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any

from graphspec.importer.params import NO_DEFAULT, Key, Params, block_params, default_of, instance_args
from graphspec.importer.refs import keras_snake, map_refs, ref_list
from graphspec.importer.write import Expr
from graphspec.spec import catalog

MIN_SAVED = 2  # lines an inner block must save
MAX_PATTERN = 16  # nodes in one repetition of an inner block
_LOCAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


@dataclasses.dataclass
class _Body:
    """One block's nodes as written, and the chains in them."""

    block: str
    names: list[str]
    entries: list[dict[str, Any]]
    chains: list[list[int]]  # positions of the nodes of each chain
    sigs: list[Any]


@dataclasses.dataclass
class _Occurrence:
    body: int
    start: int  # position in the body of the first node
    reps: int


@dataclasses.dataclass
class _Choice:
    size: int  # nodes in the pattern
    occurrences: list[_Occurrence]
    params: Params
    reps: list[dict[Key, Any]]  # every repetition's values, occurrence by occurrence
    saved: int
    aligned: int  # how much the repetitions' names share a prefix (`1_conv`, `1_bn`, `1_relu`)


def _plain(entry: dict[str, Any]) -> bool:
    return not any(k in entry for k in ("share", "model", "application", "block", "call"))


def _signature(entry: dict[str, Any]) -> Any:
    """What repetitions of a node must share: its op, or its layer's family (the Keras package:
    convolutional, pooling, ...; the type may differ within it), and the arguments that have no
    default (convolutions' `filters` and `kernel_size`)."""
    keys = tuple(sorted(k for k in entry if k not in ("type", "op", "inputs") and default_of(entry, k) is NO_DEFAULT))
    if "type" not in entry:
        return ("op", entry.get("op"), keys)
    module = str(catalog.LAYERS.get(str(entry["type"]), {}).get("module") or "")
    return ("layer", module.rsplit(".", 1)[0] if "." in module else entry["type"], keys)


def _body(name: str, block: dict[str, Any], pinned: frozenset[str] | set[str] = frozenset(),
          fixed: frozenset[str] | set[str] = frozenset()) -> _Body | None:
    if "outputs" in block or not isinstance(block.get("inputs", "x"), str):
        return None
    names = list(block["nodes"])
    entries = [block["nodes"][n] for n in names]
    used: Counter[str] = Counter(r.split(".", 1)[0] for e in entries for r in ref_list(e.get("inputs")))
    used.update(pinned)
    indexed = {r.split(".", 1)[0] for e in entries for r in ref_list(e.get("inputs")) if "." in r}
    shared = {e["share"] for e in entries if isinstance(e.get("share"), str)} | indexed | set(fixed)
    chains: list[list[int]] = []
    for i, e in enumerate(entries):
        plain = _plain(e) and names[i] not in shared
        starts = plain and isinstance(e.get("inputs", ""), str) and "." not in e.get("inputs", "")
        follows = (chains and chains[-1][-1] == i - 1 and plain and "inputs" not in e
                   and used[names[i - 1]] == 0)
        if follows:
            chains[-1].append(i)
        elif starts:
            chains.append([i])
    return _Body(name, names, entries, chains, [_signature(e) for e in entries])


def _values(entries: list[dict[str, Any]]) -> dict[Key, Any]:
    return {(i, k): v for i, e in enumerate(entries) for k, v in e.items() if k not in ("op", "inputs")}


class _Search:
    def __init__(self, bodies: list[_Body]) -> None:
        self.bodies = bodies
        self.covered: set[tuple[int, int]] = set()

    def windows(self) -> dict[tuple[Any, ...], list[tuple[int, int, int]]]:
        """Every pattern of up to MAX_PATTERN nodes in the chains not yet covered -> where it starts:
        (body, chain, position in the chain)."""
        found: dict[tuple[Any, ...], list[tuple[int, int, int]]] = {}
        for b, body in enumerate(self.bodies):
            for c, chain in enumerate(body.chains):
                for i in range(len(chain)):
                    for j in range(i + 1, min(len(chain), i + MAX_PATTERN) + 1):
                        if (b, chain[j - 1]) in self.covered:
                            break
                        found.setdefault(tuple(body.sigs[k] for k in chain[i:j]), []).append((b, c, i))
        return found

    def occurrences(self, size: int, starts: list[tuple[int, int, int]]) -> list[_Occurrence]:
        """A pattern's occurrences from where it starts, from left to right: repetitions one after the
        other in a chain are one occurrence."""
        at = set(starts)
        found: list[_Occurrence] = []
        free: dict[tuple[int, int], int] = {}  # (body, chain) -> first position not yet used
        for b, c, i in starts:  # in order
            if i < free.get((b, c), 0):
                continue
            r = 1
            while (b, c, i + r * size) in at:
                r += 1
            free[(b, c)] = i + r * size
            if r * size >= 2:
                found.append(_Occurrence(b, self.bodies[b].chains[c][i], r))
        return found

    def entries(self, occ: _Occurrence, rep: int, size: int) -> list[dict[str, Any]]:
        start = occ.start + rep * size
        return self.bodies[occ.body].entries[start:start + size]

    def evaluate(self, size: int, starts: list[tuple[int, int, int]]) -> _Choice | None:
        occurrences = self.occurrences(size, starts)
        if not occurrences:
            return None
        reps = [_values(self.entries(o, r, size)) for o in occurrences for r in range(o.reps)]
        keys: list[Key] = []
        for rep in reps:
            keys.extend(k for k in rep if k not in keys)
        # Every repetition gets every argument, those it leaves out at its own layer's default; a
        # layer type that does not take an argument another one is given cannot share the block.
        full: list[dict[Key, Any]] = []
        for o in occurrences:
            for r in range(o.reps):
                nodes = self.entries(o, r, size)
                rep = _values(nodes)
                for key in keys:
                    if key not in rep:
                        rep[key] = default_of(nodes[key[0]], key[1])
                        if rep[key] is NO_DEFAULT:
                            return None
                full.append(rep)
        params = block_params(full, self.entries(occurrences[0], 0, size))
        definition = 2 + size + (1 if params.names else 0)
        saved = sum(o.reps * size - 1 for o in occurrences) - definition
        aligned = sum(len(_prefix(self.bodies[o.body].names[o.start + r * size:o.start + (r + 1) * size]))
                      for o in occurrences for r in range(o.reps))
        return _Choice(size, occurrences, params, full, saved, aligned)

    def best(self) -> _Choice | None:
        best: _Choice | None = None
        for pattern, starts in sorted(self.windows().items(), key=lambda item: repr(item[0])):
            size = len(pattern)
            bound = len(starts) * size - 1 - (2 + size)  # at most: every start one occurrence's repetition
            if bound < max(MIN_SAVED, best.saved if best else 0):
                continue
            c = self.evaluate(size, starts)
            # Between equal savings, the alignment whose repetitions' names share the longest prefix
            # (`1_conv`, `1_bn`, `1_relu` rather than `1_relu`, `2_conv`, `2_bn`): how the author cut it.
            if c is not None and c.saved >= MIN_SAVED and (best is None or (c.saved, c.aligned) >
                                                           (best.saved, best.aligned)):
                best = c
        return best

    def plan(self) -> list[_Choice]:
        chosen: list[_Choice] = []
        while (c := self.best()) is not None:
            chosen.append(c)
            for o in c.occurrences:
                self.covered.update((o.body, o.start + i) for i in range(o.reps * c.size))
        return chosen


def _prefix(names: list[str]) -> str:
    """The names' common prefix up to its last `_` (`1_` of `1_conv`, `1_bn`)."""
    prefix = names[0] if len(names) > 1 else ""
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    return prefix[:prefix.rfind("_") + 1] if "_" in prefix else ""


def _stems(names: list[str]) -> list[str]:
    """Names for the inner block's nodes: the first repetition's without their common prefix
    (`conv`, `bn` of `1_conv`, `1_bn`) or numbering (`activation` of `activation_2`)."""
    prefix = _prefix(names)
    out: list[str] = []
    for n in names:
        stem = n[len(prefix):] if prefix else (re.sub(r"_[0-9]+$", "", n) or "node")
        cand, k = stem, 2
        while cand in out:
            cand, k = f"{stem}_{k}", k + 1
        out.append(cand)
    return out if all(_LOCAL.match(x) for x in out) else [f"node_{i + 1}" for i in range(len(names))]


def _wanted(rep_names: list[list[str]]) -> str:
    """The instance's name from its repetitions' names: their prefix (`1` of `1_conv`, ...), or
    `1_to_2` for prefixes that count up."""
    prefixes = [_prefix(names).rstrip("_-") for names in rep_names]
    if not all(prefixes):
        return ""
    if len(prefixes) == 1:
        return prefixes[0]
    numbered = [re.match(r"^(.*?)([0-9]+)$", p) for p in prefixes]
    if all(numbered) and len({m.group(1) for m in numbered if m}) == 1:
        last = numbered[-1]
        assert last is not None
        return f"{prefixes[0]}_to_{last.group(2)}"
    return ""


TOP = ""  # the key of the top-level node list among the bodies (no block has that name)


@dataclasses.dataclass
class Edit:
    """A run of a body's nodes that becomes one instance of an inner block."""

    start: int  # position of its first node in the body
    count: int  # nodes it replaces
    wanted: str  # a name for the instance from its nodes' common prefix (`1_to_2`), or ""
    entry: dict[str, Any]  # the instance, with `inputs` where the run's first node had them
    stems: list[str]  # the inner block's node names

    def expanded(self, name: str) -> list[str]:
        """The names the replaced nodes get, in order, when the instance is `name` (docs/blocks.md)."""
        reps = self.count // len(self.stems)
        names = [f"{name}_{r + 1}_{x}" if reps > 1 else f"{name}_{x}" for r in range(reps) for x in self.stems]
        return names[:-1] + [name]  # the last one is the instance's output


@dataclasses.dataclass
class Nested:
    """What :func:`plan` found: inner blocks, and where each body instantiates them."""

    inner: dict[str, dict[str, Any]]  # the inner blocks' definitions, in the order they were found
    edits: dict[str, list[Edit]]  # body (a block, or TOP) -> its edits, in order


def plan(blocks: dict[str, dict[str, Any]], top: dict[str, dict[str, Any]] | None, pinned: set[str],
         fixed: set[str], taken: set[str]) -> Nested:
    """Inner blocks for chains repeated in the blocks' bodies and in `top` (the top-level nodes as
    written, placeholders for block instances included). Of the top-level nodes, `pinned` ones are
    used outside the node list (models' outputs: they may end a run, and are renamed) and `fixed`
    ones keep their names (shared layers, nodes indexed by output); block names avoid `taken`."""
    bodies = [found for name, block in blocks.items() if (found := _body(name, block)) is not None]
    if top is not None:
        top_body = _body(TOP, {"nodes": top}, pinned, fixed)
        if top_body is not None:
            bodies.append(top_body)
    inner: dict[str, dict[str, Any]] = {}
    edits: dict[str, list[Edit]] = {}
    for c in _Search(bodies).plan():
        first = c.occurrences[0]
        body = bodies[first.body]
        # The nodes are named after the repetition whose names share the longest prefix (`bn`, `relu`,
        # `conv` of `pool2_bn`, `pool2_relu`, `pool2_conv`), the first one between equals.
        reps = [bodies[o.body].names[o.start + r * c.size:o.start + (r + 1) * c.size]
                for o in c.occurrences for r in range(o.reps)]
        stems = _stems(max(reps, key=lambda names: len(_prefix(names))))
        for (pos, key), expr in c.params.where.items():
            if key == "type" and str(expr)[1:] not in stems and _LOCAL.match(str(expr)[1:]):
                stems[pos] = str(expr)[1:]  # a node whose type is a parameter is named after it
        kind = str(body.entries[first.start].get("type") or body.entries[first.start].get("op") or "node")
        stem = keras_snake(kind).replace(".", "_") + "_block"
        bname, k = stem, 2
        while bname in blocks or bname in inner or bname in taken:
            bname, k = f"{stem}_{k}", k + 1
        nodes: dict[str, dict[str, Any]] = {}
        for i, e in enumerate(body.entries[first.start:first.start + c.size]):
            entry = {key: v for key, v in e.items() if key != "inputs"}
            for (pos, key), expr in c.params.where.items():
                if pos == i:
                    entry[key] = expr
            nodes[stems[i]] = entry
        definition: dict[str, Any] = {}
        if c.params.names:
            definition["params"] = {p: c.params.defaults[p] for p in c.params.names}
        definition["nodes"] = nodes
        inner[bname] = definition
        keys = {p: key for key, expr in c.params.where.items() for p in [str(expr)[1:]] if p in c.params.names}
        at = 0
        for o in c.occurrences:
            b = bodies[o.body]
            per_rep = [{p: c.reps[at + r][key] for p, key in keys.items()} for r in range(o.reps)]
            at += o.reps
            entry = {"block": bname} | ({"repeat": o.reps} if o.reps > 1 else {})
            entry.update(instance_args(definition.get("params", {}), per_rep))
            if "inputs" in b.entries[o.start]:
                entry["inputs"] = b.entries[o.start]["inputs"]
            rep_names = [b.names[o.start + r * c.size:o.start + (r + 1) * c.size] for r in range(o.reps)]
            edits.setdefault(b.block, []).append(Edit(o.start, o.reps * c.size, _wanted(rep_names), entry, stems))
    return Nested(inner, {k: sorted(v, key=lambda e: e.start) for k, v in edits.items()})


def rewrite(block: dict[str, Any], edits: list[Edit]) -> tuple[dict[str, Any], dict[str, str]]:
    """A block's definition with runs of its nodes replaced by instances; its old node names -> their
    names in the expansion of the block's body."""
    names = list(block["nodes"])
    entries = [block["nodes"][n] for n in names]
    moved = {i for e in edits for i in range(e.start, e.start + e.count)}
    taken = {names[i] for i in range(len(names)) if i not in moved}
    renames: dict[str, str] = {}
    instances: dict[int, tuple[str, dict[str, Any]]] = {}
    for edit in edits:
        wanted = edit.wanted or names[edit.start + edit.count - 1]  # else named after the node it outputs
        name, k = wanted, 2
        while any(x in taken for x in edit.expanded(name)):
            name, k = f"{wanted}_{k}", k + 1
        taken.update(edit.expanded(name))
        renames.update(zip(names[edit.start:edit.start + edit.count], edit.expanded(name)))
        instances[edit.start] = (name, edit.entry)

    def renamed(e: dict[str, Any]) -> dict[str, Any]:
        return dict(e, inputs=map_refs(e["inputs"], lambda r: renames.get(r, r))) if "inputs" in e else e

    nodes: dict[str, Any] = {}
    for i, (local, e) in enumerate(zip(names, entries)):
        if i in instances:
            nodes[instances[i][0]] = renamed(instances[i][1])
        if i not in moved:
            nodes[local] = renamed(e)
    return dict(block, nodes=nodes), renames


def absorbed(block: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the inner block, its arguments) when a block's body is now one instance of an inner block that
    passes the block's parameters through (`filters: $filters`) or constants: the block's own instances
    can then instantiate the inner block directly."""
    if len(block["nodes"]) != 1:
        return None
    (entry,) = block["nodes"].values()
    params = block.get("params", {})
    if "block" not in entry or any(k in entry for k in ("repeat", "first", "each")) or (
            entry.get("inputs", block.get("inputs", "x")) != block.get("inputs", "x")):
        return None
    args = {k: v for k, v in entry.items() if k not in ("block", "inputs")}
    if any(isinstance(v, Expr) and not (v.startswith("$") and v[1:] in params) for v in args.values()):
        return None
    return str(entry["block"]), args
