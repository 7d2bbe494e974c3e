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
from graphspec.spec.expressions import Evaluator, Failed
from graphspec.spec.source import Source

MAX_VALUES = 1_000_000  # values produced by substitution


class Scope:
    """Names visible to ``${...}``: final values, or lazily substituted raw values."""

    def __init__(self, ex: Substituter, what: str, parent: Scope | None = None) -> None:
        self.ex = ex
        self.what = what  # "variable" or "parameter"
        self.parent = parent
        self.values: dict[str, Any] = {}
        self.lazy: dict[str, tuple[Any, PathKey]] = {}
        self.active: list[str] = []
        self.failed: set[str] = set()

    def names(self) -> list[str]:
        own = list(self.values) + [n for n in self.lazy if n not in self.values]
        return own + (self.parent.names() if self.parent else [])

    def has(self, name: str) -> bool:
        return name in self.values or name in self.lazy or bool(self.parent and self.parent.has(name))

    def lookup(self, name: str, path: PathKey, notes: tuple[str, ...]) -> Any:
        if name in self.values:
            return copy.deepcopy(self.values[name])
        if name in self.lazy:
            if name in self.failed:
                raise Failed
            if name in self.active:
                cycle = self.active[self.active.index(name):] + [name]
                raw_path = self.lazy[name][1]
                self.ex.error("GS122", f"{self.what}s refer to each other in a cycle: "
                              f"{' -> '.join(cycle)}", raw_path, notes=notes)
                self.failed.update(cycle)
                raise Failed
            raw, raw_path = self.lazy[name]
            self.active.append(name)
            try:
                value = self.ex.subst(raw, self, raw_path, notes)
            except Failed:
                self.failed.add(name)
                raise
            finally:
                self.active.pop()
            self.values[name] = value
            return copy.deepcopy(value)
        if self.parent is not None and self.parent.has(name):
            return self.parent.lookup(name, path, notes)
        choices = self.names()
        hint = did_you_mean(name, choices)
        if hint is None:
            hint = (f"{self.what}s here: {', '.join(choices)}" if choices
                    else "define it under `vars:` at the top of the spec")
        self.ex.error("GS120", f"unknown {self.what} `{name}`", path, hint=hint, notes=notes)
        raise Failed


class Substituter(Evaluator):
    """Puts the values of ``${...}`` into spec values (mappings, lists, strings), within a budget."""

    def __init__(self, src: Source) -> None:
        super().__init__(src)
        self.produced = 0
        self.globals = Scope(self, "variable")

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
