"""The closed tables every name in a spec resolves through.

Built from :mod:`graphspec.spec.catalog_data` (generated from Keras by
``tools/gen_catalog.py``). Nothing outside these tables can be named by a spec:
no dotted import paths, no `Lambda`, no arbitrary modules.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

from graphspec.spec.catalog_data import CATALOG

KERAS_VERSION: str = CATALOG["keras_version"]
LAYERS: dict[str, Any] = CATALOG["layers"]
APPLICATIONS: dict[str, Any] = CATALOG["applications"]
OPS: dict[str, Any] = CATALOG["ops"]
# What an argument of a layer means, from Keras's docstrings: the words several layers share, by argument name
# (and the base layer's `name`, `dtype`, `trainable`); a layer's own words are in its entry's `arg_docs`.
LAYER_ARG_DOCS: dict[str, str] = CATALOG.get("layer_arg_docs", {})
# keras.ops functions whose first argument is a list of tensors.
SEQUENCE_OPS = {"concatenate", "stack", "hstack", "vstack", "dstack"}

# Names that a spec may try in order to run or load code. They are refused
# with their own code (GS115) so that an attack is reported as such.
DANGEROUS_LAYERS = {
    "Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer",
}

# Call style of layers whose call takes several tensors.
LIST_INPUT_LAYERS = {
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "Attention", "AdditiveAttention", "HashedCrossing",
}
POSITIONAL_INPUT_LAYERS = {"MultiHeadAttention", "GroupQueryAttention"}


def op_takes_input(op: str, args: dict[str, Any] | Any) -> bool:
    """Whether an `op:` node without `inputs:` takes the node before it: yes, unless its arguments
    already give every required parameter of the function (`{op: arange, start: 0, stop: 16}`)."""
    entry = OPS.get(op) if isinstance(op, str) else None
    if entry is None or not isinstance(args, dict):
        return True
    required = [k for k, p in entry["params"].items() if p.get("required")]
    return not required or any(k not in args for k in required)


def arg_doc(layer: str, arg: str) -> str | None:
    """What argument `arg` of layer `layer` means (its first sentence in Keras's docstring), or None."""
    entry = LAYERS.get(layer)
    if entry is not None and "alias_of" in entry:
        entry = LAYERS.get(entry["alias_of"], entry)
    own = entry.get("arg_docs", {}) if entry is not None else {}
    return own.get(arg) or LAYER_ARG_DOCS.get(arg)


def snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Table:
    """A closed set of names: class names (with signatures) and function aliases."""

    def __init__(self, kind: str, classes: dict[str, Any], aliases: list[str]) -> None:
        self.kind = kind
        self.classes = classes
        self.aliases = set(aliases)

    @functools.cached_property
    def names(self) -> list[str]:
        return sorted(set(self.classes) | self.aliases)

    def resolve(self, name: str) -> str | None:
        """The canonical name for `name`, or None if it is not in the table."""
        if name in self.classes or name in self.aliases:
            return name
        return None

    def suggest(self, name: str) -> str | None:
        return did_you_mean(name, self.names)


def did_you_mean(name: str, choices: list[str] | set[str] | Any) -> str | None:
    """A hint for a misspelt name, or None."""
    choices = [c for c in choices if c != name]  # never "did you mean `x`?" for `x` itself
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return f"did you mean `{lowered[name.lower()]}`?"
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.7)
    if not close:
        close = [c for c in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.7)]
        close = [lowered[c] for c in close]
    return f"did you mean `{close[0]}`?" if close else None


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours), or
    `limit + 1` as soon as it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


def near(name: str, choices: list[str] | set[str] | Any) -> str | None:
    """The choice a misspelt `name` most likely meant: same but for case, or a few edits away
    (one per four characters). None when nothing is that close: then it is not a misspelling."""
    choices = [c for c in choices if c != name]
    lowered = name.lower()
    for c in choices:
        if c.lower() == lowered:
            return str(c)
    limit = max(1, len(name) // 4)
    scored = sorted((edit_distance(lowered, str(c).lower(), limit), str(c)) for c in choices)
    return scored[0][1] if scored and scored[0][0] <= limit else None


ACTIVATIONS = Table("activation", {}, CATALOG["activations"])
INITIALIZERS = Table("initializer", CATALOG["initializers"], CATALOG["initializer_aliases"])
REGULARIZERS = Table("regularizer", CATALOG["regularizers"], CATALOG["regularizer_aliases"])
CONSTRAINTS = Table("constraint", CATALOG["constraints"], CATALOG["constraint_aliases"])
# Short names Keras's `losses.get` / `metrics.get` accept besides the function names.
_SHORT = ["mse", "mae", "mape", "msle", "kld", "kl_divergence"]
LOSSES = Table("loss", CATALOG["losses"], CATALOG["loss_aliases"] + _SHORT)
METRICS = Table(
    "metric", CATALOG["metrics"],
    CATALOG["metric_aliases"] + ["accuracy", "acc", "crossentropy", "ce", "mse", "mae", "mape", "msle"],
)
# Metric and loss functions of keras.metrics, for arguments that take a function (MeanMetricWrapper's `fn`).
METRIC_FUNCTIONS = Table("metric function", {}, CATALOG["metric_aliases"])
OPTIMIZERS = Table(
    "optimizer", CATALOG["optimizers"], [n.lower() for n in CATALOG["optimizers"]]
)
SCHEDULES = Table("learning-rate schedule", CATALOG["schedules"], [])
