"""What a valid spec is: pydantic models, one per section.

Layer arguments are not fields here: a node's extra keys are its arguments,
checked against the generated Keras catalog by :mod:`graphspec.spec.layers`. The
JSON Schema (``graphspec schema``) combines both.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from graphspec.spec.schema_run import DataSpec, TrainSpec
from graphspec.spec.schema_sweep import SweepSpec

FORMAT_VERSION = 1

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=128),
    Field(description="An identifier: letters, digits, `_` and `-`, not starting with a digit."),
]
# A reference: `node`, `node.layer` (an intermediate layer of an application or
# sub-model) or `node.*` (every layer's output).
Ref = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*(\.(\*|[0-9]{1,4}|[A-Za-z_][A-Za-z0-9_\-/.:]*))?$",
                      max_length=256),
    Field(description="A node or input name; `node.N` for a layer's N-th output (e.g. an LSTM's states), "
          "`node.layer` for an intermediate layer of an application, `node.*` for all its layers."),
]
Refs = Ref | list[Ref]
# A node's name inside a block: expanded names are always `<instance>_<name>`, so it may start
# with a digit (`1_conv` in an instance `conv2_block1` is `conv2_block1_1_conv`).
LocalName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$", max_length=128),
    Field(description="A node's name in a block: letters, digits, `_` and `-` (expanded as `<instance>_<name>`)."),
]

DType = Literal[
    "float16", "bfloat16", "float32", "float64",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "bool", "string", "complex64", "complex128",
]
Dim = Annotated[int, Field(ge=1, le=2**31 - 1)]

JsonScalar = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class InputSpec(Strict):
    """A model input: `keras.Input(shape=..., dtype=...)`."""

    shape: list[Dim | None] = Field(
        description="Shape without the batch dimension; `null` for a variable-length axis."
    )
    dtype: DType = Field("float32", description="Element type.")
    sparse: bool = Field(False, description="Whether the input is a sparse tensor.")
    batch_size: Dim | None = Field(None, description="Fixed batch size, if any.")
    description: str | None = Field(None, description="Free text.")


class NodeSpec(BaseModel):
    """A node: a layer call, a shared-layer call, a sub-model call or an application.

    Every key that is not one of the fields below is an argument of the layer
    (or application), e.g. `{type: Dense, units: 64, activation: relu}`.
    """

    model_config = ConfigDict(strict=True, extra="allow")

    type: str | None = Field(None, description="Keras layer class, e.g. `Dense`, `Conv2D`, or a plugin's layer.")
    share: Name | None = Field(None, description="Call the layer object of another node (same weights).")
    model: Name | None = Field(None, description="Call a model defined in `models` like a layer.")
    application: str | None = Field(
        None, description="A `keras.applications` architecture, e.g. `VGG19` (use `weights: null` offline)."
    )
    op: str | None = Field(
        None, description="A `keras.ops` function applied to the inputs, e.g. `add`, `reshape`, `concatenate`; "
        "other keys are its keyword arguments.",
    )
    inputs: Refs | dict[str, Refs] | None = Field(
        None,
        description="Where the node takes its input from. Omitted: the node defined just before it "
        "(the spec's only input for the first node). A list feeds merge layers; a mapping passes "
        "named tensors (e.g. MultiHeadAttention `query`, `value`).",
    )
    fresh: bool = Field(
        False, description="With `model`: call a new instance of the model (own weights) instead of sharing it."
    )
    call: dict[str, JsonScalar] = Field(
        default_factory=dict, description="Extra keyword arguments for the call, e.g. `training: false`."
    )

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def kind(self) -> str:
        for k in ("type", "share", "model", "application", "op"):
            if getattr(self, k) is not None:
                return k
        return "type"


NamedConfig = Annotated[
    dict[str, Any],
    Field(description="`{type: ClassName, arg: value, ...}`, e.g. `{type: Adam, learning_rate: 0.001}`."),
]
Named = str | NamedConfig


class CompileSpec(Strict):
    """Arguments of `model.compile`."""

    optimizer: Named = Field("rmsprop", description="Optimizer name or `{type: Adam, learning_rate: ...}`.")
    loss: Named | list[Named | None] | dict[str, Named | None] | None = Field(
        None, description="One loss, a list (one per output) or a mapping output name -> loss."
    )
    loss_weights: list[float] | dict[str, float] | None = Field(
        None, description="Weights of the per-output losses, a list or a mapping output name -> weight."
    )
    metrics: list[Named] | dict[str, Named | list[Named]] | None = Field(
        None, description="Metrics, or a mapping output name -> metric(s)."
    )
    jit_compile: bool | Literal["auto"] = Field("auto", description="XLA compilation.")
    steps_per_execution: Dim = Field(1, description="Batches per compiled step.")
    model: Name | None = Field(
        None, description="Top-level only: the model these settings are for (default: every model)."
    )


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?)(i?)B?\s*$", re.IGNORECASE)


def byte_size(value: int | str) -> int:
    """`8 GiB`, `512 MB`, `1.5G` or a number of bytes -> bytes; ValueError for anything else."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not a size: write a number of bytes or e.g. `8 GiB`, `512 MB`")
    number, unit, binary = float(m.group(1)), m.group(2).upper(), m.group(3)
    base = 1024 if binary or not unit else 1000
    return int(number * base ** " KMGTP".index(unit or " "))


def _check_size(value: str) -> str:
    byte_size(value)
    return value


ByteSize = Annotated[int, Field(ge=1)] | Annotated[str, AfterValidator(_check_size)]


