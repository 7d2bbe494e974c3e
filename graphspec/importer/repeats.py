"""Repeated structure in an imported graph, written as `blocks:` with `repeat`.

The importer first writes one node per call (:mod:`graphspec.importer.walk`). This module then
looks for runs of nodes that compute the same thing with different settings and writes each such
structure once, as a block, instantiated by one node per run:

1. **Units.** The node list is cut where only one tensor is live: everything after the cut uses
   the nodes before it only through the node at the cut. Between two cuts lies a unit with one
   input and one output (a residual block, or a single layer of a chain).
2. **Signatures.** A unit's signature is its nodes' layer types (or ops) and how they are wired,
   not their settings. Arguments that differ between units with the same signature become block
   parameters (arguments left out are compared at their Keras default); parameters that always
   agree are merged, and one that is always a whole multiple of another is written as an
   expression (`"${4 * filters}"`).
3. **Choice.** Sequences of units that occur more than once are candidates; the one that saves
   the most lines becomes a block, consecutive occurrences become one instance with `repeat`
   (the first repetition's differences go to `first:`), and the search goes on in what is left.
4. **Inner blocks.** Chains that repeat inside the blocks' bodies and between the top level's
   branches become inner blocks (:mod:`graphspec.importer.nest`); a block that is then just one
   instance of an inner block is replaced by it, and blocks are numbered as they are listed.

Nodes inside a block are named by the expansion (docs/blocks.md): `<instance>_<node>`, or
`<instance>_<i>_<node>` with `repeat`, and the instance's output is named after the instance.
Block node names come from the Keras names of the first occurrence with their common prefix
removed, so that an instance named after that prefix expands to the Keras names again
(`conv2_block1` + `1_conv` is `conv2_block1_1_conv`). The caller checks the result by building
it (the round trip), like every import.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from graphspec.importer import nest
from graphspec.importer.refs import base, keras_snake, map_refs, ref_list
from graphspec.importer.params import NO_DEFAULT, Params, block_params, default_of, instance_args
from graphspec.importer.write import Expr

MAX_PATTERN = 48  # units in one candidate pattern
_LOCAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclasses.dataclass
class Flat:
    """The imported graph, one node per call: what the walk wrote."""

    order: list[str]
    entries: dict[str, dict[str, Any]]  # node -> its entry without `inputs`
    inputs: dict[str, tuple[str, Any]]  # node -> (style, refs)
    spec_inputs: list[str]
    models: dict[str, dict[str, Any]]


@dataclasses.dataclass
class Result:
    """The graph with blocks: top-level items in order, block definitions, and the new names."""

    top: list[tuple[str, dict[str, Any], Any]]  # (name, entry, refs or None for implicit-by-block)
    blocks: dict[str, dict[str, Any]]
    renames: dict[str, str]  # flat node name -> its expanded name


class _Finder:
    def __init__(self, flat: Flat) -> None:
        self.flat = flat
        self.pos = {n: i for i, n in enumerate(flat.order)}
        n = len(flat.order)
        # Where each spec input is first used: just before that node (sub-models' inputs sit inside).
        first_use: dict[str, float] = {}
        for i, name in enumerate(flat.order):
            for r in ref_list(flat.inputs[name][1]):
                if base(r) not in self.pos:
                    first_use.setdefault(base(r), i - 0.5)
        self.input_pos = first_use
        self.external: set[str] = set()  # referenced outside the node list: models, shares
        for m in flat.models.values():
            for key in ("inputs", "outputs"):
                self.external.update(base(r) for r in ref_list(m.get(key)))
        for e in flat.entries.values():
            if isinstance(e.get("share"), str):
                self.external.add(e["share"])
        self.indexed = {base(r) for name in flat.order for r in ref_list(flat.inputs[name][1]) if "." in r}
        self.units = self._units(n)

    def where(self, ref: str) -> float:
        b = base(ref)
        return self.pos[b] if b in self.pos else self.input_pos.get(b, -1.0)

    def _units(self, n: int) -> list[tuple[int, int]]:
        """(first, last) node positions of each unit, in order."""
        open_from = [0] * (n + 1)  # boundaries after p that some reference crosses
        for q, name in enumerate(self.flat.order):
            for r in ref_list(self.flat.inputs[name][1]):
                s = self.where(r)
                lo = int(s) + 1 if s == int(s) else int(s + 0.5)
                lo = max(lo, 0)
                if lo <= q - 1:
                    open_from[lo] += 1
                    open_from[q] -= 1
        units: list[tuple[int, int]] = []
        start = 0
        crossing = 0
        for p in range(n):
            crossing += open_from[p]
            if crossing == 0 or p == n - 1:
                units.append((start, p))
                start = p + 1
        return units

    # -- units -------------------------------------------------------------------------
    def usable(self, unit: tuple[int, int]) -> str | None:
        """The unit's one external input if it can be part of a block, else None."""
        first, last = unit
        names = self.flat.order[first:last + 1]
        inside = set(names)
        outside: set[str] = set()
        for name in names:
            e = self.flat.entries[name]
            if any(k in e for k in ("share", "model", "application")):
                return None
            refs = ref_list(self.flat.inputs[name][1])
            if not refs:
                return None
            if name != names[-1] and (name in self.external or name in self.indexed):
                return None
            outside.update(base(r) for r in refs if base(r) not in inside)
        if names[-1] in self.indexed or len(outside) != 1:
            return None
        return outside.pop()

    def signature(self, unit: tuple[int, int]) -> Any:
        first, last = unit
        names = self.flat.order[first:last + 1]
        local = {n: i for i, n in enumerate(names)}
        sig = []
        for name in names:
            e = self.flat.entries[name]
            style, refs = self.flat.inputs[name]
            wiring = map_refs(refs, lambda r: str(local[r]) if r in local else "in")
            keys = tuple(sorted(k for k in e if k not in ("type", "op") and default_of(e, k) is NO_DEFAULT))
            sig.append((e.get("type"), e.get("op"), style, repr(wiring), keys))
        return tuple(sig)


