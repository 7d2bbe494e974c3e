"""Static shapes that a plugin layer declares for lint, evaluated without running the plugin.

A plugin class may carry a dict of expressions (read from its source with :mod:`ast` by
:mod:`graphspec.spec.plugins`; the file is never imported by lint)::

    class CustomDense(keras.layers.Layer):
        graphspec_shapes = {
            "output": "[*input[:-1], units]",
            "params": "input[-1] * units + units",
            "macs": "prod(input) * units",
        }

The expressions are a small language evaluated here, not Python: integer arithmetic
(``+ - * // %``), comparisons, ``and``/``or``/``not``, ``a if c else b``, lists with ``*``
unpacking, indexing and slicing, and ``prod``, ``sum``, ``len``, ``min``, ``max``, ``int``.
The names are ``input`` (the first input's shape, without the batch axis), ``inputs`` (every
input's shape) and the layer's arguments (the spec's, else the literal defaults of
``__init__``). ``None`` is an unknown dimension: arithmetic on it gives ``None``. There are
no attributes, no other calls, no loops, and the sizes of numbers and lists are bounded.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graphspec.analysis.shapes._registry import LayerShapes, NoRule, Shape

MAX_CHARS = 1000
MAX_NODES = 300
MAX_INT = 10**30
MAX_LIST = 64


class DeclarationError(Exception):
    """The declaration is malformed, or one of its expressions cannot be evaluated."""

    def __init__(self, message: str, key: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.hint = hint


def _prod(values: Any) -> Any:
    items = _list(values, "prod")
    return None if any(v is None for v in items) else _bound(math.prod(items))


def _sum(values: Any) -> Any:
    items = _list(values, "sum")
    return None if any(v is None for v in items) else _bound(sum(items))


def _len(values: Any) -> int:
    return len(_list(values, "len"))


def _min(*values: Any) -> Any:
    items = _list(values[0], "min") if len(values) == 1 else list(values)
    return None if not items or any(v is None for v in items) else min(items)


def _max(*values: Any) -> Any:
    items = _list(values[0], "max") if len(values) == 1 else list(values)
    return None if not items or any(v is None for v in items) else max(items)


def _int(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeclarationError(f"int() of {value!r}")
    return _bound(int(value))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "prod": _prod, "sum": _sum, "len": _len, "min": _min, "max": _max, "int": _int,
}


def _list(value: Any, fn: str) -> list[Any]:
    if not isinstance(value, list):
        raise DeclarationError(f"{fn}() needs a list, got {value!r}")
    return value


def _bound(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise DeclarationError(f"a number over {MAX_INT:.0e}")
    if isinstance(value, list) and len(value) > MAX_LIST:
        raise DeclarationError(f"a list of more than {MAX_LIST} items")
    return value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b), ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: bool(a < b), ast.LtE: lambda a, b: bool(a <= b),
    ast.Gt: lambda a, b: bool(a > b), ast.GtE: lambda a, b: bool(a >= b),
}


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> ast.Expression | str:
    """An expression's tree (read, never changed, by the evaluator), or why it cannot be one.

    Parsed once per text: every check of a spec evaluates its plugin layers' declarations again.
    """
    if len(text) > MAX_CHARS:
        return f"an expression of more than {MAX_CHARS} characters"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        return f"invalid expression {text!r}: {exc.msg}"
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        return f"an expression of more than {MAX_NODES} parts"
    return tree


class _Evaluator:
    def __init__(self, env: Mapping[str, Any]) -> None:
        self.env = env

    def run(self, text: str) -> Any:
        tree = _parsed(text)
        if isinstance(tree, str):
            raise DeclarationError(tree)
        return self.eval(tree.body)

    def eval(self, node: ast.AST) -> Any:  # noqa: C901 - one branch per construct of the language
        if isinstance(node, ast.Constant):
            if node.value is None or _number(node.value) or isinstance(node.value, bool):
                return node.value
            raise DeclarationError(f"constant {node.value!r} is not a number")
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            close = difflib.get_close_matches(node.id, sorted(self.env), n=1)
            raise DeclarationError(f"unknown name `{node.id}`", hint=f"did you mean `{close[0]}`?" if close
                                   else f"the names are: {', '.join(sorted(self.env))}")
        if isinstance(node, (ast.List, ast.Tuple)):
            out: list[Any] = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    out.extend(_list(self.eval(elt.value), "*"))
                else:
                    out.append(self.eval(elt))
            return _bound(out)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            return self.binop(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.UnaryOp):
            v = self.eval(node.operand)
            if isinstance(node.op, ast.Not):
                return None if v is None else not v
            if isinstance(node.op, (ast.USub, ast.UAdd)) and (v is None or _number(v)):
                return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.BoolOp):
            values = [self.eval(v) for v in node.values]
            if any(v is None for v in values):
                return None
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            left = self.eval(node.left)
            result: Any = True
            for op, right_node in zip(node.ops, node.comparators):
                right = self.eval(right_node)
                if left is None or right is None:
                    return None
                try:
                    result = result and _COMPARE[type(op)](left, right)
                except TypeError:
                    raise DeclarationError(f"cannot compare {left!r} and {right!r}") from None
                left = right
            return result
        if isinstance(node, ast.IfExp):
            test = self.eval(node.test)
            if test is None:
                return None
            return self.eval(node.body if test else node.orelse)
        if isinstance(node, ast.Subscript):
            return self.subscript(self.eval(node.value), node.slice)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fn = FUNCTIONS.get(node.func.id)
            if fn is not None:
                return fn(*[self.eval(a) for a in node.args])
        raise DeclarationError(f"`{ast.unparse(node)}` is not allowed in a declaration",
                               hint="use arithmetic, comparisons, lists, indexing and "
                                    + ", ".join(f"{f}()" for f in FUNCTIONS))

    def binop(self, op: ast.operator, a: Any, b: Any) -> Any:
        if isinstance(op, ast.Add) and isinstance(a, list) and isinstance(b, list):
            return _bound(a + b)
        if a is None and (b is None or _number(b)) or b is None and _number(a):
            return None
        if not (_number(a) and _number(b)):
            raise DeclarationError(f"unsupported operands {a!r} and {b!r}")
        try:
            return _bound(_ARITH[type(op)](a, b))
        except ZeroDivisionError:
            raise DeclarationError("division by zero") from None

    def subscript(self, value: Any, index: ast.AST) -> Any:
        if not isinstance(value, list):
            raise DeclarationError(f"cannot index {value!r}")
        if isinstance(index, ast.Slice):
            parts = [None if p is None else self.eval(p) for p in (index.lower, index.upper, index.step)]
            if any(p is not None and (not isinstance(p, int) or isinstance(p, bool)) for p in parts):
                raise DeclarationError(f"slice bounds must be integers, got {parts}")
            if parts[2] == 0:
                raise DeclarationError("a slice step of 0")
            return value[slice(*parts)]
        i = self.eval(index)
        if not isinstance(i, int) or isinstance(i, bool):
            raise DeclarationError(f"an index must be an integer, got {i!r}")
        if not -len(value) <= i < len(value):
            raise DeclarationError(f"index {i} is out of range for {value!r}")
        return value[i]


def evaluate(layer: str, exprs: Mapping[str, str], args: Mapping[str, Any], inputs: Sequence[Shape],
             problem: str | None = None) -> LayerShapes:
    """Output shapes, parameters and MACs from a declaration.

    Raises :class:`DeclarationError` when the declaration is wrong or does not evaluate
    to shapes and counts, and :class:`NoRule` when the parameter count depends on an
    unknown dimension.
    """
    if problem is not None:
        raise DeclarationError(problem)
    shapes = [list(s) for s in inputs]
    env: dict[str, Any] = {k: v for k, v in args.items() if k.isidentifier()}
    env.update({"inputs": shapes, "input": shapes[0] if shapes else []})
    ev = _Evaluator(env)

    def value(key: str) -> Any:
        try:
            return ev.run(exprs[key])
        except DeclarationError as exc:
            exc.key = key
            raise
        except (RecursionError, MemoryError, OverflowError, TypeError, ValueError) as exc:
            raise DeclarationError(f"cannot evaluate: {type(exc).__name__}", key) from None

    if "output" in exprs:
        outputs = [_shape(value("output"), "output")]
    else:
        outs = value("outputs")
        if not isinstance(outs, list) or not outs:
            raise DeclarationError(f"'outputs' must be a non-empty list of shapes, got {outs!r}", "outputs")
        outputs = [_shape(o, "outputs") for o in outs]
    params = _count(value("params"), "params")
    if params is None:
        raise NoRule(layer, "its declared parameter count depends on an unknown dimension")
    trainable = _count(value("trainable_params"), "trainable_params") if "trainable_params" in exprs else params
    if trainable is None or trainable > params:
        raise DeclarationError(f"'trainable_params' must be a number from 0 to params ({params}), "
                               f"got {trainable!r}", "trainable_params")
    macs = _count(value("macs"), "macs") if "macs" in exprs else None
    if args.get("trainable", True) is False:
        trainable = 0
    return LayerShapes(outputs=tuple(outputs), params=params, trainable_params=trainable, macs=macs)


def _shape(value: Any, key: str) -> Shape:
    if not isinstance(value, list) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in value):
        raise DeclarationError(f"a shape must be a list of sizes (integers >= 0 or None), got {value!r}", key)
    return tuple(value)


def _count(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DeclarationError(f"{key!r} must be an integer >= 0, got {value!r}", key)
    return value
