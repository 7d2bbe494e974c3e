"""The `${...}` language: expressions over variables and block parameters, put into spec values.

``${expr}`` is a name or integer arithmetic (``+ - * / // %``, parentheses); ``$name`` is short
for ``${name}``. A string that is exactly one of them takes the value with its type; inside longer
text the value is interpolated, and ``$$`` escapes a ``$``. Names are looked up in a scope
(:class:`graphspec.spec.variables.Scope`).

Also the plumbing the expansion modules share: :class:`Reporter` (diagnostics located by spec
path) and the :class:`Failed` and :class:`Abort` signals.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any, Protocol

from graphspec.diagnostics import Diagnostic, PathKey, Severity
from graphspec.spec.source import Source

MAX_TEXT = 10_000  # characters of an interpolated string
MAX_EXPR = 200  # characters of one ${...} expression
MAX_NUMBER = 10**15

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_SHORT = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_\-]*)$")
_EXACT = re.compile(r"^\$\{([^{}]*)\}$")
_TOKEN = re.compile(r"\$\$|\$\{([^{}]*)\}")


# A name directly followed by `-` and a name or number: `${a-b}` (a name, since names may
# contain `-`) or, in a longer expression, `a-b + 1` (which Python would read as a subtraction).
_DASHED = re.compile(r"(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_]*-[A-Za-z0-9_]+")


def _expressions(text: str) -> list[str]:
    """The expressions of the `${...}` (and `$name`) in one string value."""
    if "$" not in text:
        return []
    m = _SHORT.match(text) or _EXACT.match(text)
    if m:
        return [m.group(1)]
    return [tok.group(1) for tok in _TOKEN.finditer(text) if tok.group(0) != "$$"]


def names_in(text: str) -> list[str]:
    """The names the `${...}` in a string refer to (for ordering variables; errors come later)."""
    out: list[str] = []
    for expr in _expressions(text):
        expr = expr.strip()
        if _NAME.match(expr):
            out.append(expr)
        elif 0 < len(expr) <= MAX_EXPR:
            try:
                tree = ast.parse(expr, mode="eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            out.extend(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return out


class Abort(Exception):
    """A budget was exceeded: stop expanding (the diagnostic is recorded)."""


class Failed(Exception):
    """One value could not be substituted (the diagnostic is recorded)."""


def fmt(value: Any) -> str:
    """A value for a message: as JSON where it can be, at most 60 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Reporter:
    """Diagnostics about a spec being expanded, located by their path in its source."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.diags: list[Diagnostic] = []

    def error(self, code: str, message: str, path: PathKey, *, key: bool = False, hint: str | None = None,
              notes: tuple[str, ...] = ()) -> None:
        self.diags.append(Diagnostic(code, Severity.ERROR, message, self.src.location(path, key=key), hint,
                                     tuple(reversed(notes))))

    def budget(self, message: str, path: PathKey, notes: tuple[str, ...] = (), hint: str | None = None) -> Abort:
        self.error("GS500", message, path, key=True, hint=hint, notes=notes)
        return Abort()


class Names(Protocol):
    """Where ``${...}`` looks names up: a :class:`graphspec.spec.variables.Scope`."""

    def lookup(self, name: str, path: PathKey, notes: tuple[str, ...]) -> Any: ...

    def has(self, name: str) -> bool: ...


_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Evaluator(Reporter):
    """Evaluates the ``${...}`` in a string, noting each value it puts in by source path."""

    def __init__(self, src: Source) -> None:
        super().__init__(src)
        self.value_notes: dict[PathKey, str] = {}  # source path of a `${...}` value -> note

    def string(self, text: str, scope: Names, path: PathKey, notes: tuple[str, ...]) -> Any:
        if "$" not in text:
            return text
        m = _SHORT.match(text) or _EXACT.match(text)
        if m:
            value = self.evaluate(m.group(1), scope, path, notes)
            self.value_notes[path] = f"`{text}` is {fmt(value)}"
            return value
        parts: list[str] = []
        pos = 0
        for tok in _TOKEN.finditer(text):
            parts.append(text[pos:tok.start()])
            pos = tok.end()
            if tok.group(0) == "$$":
                parts.append("$")
                continue
            value = self.evaluate(tok.group(1), scope, path, notes)
            if isinstance(value, bool):
                parts.append("true" if value else "false")
            elif isinstance(value, (int, float, str)):
                parts.append(str(value))
            else:
                self.error("GS121", f"`{tok.group(0)}` is {fmt(value)}: only numbers, text and booleans can "
                           "be put inside text", path, notes=notes,
                           hint=f"write the whole value as `{tok.group(0)}` to use it as it is")
                raise Failed
            if sum(map(len, parts)) > MAX_TEXT:
                raise self.budget(f"interpolated text is longer than {MAX_TEXT:,} characters", path, notes)
        parts.append(text[pos:])
        return "".join(parts)

    def evaluate(self, expr: str, scope: Names, path: PathKey, notes: tuple[str, ...]) -> Any:
        text = expr.strip()
        if _NAME.match(text):
            if "-" in text and not scope.has(text):
                left, _, right = text.partition("-")
                self.error("GS120", f"unknown variable `{text}`: names may contain `-`, so `{text}` is one name, "
                           "not a subtraction", path, notes=notes,
                           hint=f"to subtract, put spaces around `-`: `${{{left} - {right}}}`")
                raise Failed
            return scope.lookup(text, path, notes)
        dashed = _DASHED.search(text)
        if dashed:
            word = dashed.group(0)
            left, _, right = word.partition("-")
            self.error("GS121", f"`${{{text}}}`: write spaces around `-` in an expression (`{word}` could be a "
                       "name or a subtraction)", path, notes=notes,
                       hint=f"`{left} - {right}` subtracts; a variable whose name has `-` can only be used "
                       f"alone, as `${{name-with-dashes}}`")
            raise Failed
        if not text:
            self.error("GS121", "empty `${}`", path, notes=notes, hint="write `${name}`")
            raise Failed
        if len(text) > MAX_EXPR:
            self.error("GS121", f"`${{...}}` expression longer than {MAX_EXPR} characters", path, notes=notes)
            raise Failed
        try:
            tree = ast.parse(text, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            self.error("GS121", f"`${{{text}}}` is not a name or an arithmetic expression", path, notes=notes,
                       hint="write `${name}` or arithmetic such as `${4 * filters}` (+ - * / // % and parentheses)")
            raise Failed from None
        try:
            value = self._eval(tree.body, text, scope, path, notes)
        except ZeroDivisionError:
            self.error("GS121", f"`${{{text}}}` divides by zero", path, notes=notes)
            raise Failed from None
        except RecursionError:
            self.error("GS121", f"`${{{text}}}` is nested too deeply", path, notes=notes)
            raise Failed from None
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            self.error("GS121", f"`${{{text}}}` is not a finite number", path, notes=notes)
            raise Failed
        return value

    def _eval(self, node: ast.AST, text: str, scope: Names, path: PathKey, notes: tuple[str, ...]) -> Any:
        value: Any
        if isinstance(node, ast.Constant) and _number(node.value):
            value = node.value
        elif isinstance(node, ast.Name):
            value = scope.lookup(node.id, path, notes)
            if not _number(value):
                self.error("GS121", f"`{node.id}` is {fmt(value)}, not a number: `${{{text}}}` cannot "
                           "compute with it", path, notes=notes)
                raise Failed
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self._eval(node.operand, text, scope, path, notes)
            value = -operand if isinstance(node.op, ast.USub) else operand
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = self._eval(node.left, text, scope, path, notes)
            right = self._eval(node.right, text, scope, path, notes)
            value = _BINOPS[type(node.op)](left, right)
        else:
            self.error("GS121", f"`${{{text}}}`: only names, numbers, + - * / // % and parentheses are allowed",
                       path, notes=notes, hint="for example `${4 * filters}` or `${width // 2}`")
            raise Failed
        if abs(value) > MAX_NUMBER:
            self.error("GS121", f"`${{{text}}}` is too large ({fmt(value)})", path, notes=notes,
                       hint=f"numbers computed in `${{...}}` are limited to {MAX_NUMBER:.0e}")
            raise Failed
        return value