def _values(flat: Flat, names: list[str]) -> dict[tuple[int, str], Any]:
    """(position in the unit sequence, argument) -> value, for the nodes of one occurrence."""
    out: dict[tuple[int, str], Any] = {}
    for i, name in enumerate(names):
        for k, v in flat.entries[name].items():
            if k not in ("type", "op"):
                out[(i, k)] = v
    return out


@dataclasses.dataclass
class _Candidate:
    sig: tuple[Any, ...]
    runs: list[list[int]]  # runs of consecutive occurrences (unit index of each occurrence's start)
    k: int  # units per occurrence
    saved: int
    aligned: int = 0  # length of the name prefix the first occurrence's nodes share


class _Planner:
    """Chooses blocks and writes them."""

    def __init__(self, flat: Flat) -> None:
        self.flat = flat
        self.finder = _Finder(flat)
        units = self.finder.units
        self.units = units
        self.ext = [self.finder.usable(u) for u in units]
        self.sigs = [self.finder.signature(u) if e is not None else ("x", i) for i, (u, e) in
                     enumerate(zip(units, self.ext))]
        self.covered = [False] * len(units)

    def nodes_of(self, start: int, k: int) -> list[str]:
        first, last = self.units[start][0], self.units[start + k - 1][1]
        return self.flat.order[first:last + 1]

    def chained(self, start: int, k: int) -> bool:
        """Whether units start..start+k-1 feed each other in turn (each one's input is the last's output)."""
        for j in range(start + 1, start + k):
            prev_last = self.flat.order[self.units[j - 1][1]]
            if self.ext[j] != prev_last:
                return False
        return all(self.ext[j] is not None for j in range(start, start + k))

    def best(self) -> _Candidate | None:
        m = len(self.units)
        best: _Candidate | None = None
        for k in range(1, min(MAX_PATTERN, m) + 1):
            starts: dict[tuple[Any, ...], list[int]] = {}
            for i in range(m - k + 1):
                if any(self.covered[i:i + k]) or not self.chained(i, k):
                    continue
                starts.setdefault(tuple(self.sigs[i:i + k]), []).append(i)
            for sig, found in starts.items():
                occ: list[int] = []
                for i in found:
                    if not occ or i >= occ[-1] + k:
                        occ.append(i)
                n_nodes = len(self.nodes_of(occ[0], k))
                if n_nodes * len(occ) - (3 + n_nodes + 1) < (best.saved if best else 2):
                    continue  # cannot match the best even with one instance line and no parameters
                runs: list[list[int]] = [[occ[0]]]
                for i in occ[1:]:
                    prev_end = self.flat.order[self.units[runs[-1][-1] + k - 1][1]]
                    if i == runs[-1][-1] + k and self.ext[i] == prev_end:
                        runs[-1].append(i)
                    else:
                        runs.append([i])
                saved = n_nodes * len(occ) - self.cost(runs, k)
                if saved < 2:
                    continue
                # Between equal savings, the alignment whose nodes share the longest name prefix
                # (`conv2_block2_` rather than `conv2_`): it is how the model's author cut it; then
                # one whose input feeds several of its nodes (a residual block starts at its fork).
                names = self.nodes_of(occ[0], k)
                fork = sum(r == self.ext[occ[0]] for n in names for r in ref_list(self.flat.inputs[n][1]))
                aligned = len(_prefix(self.flat, names)) * 100 + min(fork, 99)
                if best is None or (saved, aligned) > (best.saved, best.aligned):
                    best = _Candidate(sig, runs, k, saved, aligned)
        return best

    def occurrence_values(self, runs: list[list[int]], k: int) -> list[list[dict[tuple[int, str], Any]]]:
        return [[_values(self.flat, self.nodes_of(i, k)) for i in run] for run in runs]

    def cost(self, runs: list[list[int]], k: int) -> int:
        values = self.occurrence_values(runs, k)
        n_nodes = len(self.nodes_of(runs[0][0], k))
        params = _params(values, self.flat, self.nodes_of(runs[0][0], k))
        lines = 3 + n_nodes + (1 if params.names else 0)
        return lines + len(runs)  # one instance per run: `repeat`, with `first:` or `each:` where they differ

    def plan(self) -> list[_Candidate]:
        chosen: list[_Candidate] = []
        while True:
            c = self.best()
            if c is None:
                return chosen
            chosen.append(c)
            for run in c.runs:
                for i in run:
                    for j in range(i, i + c.k):
                        self.covered[j] = True