class ExpectSpec(Strict):
    """Facts and limits a model must satisfy; `graphspec lint` checks them statically."""

    params: int | None = Field(None, ge=0, description="Exact parameter count.")
    trainable_params: int | None = Field(None, ge=0, description="Exact trainable parameter count.")
    max_params: int | None = Field(None, ge=0, description="Upper bound on parameters.")
    max_weight_bytes: int | None = Field(None, ge=0, description="Upper bound on weight memory (float32: 4 B/param).")
    macs: int | None = Field(
        None, ge=0, description="Exact multiply-accumulates per sample (the convention is in docs/lint.md)."
    )
    max_macs: int | None = Field(None, ge=0, description="Upper bound on multiply-accumulates per sample.")
    output_shapes: dict[str, list[Dim | None]] | None = Field(
        None, description="Output name -> expected shape without the batch dimension."
    )
    memory_budget: ByteSize | None = Field(
        None, description="Memory the model may need: its weights, and with a `data` section one batch of "
        "activations (and synthetic data). Bytes or e.g. `16 GiB`. Default: this machine's memory "
        "(or $GRAPHSPEC_MEMORY_BUDGET). lint warns beyond it; build and train refuse.",
    )


class ModelSpec(Strict):
    """A `keras.Model(inputs, outputs)` over the spec's nodes."""

    inputs: Refs | None = Field(None, description="Its inputs (default: every input its outputs need).")
    outputs: Refs = Field(description="Its outputs: node names, `node.layer` or `node.*`.")
    inputs_as: Literal["list", "dict"] = Field(
        "list", description="How the model takes its inputs: `list` (one tensor, or a list in order) or "
        "`dict` (a mapping input name -> tensor, as `keras.Model(inputs={...})`; Keras orders them by name).",
    )
    outputs_as: Literal["list", "dict"] = Field(
        "list", description="How the model returns its outputs: `list` (one tensor, or a list in order) or "
        "`dict` (a mapping output name -> tensor, the names being the output references; Keras orders them "
        "by name).",
    )
    compile: CompileSpec | None = Field(None, description="Compile settings for this model.")
    submodel: bool = Field(
        False, description="Only used as a part of other models: not listed by build, summary or save."
    )
    expect: ExpectSpec | None = Field(None, description="Checked by lint and build.")
    description: str | None = Field(None, description="Free text.")


class BlockSpec(Strict):
    """A reusable block: a small graph with named inputs, outputs and parameters (see docs/blocks.md).

    A node `{block: NAME, inputs: ..., repeat: N, first: {...}, each: {...}, PARAM: VALUE, ...}` instantiates it;
    inside the block, `${PARAM}` is the parameter's value.
    """

    inputs: Name | list[Name] = Field(
        "x", description="Names the block's nodes use for the tensors passed in (default: one input, `x`).")
    outputs: LocalName | list[LocalName] | None = Field(
        None, description="The block's nodes that are its outputs (default: its last node)."
    )
    params: list[Name] | dict[Name, Any] = Field(
        default_factory=dict,
        description="Parameters: a list of names (all required) or a mapping name -> default "
        "(`null`: required).",
    )
    nodes: dict[LocalName, dict[str, Any]] = Field(
        description="The block's nodes, written like the spec's `nodes` (names may start with a digit).")
    description: str | None = Field(None, description="Free text.")


class Spec(Strict):
    """A graphspec file."""

    extends: str | list[str] | None = Field(
        None, description="A base spec (or a list, merged in order) this file is a variant of: the base is "
        "loaded, then this file is merged over it; paths are relative to this file (see docs/variants.md).",
    )
    graphspec: Literal[1] = Field(description="Format version; currently 1.")
    name: Name = Field(description="The spec's name (default model name, run folder name).")
    description: str | None = Field(None, description="Free text.")
    vars: dict[Name, Any] | None = Field(
        None, description="Variables: `${name}` anywhere in the spec is replaced by the value (see docs/blocks.md)."
    )
    blocks: dict[Name, BlockSpec] | None = Field(
        None, description="Reusable blocks, instantiated by nodes with `block: NAME` (see docs/blocks.md)."
    )
    inputs: dict[Name, InputSpec | list[Dim | None]] = Field(
        default_factory=dict, description="Model inputs by name: `{shape: [...], dtype: ...}` or just the shape."
    )
    nodes: dict[Name, NodeSpec] = Field(description="The layer graph, in order; chains need no `inputs`.")
    models: dict[Name, ModelSpec] | None = Field(
        None, description="Models over the graph (default: one model named after the spec)."
    )
    compile: CompileSpec | None = Field(None, description="Compile settings (for every model unless it has its own).")
    expect: ExpectSpec | None = Field(None, description="Expectations for the default model.")
    data: DataSpec | None = Field(None, description="Where training data comes from (see docs/training.md).")
    train: TrainSpec | None = Field(None, description="Training settings (see docs/training.md).")
    sweep: SweepSpec | None = Field(None, description="A hyperparameter search run by `graphspec sweep` "
                                    "(see docs/experiments.md).")

    def input_spec(self, name: str) -> InputSpec:
        value = self.inputs[name]
        return value if isinstance(value, InputSpec) else InputSpec(shape=value)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format, with per-layer argument schemas for editors.

    It accepts every spec lint accepts: a variable wherever a value goes, and in a
    variant the merge markers (see :mod:`graphspec.spec.schema_json`).
    """
    from graphspec.spec.layers import node_json_schema
    from graphspec.spec.schema_json import for_editors

    schema = for_editors(Spec.model_json_schema())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://graphspec.dev/schema/v1.json"
    schema["$defs"]["NodeSpec"] = node_json_schema(schema["$defs"].get("NodeSpec", {}))
    # A variant (`extends: base.yaml`) may leave out what its base gives: the required
    # fields apply to a file that extends nothing.
    schema["if"] = {"not": {"required": ["extends"]}}
    schema["then"] = {"required": schema.pop("required", [])}
    return schema
