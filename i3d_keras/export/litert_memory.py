"""The memory a LiteRT file needs: its weights and its activation arena.

A runtime that plans memory ahead (LiteRT's arena planner, XNNPACK's
workspace, an NPU compiler, LiteRT Micro's greedy planner) lays every
activation tensor of the graph out in one block, reusing the bytes of tensors
no longer needed. `plan_arena` does this the way LiteRT's arena planner does:
tensors in decreasing size, each in the smallest gap left by the tensors
alive at the same time (best fit), offsets aligned to 64 bytes. The block's
size is the arena; the largest sum of tensors alive at once (`peak_live`) is
the least any plan needs. Kernel scratch (LiteRT's reference CONV_2D keeps an
im2col buffer; XNNPACK needs none) and the runtime's own structures are not
in it.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(the network whose files these are); LiteRT's `arena_planner.cc`.
"""

from pathlib import Path

import numpy as np

ALIGNMENT = 64  # LiteRT's kDefaultTensorAlignment

#: Bytes per element of LiteRT's tensor types, by the schema's names.
_ITEM_BYTES = {
    "FLOAT32": 4, "FLOAT16": 2, "FLOAT64": 8, "BFLOAT16": 2, "INT32": 4, "UINT32": 4,
    "INT64": 8, "UINT64": 8, "INT16": 2, "UINT16": 2, "INT8": 1, "UINT8": 1, "BOOL": 1,
    "COMPLEX64": 8, "COMPLEX128": 16,
}