def _params(values: list[list[dict[tuple[int, str], Any]]], flat: Flat, first_names: list[str]) -> Params:
    return block_params([rep for run in values for rep in run], [flat.entries[n] for n in first_names])


def find(flat: Flat) -> Result | None:
    """The graph with its repeated structure as blocks; None when no block saves lines."""
    planner = _Planner(flat)
    return _Writer(flat, planner).write(planner.plan())


def _auto(flat: Flat, name: str) -> bool:
    """Whether a node has the name Keras gives a layer or op it was not told to name (`add_3`)."""
    e = flat.entries.get(name, {})
    kind = str(e.get("type") or e.get("op") or "")
    stem = keras_snake(kind.rsplit(".", 1)[-1]) if kind else ""
    return bool(stem) and re.match(rf"^{re.escape(stem)}(_[0-9]+)?$", name) is not None


def _prefix(flat: Flat, names: list[str]) -> str:
    """The common prefix of the names the model's author gave (automatic names left out)."""
    named = [n for n in names if not _auto(flat, n)]
    return _name_prefix(named) if len(named) >= 2 else ""


def _name_prefix(names: list[str]) -> str:
    """The common prefix of names, up to its last `_` (`conv2_block1_` of `conv2_block1_1_conv`, ...)."""
    prefix = _common_prefix(names) if len(names) > 1 else ""
    return prefix[:prefix.rfind("_") + 1] if "_" in prefix else ""


def _common_prefix(names: list[str]) -> str:
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


