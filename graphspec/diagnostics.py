"""Diagnostics are data: every stage appends them, the CLI renders them once.

A diagnostic has a stable code (``GS201``), a severity, a message, the place in
the source it is about, and optionally a hint. The table of codes lives in
:data:`CODES`; ``docs/codes.md`` is generated from it and a test keeps the two
equal.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator
from typing import Any

PathKey = tuple[str | int, ...]


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclasses.dataclass(frozen=True, order=True)
class Location:
    """A place in a spec file; ``line`` and ``col`` are 1-based."""

    file: str
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: Location
    hint: str | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A location may carry notes of its own (graphspec.spec.source.NotedLocation:
        # e.g. the block instance an expanded node comes from).
        extra = tuple(n for n in getattr(self.location, "notes", ()) if n not in self.notes)
        if extra:
            object.__setattr__(self, "notes", self.notes + extra)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[Any, ...]:
        loc = self.location
        return (loc.file, loc.line, loc.col, self.severity is not Severity.ERROR, self.code, self.message)

    def as_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": loc.file,
            "line": loc.line,
            "col": loc.col,
            "end_line": loc.end_line,
            "end_col": loc.end_col,
            "hint": self.hint,
            "notes": list(self.notes),
        }


# code -> (title, example). Codes are stable: never renumber, only add.
CODES: dict[str, tuple[str, str]] = {
    # source (YAML) --------------------------------------------------------
    "GS001": ("file cannot be read, is too large, or is not UTF-8", "a 5 MiB spec file"),
    "GS002": ("YAML syntax error", "an unclosed `[`"),
    "GS003": ("YAML resource limit: nesting depth or alias expansion", "a billion-laughs alias bomb"),
    "GS004": ("duplicate mapping key", "two nodes both named `dense`"),
    "GS005": ("YAML tag not allowed (specs are data, not code)", "`!!python/object/apply:os.system`"),
    "GS006": ("the document is not a mapping", "a spec that is a bare list"),
    # schema ----------------------------------------------------------------
    "GS100": ("required field missing", "an input without `shape`"),
    "GS101": ("unknown field", "`ouputs:` instead of `outputs:`"),
    "GS102": ("wrong type for a field", "`shape: 784` instead of `shape: [784]`"),
    "GS103": ("invalid value for a field", "`dtype: float33`"),
    "GS104": ("unsupported format version", "`graphspec: 7`"),
    "GS105": ("a node must have exactly one of type/share/model/application/op", "a node with both `type` and `model`"),
    # layers and arguments -------------------------------------------------
    "GS110": ("unknown layer type", "`type: Dense2`"),
    "GS111": ("unknown argument for this layer", "`unit: 64` on a Dense"),
    "GS112": ("invalid argument value", "`units: yes`, `units: \"64\"`, `rate: .nan`"),
    "GS113": ("required argument missing", "a Dense without `units`"),
    "GS114": ("unknown name in a closed table (activation, initializer, ...)", "`activation: rellu`"),
    "GS115": ("name not allowed: it would run or load code", "`type: Lambda`, `activation: os.system`"),
    "GS116": ("unknown application", "`application: VGG91`"),
    "GS117": ("unknown optimizer, loss or metric", "`optimizer: adamm`"),
    "GS118": ("custom layer type given by a plugin could not be loaded", "`--plugin missing.py`"),
    # variables and blocks (graphspec.spec.expand) -------------------------------
    "GS120": ("unknown variable or block parameter in `${...}`", "`units: ${widht}` where `vars` has `width`"),
    "GS121": ("invalid `${...}` expression", "`${width ** 2}`, `${width / 0}`, `${[1, 2]}`"),
    "GS122": ("variables refer to each other in a cycle", "`vars: {a: ${b}, b: ${a}}`"),
    "GS123": ("unknown block", "`block: botleneck`"),
    "GS124": ("required block parameter missing", "an instance of `bottleneck` without `filters`"),
    "GS125": ("unknown block parameter", "`filter: 64` where the block's parameter is `filters`"),
    "GS126": ("block inputs or outputs do not match, or a block names something it does not define",
              "`inputs: [a, b]` for a block with one input; `outputs: out` with no node `out`"),
    "GS127": ("blocks instantiate each other recursively", "block `a` uses block `b`, which uses `a`"),
    "GS128": ("invalid `repeat` or `first`", "`repeat: 0`"),
    "GS129": ("an expanded node's name is already taken", "a node `stage_conv` next to an instance `stage` "
              "of a block with a node `conv`"),
    # graph -------------------------------------------------------------------
    "GS200": ("reference to an undefined name", "`inputs: dense_3` where no `dense_3` exists"),
    "GS201": ("name defined twice", "an input and a node both named `x`"),
    "GS202": ("cycle in the graph", "`a` takes `b`, `b` takes `a`"),
    "GS203": ("model output not reachable from the model's inputs", "an output computed from another input"),
    "GS204": ("node is not used by any model (warning)", "a dangling Dense"),
    "GS205": ("cannot tell a node's input: give `inputs:`", "the first node of a spec with two inputs"),
    "GS206": ("wrong number of inputs for this node", "`Add` with one input"),
    "GS207": ("reference to an intermediate layer that the node does not have", "`vgg19.block9_conv1`"),
    "GS208": ("invalid model definition", "a model with no outputs"),
    # shapes ------------------------------------------------------------------
    "GS300": ("shape mismatch found statically", "`Add` of (32, 32, 64) and (10, 10, 64)"),
    "GS301": ("Keras rejected the layer while building", "a Reshape whose size does not match"),
    "GS302": ("layer not shape-checked statically (warning)", "a custom plugin layer"),
    # compile / checks --------------------------------------------------------
    "GS400": ("loss or loss weight names an output the model does not have", "`loss: {priorty: mse}`"),
    "GS401": ("an output has no loss (warning)", "two outputs, one loss key"),
    "GS402": ("invalid compile settings", "three losses for two outputs"),
    "GS410": ("invalid data or training settings", "`data.source: mnst`"),
    "GS411": ("the data does not match the model: a missing input or output name, a wrong shape or dtype",
              "28x28 images for an input of shape [784] without `{reshape: [784]}`"),
    "GS412": ("a callback monitors a metric the model does not log", "`monitor: val_acc` with `metrics: [accuracy]`"),
    "GS413": ("unknown dataset name", "`source: {kind: keras, name: mnst}`"),
    # budgets -----------------------------------------------------------------
    "GS500": ("budget exceeded: parameters, weight memory or dimension size", "a Dense of 10^12 units"),
    "GS501": ("expectation stated in the spec does not hold", "`expect: {params: 100}` on a 55,050-parameter model"),
    # overrides / cli ------------------------------------------------------------
    "GS600": ("invalid --set override", "`--set compile.optimizer`"),
    "GS601": ("plugin could not be imported", "`--plugin nonexistent_module`"),
    "GS602": ("the spec defines several models: name one with --model", "`save` on autoencoder.yaml"),
    # import (graphspec import) ------------------------------------------------
    "GS700": ("the model to import cannot be loaded or is not a Keras model",
              "a .keras file with a custom layer that no --plugin defines"),
    "GS701": ("the model has a layer or argument the format cannot express",
              "a `Lambda` layer; a custom layer that no plugin defines, or whose get_config() leaves out "
              "an argument of its __init__"),
    "GS702": ("the model calls an operation the format cannot express as an `op:` node",
              "`x[indices]` (indexing with a tensor)"),
    "GS703": ("the model's structure cannot be expressed in a spec",
              "a subclassed model (its `call` or `train_step` is code); TimeDistributed over a model"),
    "GS704": ("the imported spec does not rebuild the same model (nothing is written)",
              "a graphspec bug: please report it with the model"),
    # internal ------------------------------------------------------------------
    "GS900": ("internal error in graphspec (a bug: please report it)", ""),
}


class Diagnostics:
    """An ordered, de-duplicated collection of diagnostics."""

    def __init__(self, items: Iterable[Diagnostic] = ()) -> None:
        self._items: list[Diagnostic] = []
        self._seen: set[tuple[Any, ...]] = set()
        self.extend(items)

    def add(self, diag: Diagnostic) -> None:
        key = (diag.code, diag.location, diag.message)
        if key not in self._seen:
            self._seen.add(key)
            self._items.append(diag)

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        for d in diags:
            self.add(d)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self._items, key=Diagnostic.sort_key)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self._items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self._items if not d.is_error]

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self._items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
