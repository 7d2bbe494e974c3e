"""Rules for the vocabulary layers: StringLookup, IntegerLookup and TextVectorization
(keras.src.layers.preprocessing.index_lookup and text_vectorization).

In `int` mode the output keeps the input's shape; in the other modes its last axis is
the vocabulary's size (mask and out-of-vocabulary indices included), which is known
statically when the spec gives `vocabulary` as a list (or `pad_to_max_tokens` with
`max_tokens`). The layers have no weights.
"""

from __future__ import annotations

from typing import Any

from graphspec.analysis.shapes._registry import Ctx, Dim, FullShape, Result, RuleFn, is_int, rule

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_LOOKUP_ARGS = ("max_tokens", "num_oov_indices", "mask_token", "oov_token", "vocabulary", "idf_weights", "invert",
                "output_mode", "pad_to_max_tokens", "sparse", "encoding", "salt")


def _mode(ctx: Ctx) -> str:
    mode = ctx.get("output_mode", "int")
    mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(mode, mode)
    if mode not in _MODES:
        raise ctx.error(f"`output_mode` must be one of {', '.join(_MODES)}", f"output_mode={mode!r}")
    return str(mode)


def _depth(ctx: Ctx, mode: str, mask_token: Any, oov_token: Any, num_oov: int) -> Dim:
    """IndexLookup's vocabulary size (the output depth outside `int` mode), None if not known."""
    max_tokens = ctx.get("max_tokens")
    if max_tokens is not None and (not is_int(max_tokens) or max_tokens <= 1):
        raise ctx.error("`max_tokens`, if set, must be greater than 1", f"max_tokens={max_tokens!r}")
    pad = ctx.flag("pad_to_max_tokens", False)
    if pad and max_tokens is None:
        raise ctx.error("`pad_to_max_tokens` needs `max_tokens`", "max_tokens=None")
    vocab = ctx.get("vocabulary")
    idf = ctx.get("idf_weights")
    if idf is not None and mode != "tf_idf":
        raise ctx.error("`idf_weights` should only be set if `output_mode` is 'tf_idf'", f"output_mode={mode!r}")
    if vocab is None:
        return max_tokens if pad else None
    if isinstance(vocab, str):
        raise ctx.no_rule("a vocabulary file is read when the model is built")
    if not isinstance(vocab, list) or not vocab:
        raise ctx.error("`vocabulary` must be a non-empty list", f"vocabulary={vocab!r}")
    if mode == "tf_idf" and idf is None:
        raise ctx.error("with `vocabulary` in 'tf_idf' mode, `idf_weights` must be given too", "idf_weights=None")
    oov_start = 1 if mask_token is not None and mode == "int" else 0
    start = oov_start + num_oov
    special = [mask_token] * oov_start + [oov_token] * num_oov
    tokens = vocab[start:] if vocab[:start] == special else vocab
    if len({repr(t) for t in tokens}) != len(tokens):
        raise ctx.error("the vocabulary has a repeated term", f"vocabulary={vocab!r}")
    if mask_token is not None and mask_token in tokens:
        raise ctx.error("the mask token is in the vocabulary (it is added in front of it)",
                        f"mask_token={mask_token!r}")
    size = start + len(tokens)
    if max_tokens is not None and size > max_tokens:
        raise ctx.error(f"the vocabulary ({size} with the special tokens) is larger than `max_tokens`",
                        f"max_tokens={max_tokens}")
    if mode == "tf_idf" and (not isinstance(idf, list) or len(idf) != len(vocab)):
        raise ctx.error("`idf_weights` must be a list as long as the vocabulary",
                        f"{len(vocab)} terms, idf_weights={idf!r}")
    return max_tokens if pad else size


def _lookup_shape(s: FullShape, mode: str, depth: Dim) -> FullShape:
    """IndexLookup.compute_output_shape."""
    if mode == "int":
        return s
    if mode == "one_hot":
        return (*s[:-1], depth) if len(s) > 1 and s[-1] == 1 else (*s, depth)
    return (*s[:-1], depth)


def _lookup(default_oov: Any) -> RuleFn:
    def fn(ctx: Ctx, x: list[FullShape]) -> Result:
        mode = _mode(ctx)
        num_oov = ctx.get("num_oov_indices", 1)
        if not is_int(num_oov) or num_oov < 0:
            raise ctx.error("`num_oov_indices` must be an integer >= 0", f"num_oov_indices={num_oov!r}")
        if ctx.flag("invert", False) and mode != "int":
            raise ctx.error("`output_mode` must be 'int' when `invert` is true", f"output_mode={mode!r}")
        if ctx.flag("sparse", False) and mode == "int":
            raise ctx.error("`sparse` needs an `output_mode` other than 'int'", "sparse=True")
        depth = _depth(ctx, mode, ctx.get("mask_token"), ctx.get("oov_token", default_oov), num_oov)
        return Result([_lookup_shape(x[0], mode, depth)])

    return fn


rule("StringLookup", args=_LOOKUP_ARGS)(_lookup("[UNK]"))
rule("IntegerLookup", args=(*_LOOKUP_ARGS, "vocabulary_dtype", "oov_method"))(_lookup(-1))


@rule("TextVectorization", args=("max_tokens", "standardize", "split", "ngrams", "output_mode",
                                 "output_sequence_length", "pad_to_max_tokens", "vocabulary", "idf_weights",
                                 "sparse", "ragged", "encoding"))
def _text_vectorization(ctx: Ctx, x: list[FullShape]) -> Result:
    mode = _mode(ctx)
    for name, allowed in (("standardize", ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)),
                          ("split", ("whitespace", "character", None))):
        value = ctx.get(name, allowed[0])
        if value not in allowed:
            raise ctx.error(f"`{name}` must be one of {', '.join(map(repr, allowed))}", f"{name}={value!r}")
    ngrams = ctx.get("ngrams")
    if not (ngrams is None or is_int(ngrams) or isinstance(ngrams, list) and all(is_int(n) for n in ngrams)):
        raise ctx.error("`ngrams` must be None, an integer, or a list of integers", f"ngrams={ngrams!r}")
    length = ctx.get("output_sequence_length")
    if mode == "int" and not (length is None or is_int(length)):
        raise ctx.error("`output_sequence_length` must be None or an integer", f"output_sequence_length={length!r}")
    if mode != "int" and length is not None:
        raise ctx.error("`output_sequence_length` must not be set if `output_mode` is not 'int'",
                        f"output_sequence_length={length!r}")
    if ctx.flag("ragged", False) and mode != "int":
        raise ctx.error("`ragged` needs `output_mode` 'int'", f"output_mode={mode!r}")
    # Its StringLookup has the mask token "" (counted in int mode only) and one OOV index.
    depth = _depth(ctx, mode, "", "[UNK]", 1)
    s = x[0]
    if mode == "int":
        return Result([(s[0], length)])
    if ctx.get("split", "whitespace") is None:
        s = (*s, 1) if len(s) <= 1 else s
    else:
        s = (*s, None)
    return Result([_lookup_shape(s, mode, depth)])
