"""Variables (`vars:`) and block parameters: the scopes ``${...}`` looks names up in, and
substituting ``${...}`` throughout a spec's values.

A scope holds final values and raw values that are substituted when first looked up (a variable
may use other variables; a cycle is an error). An instance of a block looks up its parameters
first, then the spec's variables.
"""

from __future__ import annotations

import copy
from typing import Any

from graphspec.spec.catalog import did_you_mean
from graphspec.diagnostics import PathKey
from graphspec.spec.expressions import Evaluator, Failed, names_in
from graphspec.spec.source import MAX_DEPTH, Source

MAX_VALUES = 1_000_000  # values produced by substitution, in all
MAX_VARIABLE = 100_000  # values one variable or parameter may expand to
CHARS_PER_VALUE = 100  # text counts one value per this many characters


def measure(value: Any) -> tuple[int, int]:
    """(how many values `value` holds: itself, its items, a value per 100 characters of text; how deeply it nests)."""
    total = deepest = 0
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        total += 1
        deepest = max(deepest, depth)
        if isinstance(v, str):
            total += len(v) // CHARS_PER_VALUE
        elif isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
    return total, deepest


def size(value: Any) -> int:
    """How many values `value` holds (see :func:`measure`)."""
    return measure(value)[0]


def references(raw: Any) -> list[str]:
    """The names the `${...}` in a raw value refer to, in order, without recursion."""
    out: list[str] = []
    stack = [raw]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.extend(names_in(v))
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))
    return list(dict.fromkeys(out))


class Scope:
    """Names visible to ``${...}``: final values, or lazily substituted raw values.

    A lazy value is computed when first looked up, after the lazy values it refers to,
    which are found by reading its ``${...}`` (an explicit stack, not recursion: a chain
    of thousands of variables is fine).
    """

    def __init__(self, ex: Substituter, what: str, parent: Scope | None = None) -> None:
        self.ex = ex
        self.what = what  # "variable" or "parameter"
        self.parent = parent
        self.values: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.lazy: dict[str, tuple[Any, PathKey]] = {}
        self.active: list[str] = []
        self.failed: set[str] = set()

    def names(self) -> list[str]:
        own = list(self.values) + [n for n in self.lazy if n not in self.values]
        return own + (self.parent.names() if self.parent else [])

    def has(self, name: str) -> bool:
        return name in self.values or name in self.lazy or bool(self.parent and self.parent.has(name))

    def lookup(self, name: str, path: PathKey, notes: tuple[str, ...]) -> Any:
        if name in self.lazy and name not in self.values:
            if name in self.failed:
                raise Failed
            if name in self.active:
                self._cycle(name, notes)
                raise Failed
            self._compute(name, notes)
            if name in self.failed:
                raise Failed
        if name in self.values:
            value = self.values[name]
            n = self.sizes.get(name)
            if n is None:
                n = self.sizes[name] = size(value)
            self.ex.charge(n, name, self.what, path, notes)
            return copy.deepcopy(value) if isinstance(value, (dict, list)) else value
        if self.parent is not None and self.parent.has(name):
            return self.parent.lookup(name, path, notes)
        choices = self.names()
        hint = did_you_mean(name, choices)
        if hint is None:
            hint = (f"{self.what}s here: {', '.join(choices[:20])}{', ...' if len(choices) > 20 else ''}"
                    if choices else "define it under `vars:` at the top of the spec")
        self.ex.error("GS120", f"unknown {self.what} `{name}`", path, hint=hint, notes=notes)
        raise Failed

    def _pending(self, name: str) -> bool:
        return name in self.lazy and name not in self.values and name not in self.failed

    def _cycle(self, name: str, notes: tuple[str, ...]) -> None:
        cycle = self.active[self.active.index(name):] + [name]
        self.ex.error("GS122", f"{self.what}s refer to each other in a cycle: {' -> '.join(cycle)}",
                      self.lazy[name][1], notes=notes)
        self.failed.update(cycle)

    def _compute(self, target: str, notes: tuple[str, ...]) -> None:
        """Compute `target` and the lazy values it needs, innermost first."""
        base = len(self.active)
        work: list[tuple[str, bool]] = [(target, False)]
        while work:
            name, ready = work.pop()
            if ready:
                self.active.pop()
                if self._pending(name):
                    self._finish(name, notes)
                continue
            if not self._pending(name):
                continue
            if name in self.active[base:]:
                self._cycle(name, notes)
                continue
            self.active.append(name)
            work.append((name, True))
            for dep in reversed(references(self.lazy[name][0])):
                if dep in self.active[base:] and self._pending(dep):
                    self._cycle(dep, notes)
                elif self._pending(dep):
                    work.append((dep, False))

    def _finish(self, name: str, notes: tuple[str, ...]) -> None:
        raw, raw_path = self.lazy[name]
        try:
            value = self.ex.subst(raw, self, raw_path, notes)
        except Failed:
            self.failed.add(name)
            return
        n, depth = measure(value)
        if depth > MAX_DEPTH:
            self.ex.error("GS500", f"{self.what} `{name}` nests {depth:,} levels deep; the limit is {MAX_DEPTH}",
                          raw_path, key=True, notes=notes,
                          hint="a variable that is a list of another variable nests one level deeper")
            self.failed.add(name)
            return
        if n > MAX_VARIABLE:
            self.ex.error("GS500", f"{self.what} `{name}` expands to {n:,} values; the limit is {MAX_VARIABLE:,}",
                          raw_path, key=True, notes=notes,
                          hint="a variable made of copies of other variables multiplies their size")
            self.failed.add(name)
            return
        self.values[name] = value
        self.sizes[name] = n


class Substituter(Evaluator):
    """Puts the values of ``${...}`` into spec values (mappings, lists, strings), within a budget."""

    def __init__(self, src: Source) -> None:
        super().__init__(src)
        self.produced = 0
        self.globals = Scope(self, "variable")

    def charge(self, n: int, name: str, what: str, path: PathKey, notes: tuple[str, ...]) -> None:
        """Count `n` values about to be copied in for `name`; abort past the budget."""
        self.produced += n
        if self.produced > MAX_VALUES:
            raise self.budget(f"variables and blocks expand to more than {MAX_VALUES:,} values (at `{name}`, a "
                              f"{what} of {n:,} values)", path, notes,
                              hint="a value used many times is copied each time: use it in fewer places")

    def subst(self, value: Any, scope: Scope, path: PathKey, notes: tuple[str, ...]) -> Any:
        """`value` with every `${...}` replaced; raises Failed after recording the first problem."""
        self.produced += 1
        if self.produced > MAX_VALUES:
            raise self.budget(f"variables and blocks expand to more than {MAX_VALUES:,} values", path, notes)
        if isinstance(value, str):
            return self.string(value, scope, path, notes)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            failed = False
            for k, v in value.items():
                try:
                    out[k] = self.subst(v, scope, path + (k,), notes)
                except Failed:
                    out[k], failed = v, True
            if failed:
                raise Failed
            return out
        if isinstance(value, list):
            items: list[Any] = []
            failed = False
            for i, v in enumerate(value):
                try:
                    items.append(self.subst(v, scope, path + (i,), notes))
                except Failed:
                    items.append(v)
                    failed = True
            if failed:
                raise Failed
            return items
        return value

    def subst_soft(self, value: Any, scope: Scope, path: PathKey, notes: tuple[str, ...]) -> tuple[Any, bool]:
        """Like subst, but keeps going: (the best value, whether it worked)."""
        try:
            return self.subst(value, scope, path, notes), True
        except Failed:
            return value, False