class _Writer:
    def __init__(self, flat: Flat, planner: _Planner) -> None:
        self.flat = flat
        self.planner = planner
        self.taken = set(flat.order) | set(flat.spec_inputs)
        self.renames: dict[str, str] = {}
        self.blocks: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, list[str]] = {}  # block -> its nodes' names (in the expansion of its body)
        self.absorbed: dict[str, tuple[str, dict[str, Any]]] = {}  # block -> (inner block, its arguments)
        self.block_names: dict[str, str] = {}  # the name a block was defined with -> its final name

    def local_names(self, names: list[str]) -> tuple[str, list[str]]:
        """(the instance prefix, the nodes' names without it) for one repetition."""
        prefix = _prefix(self.flat, names)
        local: list[str] = []
        for name in names:
            stem = name[len(prefix):] if prefix and name.startswith(prefix) else (re.sub(r"_[0-9]+$", "", name)
                                                                                    or "node")
            cand, k = stem, 2
            while cand in local:
                cand, k = f"{stem}_{k}", k + 1
            local.append(cand)
        if not all(_LOCAL.match(x) for x in local):
            return "", [f"node_{i + 1}" for i in range(len(names))]
        return prefix, local

    def wanted_instance(self, rep_names: list[list[str]]) -> str:
        """An instance's name from its nodes' names: `conv2_block1` for one repetition, and
        `conv2_block2_to_3` for repetitions whose prefixes count up."""
        prefixes = [_prefix(self.flat, names).rstrip("_-") for names in rep_names]
        if len(prefixes) == 1 or not all(prefixes):
            return prefixes[0] if len(prefixes) == 1 else ""
        numbered = [re.match(r"^(.*?)([0-9]+)$", p) for p in prefixes]
        if all(numbered) and len({m.group(1) for m in numbered if m}) == 1:
            last = numbered[-1]
            assert last is not None
            return f"{prefixes[0]}_to_{last.group(2)}"
        return _common_prefix(prefixes).rstrip("_-")

    def block_name(self, entry: dict[str, Any]) -> str:
        kind = entry.get("type") or entry.get("op") or "node"
        stem = keras_snake(str(kind)).replace(".", "_") + "_block"
        name, k = stem, 2
        while name in self.blocks or name in self.taken:
            name, k = f"{stem}_{k}", k + 1
        return name

    def instance_name(self, wanted: str, block: str, expanded: list[str]) -> str:
        stem = wanted.rstrip("_-") if wanted and _NAME.match(wanted.rstrip("_-") or "-") else block
        k = 2
        name = stem
        while name in self.taken or any(f"{name}_{x}" in self.taken for x in expanded):
            name, k = f"{stem}_{k}", k + 1
        return name

    def write(self, chosen: list[_Candidate]) -> Result | None:
        planner = self.planner
        starts: dict[int, tuple[_Candidate, list[int], str]] = {}
        for c in sorted(chosen, key=lambda c: c.runs[0][0]):  # blocks named and listed as they first appear
            bname = self.define(c)[0]
            for run in c.runs:
                starts[run[0]] = (c, run, bname)
        # The top level as it will be written, a placeholder named after its output for each instance.
        items: list[tuple[str, Any]] = []  # (flat name of the node or of the instance's output, unit)
        u = 0
        while u < len(planner.units):
            if u in starts:
                c, reps, _ = starts[u]
                items.append((planner.nodes_of(reps[-1], c.k)[-1], u))
                u = reps[-1] + c.k
                continue
            first, last = planner.units[u]
            items.extend((name, None) for name in self.flat.order[first:last + 1])
            u += 1
        nested = nest.plan(self.blocks, self.top_body(items, starts), self.planner.finder.external,
                           self.planner.finder.indexed | self.shared(), self.taken)
        self.nest_blocks(nested)
        # Free the flat names of everything inside blocks, so that instances may take them.
        for c in chosen:
            for run in c.runs:
                for i in run:
                    for n in planner.nodes_of(i, c.k):
                        self.taken.discard(n)
        edits = {e.start: e for e in nested.edits.get(nest.TOP, [])}
        for e in edits.values():
            self.taken.difference_update(items[i][0] for i in range(e.start, e.start + e.count))
        top: list[tuple[str, dict[str, Any], Any]] = []
        i = 0
        while i < len(items):
            name, unit = items[i]
            if i in edits:
                top.append(self.inner_instance(edits[i], [n for n, _ in items[i:i + edits[i].count]]))
                i += edits[i].count
                continue
            if unit is not None:
                c, reps, bname = starts[unit]
                top.append(self.instance(c, reps, bname))
            else:
                top.append((name, dict(self.flat.entries[name]), self.flat.inputs[name][1]))
            i += 1
        if not self.blocks:
            return None
        renamed = [(n, e, map_refs(r, lambda x: self.renames.get(x, x)) if r is not None else None)
                   for n, e, r in top]
        return Result(renamed, self.blocks, self.renames)

    def shared(self) -> set[str]:
        return {e["share"] for e in self.flat.entries.values() if isinstance(e.get("share"), str)}

    def top_body(self, items: list[tuple[str, Any]], starts: dict[int, Any]) -> dict[str, dict[str, Any]]:
        """The top-level nodes as the spec writes them (`inputs` only where not implicit), for
        :func:`nest.plan`; an instance is a placeholder."""
        nodes: dict[str, dict[str, Any]] = {}
        previous = self.flat.spec_inputs[0] if len(self.flat.spec_inputs) == 1 else None
        for name, unit in items:
            if unit is not None:
                c, reps, bname = starts[unit]
                nodes[name] = {"block": bname}
            else:
                style, refs = self.flat.inputs[name]
                entry = dict(self.flat.entries[name])
                if not (style == "single" or (style == "positional" and isinstance(refs, str))) or refs != previous:
                    entry["inputs"] = refs
                nodes[name] = entry
            previous = name
        return nodes

    def nest_blocks(self, nested: nest.Nested) -> None:
        """Blocks' bodies with their inner blocks' instances; a block whose body is just one instance
        that passes its parameters through is replaced by the inner block (:func:`nest.absorbed`)."""
        for bname, edits in nested.edits.items():
            if bname != nest.TOP:
                self.blocks[bname], moved = nest.rewrite(self.blocks[bname], edits)
                self.locals[bname] = [moved.get(x, x) for x in self.locals[bname]]
        for bname in list(self.blocks):
            found = nest.absorbed(self.blocks[bname])
            if found is not None:
                inner, _ = found
                (local,) = self.blocks[bname]["nodes"]
                last = list(nested.inner[inner]["nodes"])[-1]
                self.locals[bname] = [x[len(local) + 1:] if x != local else last for x in self.locals[bname]]
                self.absorbed[bname] = found
                del self.blocks[bname]
        self.blocks = nested.inner | self.blocks  # the inner blocks first: the others use them
        self.renumber(nested)

    def renumber(self, nested: nest.Nested) -> None:
        """Blocks numbered in the order they are listed (`conv2d_block`, `conv2d_block_2`, ...), now
        that inner blocks came first and absorbed blocks went."""
        new: dict[str, str] = {}
        for old in self.blocks:
            stem = re.sub(r"_[0-9]+$", "", old) if old.endswith(tuple("0123456789")) else old
            name, k = stem, 2
            while name in new.values() or name in self.taken:
                name, k = f"{stem}_{k}", k + 1
            new[old] = name
        if all(k == v for k, v in new.items()):
            return

        def named(entry: dict[str, Any]) -> dict[str, Any]:
            return dict(entry, block=new.get(entry["block"], entry["block"])) if "block" in entry else entry

        self.blocks = {new[b]: dict(d, nodes={n: named(e) for n, e in d["nodes"].items()})
                       for b, d in self.blocks.items()}
        self.absorbed = {b: (new[inner], args) for b, (inner, args) in self.absorbed.items()}
        self.block_names = new
        for edit in nested.edits.get(nest.TOP, []):
            edit.entry = named(edit.entry)

    def inner_instance(self, edit: nest.Edit, names: list[str]) -> tuple[str, dict[str, Any], Any]:
        """A top-level instance of an inner block, for the nodes `names`."""
        bname = str(edit.entry["block"])
        reps = edit.count // len(edit.stems)
        suffixes = [f"{r}_{x}" if reps > 1 else x for r in range(1, reps + 1) for x in edit.stems]
        name = self.instance_name(edit.wanted or names[-1], bname, suffixes)
        self.taken.update(edit.expanded(name))
        self.renames.update(zip(names, edit.expanded(name)))
        entry = {k: v for k, v in edit.entry.items() if k != "inputs"}
        return name, entry, self.flat.inputs[names[0]][1]

    def define(self, c: _Candidate) -> tuple[str, Params, list[str]]:
        planner = self.planner
        first_names = planner.nodes_of(c.runs[0][0], c.k)
        values = planner.occurrence_values(c.runs, c.k)
        params = _params(values, self.flat, first_names)
        _, local = self.local_names(first_names)
        index = {n: i for i, n in enumerate(first_names)}
        x = "x" if "x" not in local else "inputs_x"
        nodes: dict[str, dict[str, Any]] = {}
        previous: str | None = None
        for i, name in enumerate(first_names):
            entry = dict(self.flat.entries[name])
            for (pos, key), expr in params.where.items():
                if pos == i:
                    entry[key] = expr
            refs = map_refs(self.flat.inputs[name][1], lambda r: local[index[r]] if r in index else x)
            implicit = previous if previous is not None else x
            if not (isinstance(refs, str) and refs == implicit and self.flat.inputs[name][0] in ("single",
                                                                                                  "positional")):
                entry["inputs"] = refs
            nodes[local[i]] = entry
            previous = local[i]
        bname = self.block_name(self.flat.entries[first_names[0]])
        block: dict[str, Any] = {} if x == "x" else {"inputs": x}  # one input is `x` by default
        if params.names:
            block["params"] = {p: params.defaults[p] for p in params.names}
        block["nodes"] = nodes
        self.blocks[bname] = block
        self.locals[bname] = local
        return bname, params, first_names

    def instance(self, c: _Candidate, reps: list[int], bname: str) -> tuple[str, dict[str, Any], Any]:
        """An instance of block `bname` (as :meth:`define` named it) for repetitions `reps`."""
        planner = self.planner
        local = self.locals[bname]
        final = self.block_names.get(bname, bname)
        rep_names = [planner.nodes_of(i, c.k) for i in reps]
        prefix = self.wanted_instance(rep_names)
        values = planner.occurrence_values([reps], c.k)[0]
        params = _params(planner.occurrence_values(c.runs, c.k), self.flat, planner.nodes_of(c.runs[0][0], c.k))
        expanded = ([f"{lname}" for lname in local] if len(reps) == 1
                    else [f"{r}_{lname}" for r in range(1, len(reps) + 1) for lname in local])
        name = self.instance_name(prefix, final, expanded)
        self.taken.add(name)
        self.taken.update(f"{name}_{e}" for e in expanded)
        for r, names in enumerate(rep_names, start=1):
            for lname, n in zip(local, names):
                self.renames[n] = f"{name}_{lname}" if len(reps) == 1 else f"{name}_{r}_{lname}"
        self.renames[rep_names[-1][-1]] = name
        entry: dict[str, Any] = {"block": final}
        if len(reps) > 1:
            entry["repeat"] = len(reps)
        first_names = planner.nodes_of(c.runs[0][0], c.k)
        keys = {p: k for k, expr in params.where.items() for p in [str(expr)[1:]] if p in params.names}
        per_rep = [{p: rep.get(k, default_of(self.flat.entries[first_names[k[0]]], k[1])) for p, k in keys.items()}
                   for rep in values]
        if bname in self.absorbed:  # the block is an inner block's instance: instantiate that one
            inner, args = self.absorbed[bname]
            defaults = self.blocks[inner].get("params", {})
            per_rep = [{q: (rep[str(v)[1:]] if isinstance(v, Expr) else v) if q in args else defaults[q]
                        for q, v in ((q, args.get(q)) for q in defaults)} for rep in per_rep]
            entry = {"block": inner} | ({"repeat": len(reps)} if len(reps) > 1 else {})
            params_defaults = defaults
        else:
            params_defaults = {p: params.defaults[p] for p in params.names}
        entry.update(instance_args(params_defaults, per_rep))
        ext = planner.ext[reps[0]]
        assert ext is not None
        return name, entry, ext
