"""Diagnostics are data: every stage appends them, the CLI renders them once.

A diagnostic has a stable code (``GS201``), a severity, a message, the place in
the source it is about, and optionally a hint. The table of codes lives in
:data:`CODES`; ``docs/codes.md`` is generated from it and a test keeps the two
equal.
"""

from __future__ import annotations

import dataclasses
import enum
import re
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


MAX_QUOTED = 120  # characters of one quoted value shown in a long message
MAX_SHORT = 400  # messages up to this long are left as they are
MAX_MESSAGE = 2000
MAX_HINT = 1000
MAX_NOTES = 20
_QUOTED = re.compile("|".join(f"{q}[^{q}\\n]{{{MAX_QUOTED + 1},}}{q}" for q in ("'", '"', "`")))


def _shorten(match: re.Match[str]) -> str:
    text = match.group(0)
    quote, inner = text[0], text[1:-1]
    return f"{quote}{inner[:MAX_QUOTED - 40]}...{inner[-20:]}{quote} ({len(inner):,} characters)"


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` with every quoted value over MAX_QUOTED characters shortened, and at most `limit` long."""
    if len(text) <= MAX_SHORT:
        return text
    text = _QUOTED.sub(_shorten, text)
    if len(text) > limit:
        text = f"{text[:limit - 40]}... ({len(text) - limit + 40:,} more characters)"
    return text


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: Location
    hint: str | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A spec's values reach messages (`unknown layer type '...'`): a hostile one
        # may be a megabyte long. Every text a diagnostic carries is clipped here.
        object.__setattr__(self, "message", clip(self.message))
        if self.hint is not None:
            object.__setattr__(self, "hint", clip(self.hint, MAX_HINT))
        if any(len(n) > MAX_SHORT for n in self.notes) or len(self.notes) > MAX_NOTES:
            kept = tuple(clip(n, MAX_HINT) for n in self.notes[:MAX_NOTES])
            if len(self.notes) > MAX_NOTES:
                kept += (f"... and {len(self.notes) - MAX_NOTES:,} more notes",)
            object.__setattr__(self, "notes", kept)
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
    "GS007": ("a YAML 1.1 form that YAML 1.2 reads differently (base-60 or octal numbers, yes/no/on/off)",
              "`kernel_size: 1:3` (63 in YAML 1.1, text in YAML 1.2)"),
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
    "GS119": ("a file named by an argument cannot be used: outside the spec's folder and the data roots, "
              "not a regular file, or too large", "`StringLookup: {vocabulary: /etc/passwd}`"),
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
    # variants (graphspec.spec.extends) -------------------------------------------
    "GS130": ("`extends` is malformed or names a file that cannot be read",
              "`extends: bsae.yaml` where the file is `base.yaml`; `extends: notes.txt`"),
    "GS131": ("specs extend each other in a cycle", "`a.yaml` extends `b.yaml`, which extends `a.yaml`"),
    "GS132": ("a merge marker (`_replace_`, `_delete_`) that has nothing to act on",
              "`dropout_2: _delete_` where the base has no node `dropout_2`"),
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
    "GS303": ("a plugin layer's `graphspec_shapes` declaration is invalid or cannot be evaluated",
              "`\"output\": \"input[:-1] + [unit]\"` where the argument is `units`"),
    "GS304": ("a plugin layer's `graphspec_shapes` declaration disagrees with the layer Keras built",
              "a declared output (10,) for a layer that outputs (12,)"),
    # compile / checks --------------------------------------------------------
    "GS400": ("loss or loss weight names an output the model does not have", "`loss: {priorty: mse}`"),
    "GS401": ("an output has no loss (warning)", "two outputs, one loss key"),
    "GS402": ("invalid compile settings", "three losses for two outputs"),
    "GS410": ("invalid data or training settings", "`data.source: mnst`"),
    "GS411": ("the data does not match the model: a missing input or output name, a wrong shape or dtype",
              "28x28 images for an input of shape [784] without `{reshape: [784]}`"),
    "GS412": ("a callback monitors a metric the model does not log", "`monitor: val_acc` with `metrics: [accuracy]`"),
    "GS413": ("unknown dataset name", "`source: {kind: keras, name: mnst}`"),
    "GS414": ("the global batch does not split evenly over the replicas of a distributed run",
              "`batch_size: 30` with `--distribute data-parallel` over 4 devices"),
    "GS415": ("a data file written in the spec is outside the data root", "`train: ../secrets/.env`"),
    "GS416": ("a data or model file is too large, inflates past its cap, or holds something that is not an array",
              "a 4.7 MB .npz that inflates to 4.8 GB; an .npz member that is text"),
    "GS417": ("data values the model or its loss cannot take: a label out of range, NaN or infinity, a null",
              "sparse label 99 for 3 classes; a NaN in `x`; a Parquet row without a label"),
    "GS440": ("a data folder or manifest is not laid out as its source expects: no class folders, an empty one, "
              "a class `classes` names that has none, a manifest row without a file",
              "`train: data/` where data/cat/ holds no images"),
    "GS441": ("a data file is corrupt, truncated or cannot be decoded", "a PNG cut short; a .txt that is not UTF-8"),
    "GS442": ("a data setting that has no effect on this source", "`cache: true` on a streamed `images` source"),
    "GS443": ("a source needs an optional package that is not installed", "a Parquet file without pyarrow"),
    "GS420": ("a run folder's state.json is unreadable or invalid", "truncated JSON; `epochs_completed: \"x\"`"),
    "GS421": ("the run was trained with a plugin that was not given (or given with other content)",
              "`evaluate RUN` where state.json names payload.py"),
    "GS422": ("the run failed: evaluate and predict need --weights to use it", "`evaluate RUN` of a diverged run"),
    "GS423": ("Keras rejected the data or the model while training", "a shape only `fit` checks"),
    "GS424": ("a run or sweep folder holds a symbolic link (or a foreign file) where graphspec writes",
              "`checkpoints -> /home/me`, `.claim -> ~/.bashrc`"),
    "GS430": ("a file could not be written: disk full, read-only, I/O error", "`--run-dir` on a full disk"),
    "GS431": ("the output would replace something graphspec did not write", "`save -o notes.yaml` over a file"),
    "GS432": ("another process of a multi-process training stopped: this one lost it in a collective",
              "`launch --local 2` where process 1 meets a corrupt image"),
    # sweeps (graphspec sweep) ---------------------------------------------------
    "GS450": ("a preprocessing node is left unadapted (`train.adapt: false`) and the spec does not fix its state "
              "(warning)", "a Normalization without `mean`/`variance` trained with `--set train.adapt=false`"),
    "GS451": ("a `data.augment` entry does not fit: not a model input, not an image preprocessing layer, or an "
              "augmented shape the input does not take", "`RandomCrop` to 28x28 for a 32x32 input"),
    "GS460": ("invalid sweep parameter: a path that names nothing, an empty range, values the sampler cannot use",
              "`nodes.dropot.rate: {uniform: [0, 0.5]}`; `{log_uniform: [0, 1]}`"),
    "GS461": ("the sweep's objective is not a metric the model logs, or there is no data to train on",
              "`objective: {metric: val_acc}` with `metrics: [accuracy]`"),
    "GS462": ("a trial failed while training: Keras rejected the model or data at run time, a non-finite "
              "loss, out of memory", "Conv1D with `kernel_size: 5` on sequences of length 3"),
    # budgets -----------------------------------------------------------------
    "GS500": ("budget exceeded: parameters, weight memory, multiply-accumulates, dimension size, or the size "
              "of expanded variables", "a Dense of 10^12 units; `vars` that multiply at every level"),
    "GS501": ("expectation stated in the spec does not hold", "`expect: {params: 100}` on a 55,050-parameter model"),
    "GS502": ("the model's memory estimate is over the memory budget: lint warns, build and train refuse",
              "a 50,000 x 50,000 Dense (9.3 GiB of weights) on a machine with 8 GiB"),
    # overrides / cli ------------------------------------------------------------
    "GS600": ("invalid --set override", "`--set compile.optimizer`"),
    "GS601": ("plugin could not be imported", "`--plugin nonexistent_module`"),
    "GS602": ("the spec defines several models: name one with --model", "`save` on autoencoder.yaml"),
    "GS603": ("a suppression that suppresses nothing, reported by `lint --strict` (warning)",
              "`# graphspec: ignore[GS302]` on a line without a GS302"),
    "GS604": ("Keras cannot export this model to ONNX on this backend (its converter refused it)",
              "`save -o m.onnx` of a model with a StringLookup layer"),
    # import (graphspec import) ------------------------------------------------
    "GS700": ("the model to import cannot be loaded or is not a Keras model",
              "a .keras file with a custom layer that no --plugin defines"),
    "GS701": ("the model has a layer or argument the format cannot express",
              "a `Lambda` layer; a custom layer that no plugin defines, or whose get_config() leaves out "
              "an argument of its __init__"),
    "GS702": ("the model calls an operation the format cannot express as an `op:` node",
              "`x[indices]` (indexing with a tensor)"),
    "GS703": ("the model's structure cannot be expressed in a spec",
              "a subclassed model (its `call` or `train_step` is code); Bidirectional over a model"),
    "GS704": ("the imported spec does not rebuild the same model (nothing is written)",
              "a graphspec bug: please report it with the model"),
    # internal ------------------------------------------------------------------
    "GS900": ("internal error in graphspec (a bug: please report it)", ""),
}


