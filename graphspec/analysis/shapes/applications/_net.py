"""The symbolic builder the ported `keras.applications` run on, and what they share.

A family module is the Keras application code with ``layers.Conv2D(...)(x)`` written
``net.layer("Conv2D", x, ...)``: each call is inferred at once by the rule registry (so
the code can read ``x.shape`` as Keras's does, to pick channels or branches) and recorded,
so that the same graph can be replayed on the shape of the tensor the application is
called on. Also here: the argument parsing and input-shape checks of
``keras.src.applications.imagenet_utils``, and the classifier / pooling head most
families end with.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graphspec.analysis.shapes._registry import LayerShapes, NoRule, Shape, ShapeError, fmt, infer

FullShape = tuple[int | None, ...]


class T:
    """A symbolic tensor: its id in the net and, like a KerasTensor's, its shape with the batch axis."""

    __slots__ = ("id", "shape")

    def __init__(self, tid: int, shape: Shape) -> None:
        self.id = tid
        self.shape: FullShape = (None, *shape)


@dataclasses.dataclass
class Call:
    type: str  # a rule of the registry: a layer class, or "ops.<name>"
    args: dict[str, Any]
    inputs: list[int]
    output: int
    result: LayerShapes
    layer: str | None  # the layer of model.layers it runs in (a Sequential for its layers); None: an op


def to_snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: how Keras names a layer that was given no name."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class Net:
    """The layers of one application, inferred as they are created."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.shapes: list[Shape] = []
        self.calls: list[Call] = []
        self.listed: dict[str, int] = {}  # model.layers: name -> output tensor id
        self._uids: dict[str, int] = {}

    def _tensor(self, shape: Shape) -> T:
        self.shapes.append(tuple(shape))
        return T(len(self.shapes) - 1, shape)

    def _name(self, kind: str, name: str | None) -> str:
        if name is not None:
            return name
        base = to_snake_case(kind)
        uid = self._uids.get(base, 0) + 1
        self._uids[base] = uid
        return base if uid == 1 else f"{base}_{uid - 1}"

    def input(self, shape: Shape) -> T:
        t = self._tensor(shape)
        self.listed[self._name("InputLayer", None)] = t.id
        return t

    def _call(self, kind: str, xs: Sequence[T], args: dict[str, Any], name: str | None, layer: str | None) -> T:
        try:
            result = infer(kind, args, [self.shapes[x.id] for x in xs])
        except ShapeError as exc:
            raise ShapeError(f"{self.app}: {kind.removeprefix('ops.')} `{name or kind}`: {exc.message}",
                             exc.hint) from None
        out = self._tensor(result.outputs[0])
        self.calls.append(Call(kind, args, [x.id for x in xs], out.id, result, layer))
        return out

    def layer(self, kind: str, x: T | Sequence[T], name: str | None = None, **args: Any) -> T:
        """``keras.layers.<kind>(**args, name=name)(x)``; a list ``x`` for the merging layers."""
        xs = [x] if isinstance(x, T) else list(x)
        name = self._name(kind, name)
        out = self._call(kind, xs, args, name, name)
        self.listed[name] = out.id
        return out

    def op(self, op: str, *xs: T, **args: Any) -> T:
        """A keras.ops call (``x + y``): not a layer, but Keras names it like one."""
        self._name(op[:1].upper() + op[1:], None)
        return self._call(f"ops.{op}", list(xs), args, None, None)

    def sequential(self, name: str, layers: Sequence[tuple[str, dict[str, Any]]], x: T) -> T:
        """A ``keras.Sequential`` of layers, listed as one layer of the model."""
        for kind, args in layers:
            x = self._call(kind, [x], args, args.get("name"), name)
        self.listed[name] = x.id
        return x

    # -- the whole model ---------------------------------------------------------------

    def totals(self) -> tuple[int, int, int | None]:
        params = sum(c.result.params for c in self.calls)
        trainable = sum(c.result.trainable_params for c in self.calls)
        counts = [c.result.macs for c in self.calls]
        macs = None if any(m is None for m in counts) else sum(m for m in counts if m is not None)
        return params, trainable, macs

    def layer_macs(self) -> dict[str, int | None]:
        """Multiply-accumulates by layer of model.layers (its input and ops count 0)."""
        out: dict[str, int | None] = dict.fromkeys(self.listed, 0)
        for c in self.calls:
            if c.layer is not None:
                before = out.get(c.layer, 0)
                out[c.layer] = None if before is None or c.result.macs is None else before + c.result.macs
        return out

    def replay(self, shape: Shape) -> Net:
        """The same layers called on a tensor of another (compatible) shape."""
        net = Net(self.app)
        net.shapes = list(self.shapes)
        net.shapes[0] = tuple(shape)
        net.listed = dict(self.listed)
        for c in self.calls:
            try:
                result = infer(c.type, c.args, [net.shapes[i] for i in c.inputs])
            except ShapeError as exc:
                raise ShapeError(f"{self.app} called on {fmt(shape)}: {exc.message}", exc.hint) from None
            net.shapes[c.output] = result.outputs[0]
            net.calls.append(dataclasses.replace(c, result=result))
        return net


# -- arguments -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Args:
    """The arguments of a `keras.applications` function, as `graphspec build` passes them."""

    app: str
    include_top: bool
    weights: str | None
    input_shape: tuple[int | None, ...] | None
    pooling: str | None
    classes: int
    classifier_activation: Any
    extra: Mapping[str, Any]

    def get(self, key: str, default: Any) -> Any:
        return self.extra.get(key, default)

    def error(self, message: str) -> ShapeError:
        return ShapeError(f"{self.app}: {message}")

    def check_classes(self) -> None:
        """Every application's first check: ImageNet weights come with 1000 classes."""
        if self.weights == "imagenet" and self.include_top and self.classes != 1000:
            raise self.error("with `weights='imagenet'` and `include_top=True`, `classes` should be 1000. "
                             f"Received: classes={self.classes}")

    def validate_activation(self) -> None:
        """imagenet_utils.validate_activation."""
        if self.weights is not None and self.classifier_activation not in ("softmax", None):
            raise self.error("only `None` and `softmax` activations are allowed for `classifier_activation` "
                             "with pretrained weights and `include_top=True`. "
                             f"Received: classifier_activation={self.classifier_activation!r}")

    def input(self, default_size: int | None, min_size: int) -> tuple[int | None, ...]:
        """imagenet_utils.obtain_input_shape (channels_last)."""
        shape, weights, flatten = self.input_shape, self.weights, self.include_top
        if weights != "imagenet" and shape and len(shape) == 3:
            default = (default_size, default_size, shape[-1])
        else:
            default = (default_size, default_size, 3)
        if weights == "imagenet" and flatten:
            if shape is not None and shape != default:
                raise self.error(f"with `include_top=True` and `imagenet` weights, `input_shape` should be "
                                 f"{default}. Received: input_shape={shape}")
            return default
        if shape:
            if len(shape) != 3:
                raise self.error(f"`input_shape` must be a tuple of three integers. Received: input_shape={shape}")
            if shape[-1] != 3 and weights == "imagenet":
                raise self.error(f"the input must have 3 channels. Received: input_shape={shape}")
            if (shape[0] is not None and shape[0] < min_size) or (shape[1] is not None and shape[1] < min_size):
                raise self.error(f"input size must be at least {min_size}x{min_size}. Received: input_shape={shape}")
        else:
            shape = default if flatten else (None, None, 3)
        if flatten and None in shape:
            raise self.error(f"with `include_top=True`, give a static `input_shape`. Received: input_shape={shape}")
        return shape

    def head(self, net: Net, x: T, *, dropout: float = 0.0, avg: str | None = "avg_pool",
             pools: tuple[str | None, str | None] = (None, None)) -> T:
        """The usual end: global average pooling (named ``avg``), an optional dropout and the
        classifier; without the top, the pooling asked for (named ``pools``)."""
        if self.include_top:
            x = net.layer("GlobalAveragePooling2D", x, avg)
            if dropout > 0:
                x = net.layer("Dropout", x, "top_dropout", rate=dropout)
            self.validate_activation()
            return net.layer("Dense", x, "predictions", units=self.classes, activation=self.classifier_activation)
        return self.pool(net, x, *pools)

    def pool(self, net: Net, x: T, avg: str | None = None, max_: str | None = None) -> T:
        if self.pooling == "avg":
            return net.layer("GlobalAveragePooling2D", x, avg)
        if self.pooling == "max":
            return net.layer("GlobalMaxPooling2D", x, max_)
        return x