#: Operators that only relabel their input's bytes.
_IN_PLACE = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def operator_code_names(model):
    """The name of each operator code of a parsed LiteRT `Model` (schema
    flatbuffer): the builtin's name, or a custom operator's own (`FlexConv3D`)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    builtins = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        name = builtins.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name == "CUSTOM" and code.CustomCode():
            name = code.CustomCode().decode("utf-8", "replace")
        names.append(name)
    return names


def _aligned(nbytes):
    return -(-nbytes // ALIGNMENT) * ALIGNMENT


def plan_arena(sizes, lifetimes):
    """Lays tensors out in one block, reusing the bytes of finished ones.

    Args:
        sizes: `{tensor: bytes}`.
        lifetimes: `{tensor: (first_step, last_step)}`, inclusive: the steps
            (operators, in execution order) from the one writing the tensor to
            the last one reading it.

    Returns:
        `(arena_bytes, offsets)`: the block's size and `{tensor: offset}`;
        two tensors alive at a common step never share a byte.

    Example:

    >>> plan_arena({"a": 100, "b": 100, "c": 100}, {"a": (0, 1), "b": (1, 2), "c": (2, 3)})
    (256, {'a': 0, 'b': 128, 'c': 0})
    """
    missing = sorted(set(sizes) - set(lifetimes), key=str)
    if missing:
        raise ValueError(f"Expected a lifetime for every tensor. Received none for: {missing}")
    offsets = {}
    order = sorted(sizes, key=lambda t: (-sizes[t], lifetimes[t][0], str(t)))
    for tensor in order:
        first, last = lifetimes[tensor]
        busy = sorted((offsets[other], offsets[other] + _aligned(sizes[other]))
                      for other in offsets
                      if lifetimes[other][0] <= last and first <= lifetimes[other][1])
        best, best_gap, end = None, None, 0
        for start, stop in busy:
            gap = start - end
            if gap >= sizes[tensor] and (best_gap is None or gap < best_gap):
                best, best_gap = end, gap
            end = max(end, stop)
        offsets[tensor] = end if best is None else best
    arena = max((offsets[t] + _aligned(sizes[t]) for t in offsets), default=0)
    return arena, offsets


def _peak_live(sizes, lifetimes, steps):
    live = np.zeros(steps + 2, np.int64)
    for tensor, nbytes in sizes.items():
        first, last = lifetimes[tensor]
        live[first + 1:last + 2] += nbytes
    return int(live.max(initial=0))


def litert_memory(path):
    """The weights and activation arena of a LiteRT file's main graph.

    Tensors with data in the file are weights; tensors computed from weights
    only (a float16 file's `DEQUANTIZE`d kernels) are computed once when the
    file loads and held as `unpacked_weights`; every other tensor is an
    activation, alive from the operator writing it to the last one reading it
    (inputs: the whole run; outputs: to the end), laid out by `plan_arena`.

    Args:
        path: a `.tflite` file.

    Returns:
        `{"arena_mb", "peak_live_mb", "weights_mb", "unpacked_weights_mb",
        "activations", "operators"}` (MB: 10^6 bytes).

    Example:

    >>> litert_memory("i3d_rgb_16x224.tflite")  # doctest: +SKIP
    {'arena_mb': 78.7, 'peak_live_mb': 77.1, 'weights_mb': 50.7, 'unpacked_weights_mb': 0.0,
     'activations': 201, 'operators': 231}
    """
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    buffer = Path(path).read_bytes()
    if not schema.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ValueError(f"Expected a LiteRT (.tflite) file. Received: {str(path)!r}")
    model = schema.Model.GetRootAsModel(buffer, 0)
    graph = model.Subgraphs(0)
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def nbytes(tensor):
        shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else ()
        return int(np.prod(shape, dtype=np.int64)) * _ITEM_BYTES[type_names[tensor.Type()]]

    weights, weight_bytes, unpacked_bytes, sizes = set(), 0, 0, {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        data = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
        stored = max(data.DataLength(), data.Size()) if data is not None else 0
        if stored:  # Size(): a buffer stored after the flatbuffer (files over 2 GB)
            weights.add(index)
            weight_bytes += stored
        elif tensor.IsVariable():
            sizes[index] = nbytes(tensor)
    steps = graph.OperatorsLength()
    operators = [graph.Operators(step) for step in range(steps)]
    code_names = operator_code_names(model)
    opcodes = [code_names[op.OpcodeIndex()] for op in operators]
    readers = {}
    for operator in operators:
        for t in operator.InputsAsNumpy():
            readers[int(t)] = readers.get(int(t), 0) + 1
    graph_inputs = {int(t) for t in graph.InputsAsNumpy()}
    graph_outputs = {int(t) for t in graph.OutputsAsNumpy()}
    # Inputs and variables are kept the whole run, outputs from when they are
    # written to the end: the caller reads them.
    lifetimes = {t: [-1, steps] for t in graph_inputs | set(sizes)}
    produced = set()
    shared = {}  # an in-place operator's output -> the tensor whose bytes it reuses
    for step, (operator, opcode) in enumerate(zip(operators, opcodes)):
        inputs = [int(t) for t in operator.InputsAsNumpy() if t >= 0]
        outputs = [int(t) for t in operator.OutputsAsNumpy() if t >= 0]
        if inputs and all(t in weights for t in inputs):
            weights.update(outputs)
            unpacked_bytes += sum(nbytes(graph.Tensors(t)) for t in outputs)
            continue
        inputs = [t for t in inputs if t not in weights]
        for t in inputs:
            t = shared.get(t, t)
            lifetimes[t][1] = max(lifetimes[t][1], step)
        # A reshape's output reuses its input's bytes when nothing else reads
        # them (LiteRT's and XNNPACK's in-place reshapes).
        if (opcode in _IN_PLACE and len(outputs) == 1 and inputs and readers[inputs[0]] == 1
                and shared.get(inputs[0], inputs[0]) in produced
                and not (graph_inputs | graph_outputs) & {inputs[0], outputs[0]}):
            shared[outputs[0]] = shared.get(inputs[0], inputs[0])
            continue
        for t in outputs:
            lifetimes.setdefault(t, [step, step])
            produced.add(t)
    for t in graph_outputs:
        lifetimes[shared.get(t, t)][1] = steps
    sizes = {t: max(nbytes(graph.Tensors(t)),
                    max((nbytes(graph.Tensors(o)) for o, s in shared.items() if s == t), default=0))
             for t in lifetimes}
    lifetimes = {t: tuple(span) for t, span in lifetimes.items()}
    arena, _ = plan_arena(sizes, lifetimes)
    return {"arena_mb": arena / 1e6, "peak_live_mb": _peak_live(sizes, lifetimes, steps) / 1e6,
            "weights_mb": weight_bytes / 1e6, "unpacked_weights_mb": unpacked_bytes / 1e6,
            "activations": len(sizes), "operators": steps}


__all__ = ["ALIGNMENT", "litert_memory", "operator_code_names", "plan_arena"]