# code -> rule name: what SARIF, the docs and suppression comments call a code in words.
# Stable like the codes; a code without an entry is named after its title.
NAMES: dict[str, str] = {
    "GS001": "unreadable-file", "GS002": "yaml-syntax-error", "GS003": "yaml-resource-limit",
    "GS004": "duplicate-key", "GS005": "yaml-tag-not-allowed", "GS006": "document-not-a-mapping",
    "GS007": "yaml-1-1-form",
    "GS100": "missing-field", "GS101": "unknown-field", "GS102": "wrong-type", "GS103": "invalid-value",
    "GS104": "unsupported-version", "GS105": "ambiguous-node-kind",
    "GS110": "unknown-layer-type", "GS111": "unknown-argument", "GS112": "invalid-argument-value",
    "GS113": "missing-argument", "GS114": "unknown-name", "GS115": "unsafe-name",
    "GS116": "unknown-application", "GS117": "unknown-compile-name", "GS118": "plugin-layer-not-loaded",
    "GS119": "unusable-file-argument",
    "GS120": "unknown-variable", "GS121": "invalid-expression", "GS122": "variable-cycle",
    "GS123": "unknown-block", "GS124": "missing-block-parameter", "GS125": "unknown-block-parameter",
    "GS126": "block-interface-mismatch", "GS127": "recursive-block", "GS128": "invalid-repeat",
    "GS129": "expanded-name-taken", "GS130": "invalid-extends", "GS131": "extends-cycle",
    "GS132": "merge-marker-without-target",
    "GS200": "undefined-reference", "GS201": "duplicate-name", "GS202": "graph-cycle",
    "GS203": "unreachable-output", "GS204": "unused-node", "GS205": "ambiguous-input",
    "GS206": "wrong-input-count", "GS207": "unknown-intermediate-layer", "GS208": "invalid-model",
    "GS300": "shape-mismatch", "GS301": "keras-build-error", "GS302": "not-shape-checked",
    "GS303": "invalid-shape-declaration", "GS304": "shape-declaration-mismatch",
    "GS400": "loss-names-unknown-output", "GS401": "output-without-loss", "GS402": "invalid-compile-settings",
    "GS410": "invalid-training-settings", "GS411": "data-model-mismatch", "GS412": "unknown-monitored-metric",
    "GS413": "unknown-dataset", "GS414": "uneven-global-batch", "GS415": "data-file-outside-root",
    "GS416": "data-file-too-large", "GS417": "invalid-data-values",
    "GS440": "data-layout", "GS441": "corrupt-data-file", "GS442": "setting-without-effect",
    "GS443": "source-needs-package",
    "GS420": "invalid-run-state", "GS421": "run-plugin-mismatch", "GS422": "failed-run-needs-weights",
    "GS423": "keras-training-error", "GS424": "run-folder-link", "GS430": "write-failed", "GS431": "would-replace-foreign-file",
    "GS432": "peer-process-lost",
    "GS450": "unadapted-preprocessing", "GS451": "invalid-augmentation",
    "GS460": "invalid-sweep-parameter", "GS461": "invalid-sweep-objective", "GS462": "trial-failed",
    "GS500": "budget-exceeded", "GS501": "expectation-failed", "GS502": "memory-budget-exceeded",
    "GS600": "invalid-override", "GS601": "plugin-import-error", "GS602": "model-not-named",
    "GS603": "unused-suppression", "GS604": "onnx-export-unsupported",
    "GS700": "model-not-loadable", "GS701": "layer-not-expressible", "GS702": "op-not-expressible",
    "GS703": "structure-not-expressible", "GS704": "round-trip-mismatch",
    "GS900": "internal-error",
}


def rule_name(code: str) -> str:
    """`GS204` -> `unused-node`: a name for people, different from the code."""
    if code in NAMES:
        return NAMES[code]
    title = CODES.get(code, (code, ""))[0].removesuffix("(warning)")
    words = "".join(c if c.isalnum() else " " for c in title.lower()).split()
    return "-".join(words[:5]) or code.lower()


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