_COMMON = {"include_top", "weights", "input_shape", "pooling", "classes", "classifier_activation"}


def parse_args(app: str, args: Mapping[str, Any], extra: Sequence[str]) -> Args:
    unknown = [k for k in args if k not in _COMMON and k not in extra]
    if unknown:
        raise NoRule(app, f"argument `{unknown[0]}` is not modelled")
    shape = args.get("input_shape")
    if shape is not None and (not isinstance(shape, (list, tuple))
                              or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                                         for d in shape)):
        raise ShapeError(f"{app}: `input_shape` must be a list of positive integers. Received: input_shape={shape!r}")
    weights = args.get("weights")
    if weights not in (None, "imagenet"):
        raise NoRule(app, f"weights={weights!r}")
    return Args(
        app=app,
        include_top=bool(args.get("include_top", True)),
        weights=weights,
        input_shape=None if shape is None else tuple(shape),
        pooling=args.get("pooling"),
        classes=args.get("classes", 1000),
        classifier_activation=args.get("classifier_activation", "softmax"),
        extra={k: v for k, v in args.items() if k in extra},
    )


Builder = Callable[[Net, Args], T]


@dataclasses.dataclass(frozen=True)
class Family:
    build: Builder
    extra: tuple[str, ...]  # the arguments besides the common ones


BUILDERS: dict[str, Family] = {}


def application(*names: str, extra: Sequence[str] = ()) -> Callable[[Builder], Builder]:
    """Register a builder for these `keras.applications` names."""

    def deco(fn: Builder) -> Builder:
        for n in names:
            BUILDERS[n] = Family(fn, tuple(extra))
        return fn

    return deco


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """mobilenet_v2._make_divisible (also mobilenet_v3._depth and efficientnet's round_filters)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def correct_pad(x: T, kernel_size: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """imagenet_utils.correct_pad: the zero padding before a strided 'valid' convolution."""
    size = x.shape[1:3]
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if size[0] is None or size[1] is None:
        adjust = (1, 1)
    else:
        adjust = (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (k[0] // 2, k[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))
