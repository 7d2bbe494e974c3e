"""A fix-up of what jax2onnx writes, so that onnxruntime runs it (ONNX export on the JAX backend).

jax2onnx 0.17 (``jax2onnx/plugins/jax/lax/reduce_window_max.py``) lowers ``lax.reduce_window_max`` — what
Keras's ``MaxPooling1D/2D/3D`` becomes on JAX — by treating *every* axis of the operand as a spatial one:
``Unsqueeze(axis 0) -> Unsqueeze(axis 1) -> MaxPool -> Squeeze(axes 0, 1)``. For an NHWC image that is a
MaxPool over a rank-6 tensor with ``kernel_shape=[1, 2, 2, 1]``: valid ONNX (``onnx.checker`` accepts it), but
onnxruntime's CPU MaxPool implements 1, 2 and 3 spatial axes only and fails when the node runs with
"Unsupported pooling size" (the supported ranks are {1, 2, 3}: microsoft/onnxruntime#29253). jax2onnx has no
option for it and no newer release on PyPI; no upstream issue was found (searched: jax2onnx, onnxruntime,
keras issues, December 2026).

:func:`fix_maxpool_rank` rewrites each such chain as ``Transpose -> MaxPool -> Transpose``: two axes the window
leaves alone (size 1, stride 1, no padding: the batch and channel axes of a Keras pooling layer) become
MaxPool's N and C, the others its 1 to 3 spatial axes. The values are the same (a window of one over an axis
is that axis, untouched). A chain over 3 axes (MaxPooling1D: one spatial axis, which onnxruntime runs) is
left as it is, and so is one it cannot rewrite so (`save` then reports what onnxruntime says: GS604).
"""

from __future__ import annotations

from typing import Any


def _ints(node: Any, name: str) -> list[int] | None:
    for attr in node.attribute:
        if attr.name == name:
            return list(attr.ints)
    return None


def _constant_ints(graph: Any, name: str) -> list[int] | None:
    """The values of the integer constant `name` (an initializer or a Constant node's output), else None."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return [int(v) for v in numpy_helper.to_array(init).reshape(-1)]
    for node in graph.node:
        if node.op_type == "Constant" and list(node.output) == [name]:
            for attr in node.attribute:
                if attr.name == "value":
                    return [int(v) for v in numpy_helper.to_array(attr.t).reshape(-1)]
    return None


def _plan(kernel: list[int], strides: list[int], pads: list[int], dilations: list[int]) -> list[int] | None:
    """The axis order that puts two untouched axes first and 1 to 3 pooled ones after, else None."""
    rank = len(kernel)
    untouched = [a for a in range(rank) if kernel[a] == 1 and strides[a] == 1 and dilations[a] == 1
                 and pads[a] == 0 and pads[a + rank] == 0]
    if len(untouched) < 2 or not 4 <= rank <= 5:  # 3 axes: 1 spatial, which onnxruntime runs as it is
        return None
    head = untouched[:2]
    return head + [a for a in range(rank) if a not in head]


def _chain(graph: Any, pool: Any, producer: dict[str, Any], consumers: dict[str, list[Any]]) -> tuple[Any, ...] | None:
    """The (Unsqueeze axis 0, Unsqueeze axis 1, Squeeze axes 0 1) around MaxPool node `pool`, else None."""
    unsq1 = producer.get(pool.input[0])
    if unsq1 is None or unsq1.op_type != "Unsqueeze" or len(unsq1.input) < 2:
        return None
    unsq0 = producer.get(unsq1.input[0])
    users = consumers.get(pool.output[0], [])
    if unsq0 is None or unsq0.op_type != "Unsqueeze" or len(unsq0.input) < 2 or len(users) != 1:
        return None
    squeeze = users[0]
    if (squeeze.op_type != "Squeeze" or len(squeeze.input) < 2 or len(pool.output) != 1
            or (_ints(pool, "ceil_mode") or [0]) != [0] or _constant_ints(graph, unsq0.input[1]) != [0]
            or _constant_ints(graph, unsq1.input[1]) != [1] or _constant_ints(graph, squeeze.input[1]) != [0, 1]):
        return None
    return unsq0, unsq1, squeeze


def fix_maxpool_rank(proto: Any) -> int:
    """Rewrite jax2onnx's all-axes MaxPool chains in `proto`'s main graph (in place); how many were rewritten."""
    from onnx import helper

    graph = proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    fixed, dropped = 0, []
    changed: set[str] = set()
    axes: set[str] = set()
    for pool in [n for n in graph.node if n.op_type == "MaxPool"]:
        chain = _chain(graph, pool, producer, consumers)
        if chain is None:
            continue
        unsq0, unsq1, squeeze = chain
        kernel = _ints(pool, "kernel_shape") or []
        rank = len(kernel)
        strides = _ints(pool, "strides") or [1] * rank
        pads = _ints(pool, "pads") or [0] * (2 * rank)
        dilations = _ints(pool, "dilations") or [1] * rank
        perm = _plan(kernel, strides, pads, dilations) if rank else None
        if perm is None or len(strides) != rank or len(pads) != 2 * rank or len(dilations) != rank:
            continue
        inverse = [perm.index(a) for a in range(rank)]
        spatial = perm[2:]
        moved, pooled = f"{pool.output[0]}_nc_in", f"{pool.output[0]}_nc_out"
        before = helper.make_node("Transpose", [unsq0.input[0]], [moved], name=f"{pool.name}_to_nc", perm=perm)
        after = helper.make_node("Transpose", [pooled], [squeeze.output[0]], name=f"{pool.name}_from_nc",
                                 perm=inverse)
        new_pool = helper.make_node(
            "MaxPool", [moved], [pooled], name=pool.name, kernel_shape=[kernel[a] for a in spatial],
            strides=[strides[a] for a in spatial], dilations=[dilations[a] for a in spatial],
            pads=[pads[a] for a in spatial] + [pads[a + rank] for a in spatial])
        at = list(graph.node).index(pool)
        graph.node.insert(at + 1, after)
        graph.node.insert(at + 1, new_pool)
        graph.node.insert(at, before)
        dropped += [pool, squeeze]
        axes |= {squeeze.input[1]}
        changed |= {pool.output[0]}
        for unsq in (unsq1, unsq0):  # the Unsqueezes go too, unless something else reads them
            readers = [n for n in consumers.get(unsq.output[0], []) if n not in (pool, unsq1)]
            if not readers and unsq.output[0] not in outputs:
                dropped.append(unsq)
                changed.add(unsq.output[0])
                axes.add(unsq.input[1])
        fixed += 1
    if not fixed:
        return 0
    for node in dropped:
        graph.node.remove(node)
    for info in [v for v in graph.value_info if v.name in changed]:
        graph.value_info.remove(info)
    used = {name for node in graph.node for name in node.input} | outputs
    for init in [i for i in graph.initializer if i.name in axes and i.name not in used]:
        graph.initializer.remove(init)
    return fixed
