"""Rules for the recurrent layers (SimpleRNN, LSTM, GRU) and the wrappers around other
layers (Bidirectional, TimeDistributed), which infer the wrapped layer's shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphspec.analysis.shapes._registry import (
    RULES,
    Ctx,
    FullShape,
    NoRule,
    RankError,
    Result,
    RuleFn,
    Shape,
    fmt,
    infer,
    is_int,
    macs,
    rule,
)


def _nested(ctx: Ctx, name: str, cfg: Any) -> tuple[str, dict[str, Any]]:
    """Split a nested layer config into (type, args)."""
    if not isinstance(cfg, Mapping):
        raise ctx.error(f"`{name}` must be a layer config mapping", f"{name}={cfg!r}")
    if "type" in cfg:
        return str(cfg["type"]), {k: v for k, v in cfg.items() if k != "type"}
    if "class_name" in cfg and isinstance(cfg.get("config", {}), Mapping):
        return str(cfg["class_name"]), dict(cfg.get("config", {}))
    raise ctx.error(f"`{name}` must have a `type` key", f"{name}={cfg!r}")



_RNN_COMMON = ("units", "activation", "use_bias", "dropout", "recurrent_dropout", "seed",
               "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
               "zero_output_for_mask")


def _rnn(kind: str) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        units = ctx.required("units")
        if not is_int(units) or units <= 0:
            raise ctx.error("`units` must be a positive integer", f"units={units!r}")
        if ctx.flag("stateful", False):
            raise ctx.no_rule("stateful RNNs need a static batch size, which is not modelled")
        s = x[0]
        ctx.check_ndim(s, 3)
        d = s[-1]
        if d is None:
            raise ctx.error("the feature (last) dimension of the input must be defined",
                            f"input_shape={fmt(s[1:])}")
        use_bias = ctx.flag("use_bias", True)
        if kind == "SimpleRNN":
            gates, n_states = 1, 1
            n = d * units + units * units + (units if use_bias else 0)
        elif kind == "LSTM":
            gates, n_states = 4, 2
            n = 4 * (d * units + units * units) + (4 * units if use_bias else 0)
        else:  # GRU
            gates, n_states = 3, 1
            bias = (6 if ctx.flag("reset_after", True) else 3) * units
            n = 3 * (d * units + units * units) + (bias if use_bias else 0)
        out: FullShape = (s[0], s[1], units) if ctx.flag("return_sequences", False) else (
            s[0], units)
        outputs = [out]
        if ctx.flag("return_state", False):
            outputs += [(s[0], units)] * n_states
        # Per step, each gate's input and recurrent kernels; times the steps.
        return Result(outputs, trainable=n, macs=macs(s[1], gates * (d + units) * units))

    return fn


rule("SimpleRNN", args=_RNN_COMMON)(_rnn("SimpleRNN"))
rule("LSTM", args=_RNN_COMMON + ("recurrent_activation", "unit_forget_bias", "implementation",
                                 "use_cudnn"))(_rnn("LSTM"))
rule("GRU", args=_RNN_COMMON + ("recurrent_activation", "reset_after", "implementation",
                                "use_cudnn"))(_rnn("GRU"))

_RNN_TYPES = ("SimpleRNN", "LSTM", "GRU")


@rule("Bidirectional", args=("layer", "merge_mode", "backward_layer"))
def _bidirectional(ctx: Ctx, x: list[FullShape]) -> Result:
    ftype, fargs = _nested(ctx, "layer", ctx.required("layer"))
    if ftype not in _RNN_TYPES:
        raise ctx.no_rule(f"Bidirectional({ftype}) is not modelled")
    merge_mode = ctx.get("merge_mode", "concat")
    if merge_mode not in ("sum", "mul", "ave", "concat", None):
        raise ctx.error("invalid merge mode; should be one of sum, mul, ave, concat or None",
                        f"merge_mode={merge_mode!r}")
    if ctx.get("backward_layer") is None:
        btype, bargs = ftype, dict(fargs, go_backwards=True)
    else:
        btype, bargs = _nested(ctx, "backward_layer", ctx.get("backward_layer"))
        if btype not in _RNN_TYPES:
            raise ctx.no_rule(f"Bidirectional backward_layer {btype} is not modelled")
    for attr in ("go_backwards", "stateful", "return_sequences", "return_state"):
        fv, bv = bool(fargs.get(attr, False)), bool(bargs.get(attr, False))
        if attr == "go_backwards":
            if fv == bv:
                raise ctx.error(
                    "the forward and backward layers must have different `go_backwards` values",
                    f"forward go_backwards={fv}, backward go_backwards={bv}",
                )
        elif fv != bv:
            raise ctx.error(
                f"the forward and backward layers must have the same `{attr}`",
                f"forward {attr}={fv}, backward {attr}={bv}",
            )
    ctx.check_ndim(x[0], 3)
    shapes = [x[0][1:]]
    fwd = infer(ftype, fargs, shapes)
    bwd = infer(btype, bargs, shapes)
    out: Shape = fwd.outputs[0]
    states = list(fwd.outputs[1:])
    outputs: list[Shape]
    if merge_mode == "concat":
        last = out[-1]
        outputs = [(*out[:-1], None if last is None else last * 2)]
    elif merge_mode is None:
        outputs = [out, out]
    else:
        outputs = [out]
    outputs += states + states
    return Result(
        [(None, *o) for o in outputs],
        trainable=fwd.trainable_params + bwd.trainable_params,
        non_trainable=fwd.non_trainable_params + bwd.non_trainable_params,
        macs=None if fwd.macs is None or bwd.macs is None else fwd.macs + bwd.macs,
    )


@rule("TimeDistributed", args=("layer",))
def _time_distributed(ctx: Ctx, x: list[FullShape]) -> Result:
    ctype, cargs = _nested(ctx, "layer", ctx.required("layer"))
    if ctype not in RULES:
        raise NoRule(ctx.type, f"no rule for the wrapped layer {ctype!r}")
    if ctype in ("InputLayer", "TimeDistributed", "Bidirectional") or (
        RULES[ctype].n_inputs != (1, 1)
    ):
        raise ctx.no_rule(f"TimeDistributed({ctype}) is not modelled")
    s = x[0]
    if len(s) < 3:
        raise RankError(
            f"{ctx.type}: expected an input of rank >= 2 (without the batch dimension: "
            f"time steps + the wrapped layer's input), found rank {len(s) - 1}. "
            f"Received: input_shape={fmt(s[1:])}"
        )
    try:
        child = infer(ctype, cargs, [s[2:]])
    except RankError as e:
        # Keras skips the wrapped layer's input-rank check and may build it anyway.
        raise NoRule(ctx.type, f"wrapped layer rank mismatch not modelled ({e.message})") from None
    if len(child.outputs) != 1:
        raise ctx.no_rule(f"TimeDistributed({ctype}) with several outputs is not modelled")
    return Result(
        [(s[0], s[1], *child.outputs[0])],
        trainable=child.trainable_params,
        non_trainable=child.non_trainable_params,
        macs=macs(s[1], child.macs),  # the wrapped layer once per step
    )
