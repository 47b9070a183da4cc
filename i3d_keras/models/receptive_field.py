"""Receptive fields, strides, parameters and multiply-adds of video models.

The I3D paper (Sec. 2.2) discusses how inflation must balance the spatial and
temporal receptive fields: a kernel that grows too fast in time conflates
edges of different objects, one that grows too slowly misses scene dynamics.
`receptive_fields(model)` measures them for any functional Keras model the
package builds, layer by layer, by walking the model's graph.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.
"""

import dataclasses
import math

import keras
import numpy as np

from i3d_keras.models import layers as i3d_layers
from i3d_keras.models import i3d as i3d_model


@dataclasses.dataclass
class _State:
    """Receptive field and jump (cumulative stride) per (time, height, width)."""

    shape: tuple
    rf: tuple = (1, 1, 1)
    jump: tuple = (1, 1, 1)
    # How many copies of one clip's tensor the batch axis holds (frames or
    # snapshots folded into the batch by FoldTime / Snapshots): multiply-adds
    # computed for one batch element are multiplied by it.
    copies: int = 1


@dataclasses.dataclass(frozen=True)
class EndpointInfo:
    """One row of `receptive_fields`: an endpoint's geometry and cost.

    Attributes:
        name: endpoint (layer) name.
        output_shape: output shape for one clip (batch axis dropped).
        receptive_field: `(frames, height_px, width_px)` of input seen by one
            output position.
        stride: `(frames, height_px, width_px)` between neighbouring outputs.
        params: parameters of the layers since the previous row.
        macs: multiply-adds per clip of the layers since the previous row.
    """

    name: str
    output_shape: tuple
    receptive_field: tuple
    stride: tuple
    params: int
    macs: int


def _triple(value, n):
    value = tuple(value) if isinstance(value, (list, tuple)) else (value,) * n
    return value


def _axes(shape):
    """Number of non-batch, non-channel axes and their offset into (t, h, w)."""
    n = len(shape) - 2
    # 5D: (t, h, w); 4D images: (h, w); 3D sequences: (t,).
    return n, {3: 0, 2: 1}.get(n, 0)


def _window(state, sizes, strides, dilation=None):
    n, offset = _axes(state.shape)
    rf, jump = list(state.rf), list(state.jump)
    dilation = dilation or (1,) * n
    for i in range(n):
        k = (sizes[i] - 1) * dilation[i] + 1
        rf[offset + i] += (k - 1) * jump[offset + i]
        jump[offset + i] *= strides[i]
    return tuple(rf), tuple(jump)


def _global(state, axes):
    """RF after a reduction over `axes` (indices into the tensor shape)."""
    n, offset = _axes(state.shape)
    rf, jump = list(state.rf), list(state.jump)
    for axis in axes:
        i = axis - 1
        if 0 <= i < n and state.shape[axis] is not None:
            rf[offset + i] += (state.shape[axis] - 1) * jump[offset + i]
    return tuple(rf), tuple(jump)


def _conv_macs(layer, out_shape, in_shape):
    kernel = layer.kernel_size
    positions = math.prod(out_shape[1:-1])
    cin = in_shape[-1]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return positions * math.prod(kernel) * cin * layer.depth_multiplier
    groups = getattr(layer, "groups", 1)
    return positions * math.prod(kernel) * (cin // groups) * out_shape[-1]


def _layer_geometry(layer, in_states):
    """Returns (rf, jump, macs) of `layer` applied to `in_states`."""
    state = in_states[0]
    folded = _folded_geometry(layer, in_states)
    if folded is not None:
        return folded
    conv_types = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                  keras.layers.DepthwiseConv2D)
    pool_types = (keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
                  keras.layers.AveragePooling2D, keras.layers.AveragePooling3D)
    if isinstance(layer, conv_types):
        rf, jump = _window(state, layer.kernel_size, layer.strides, layer.dilation_rate)
        out = layer.compute_output_shape(state.shape)
        return rf, jump, _conv_macs(layer, out, state.shape)
    if isinstance(layer, i3d_layers.Pooling3D):
        rf, jump = _window(state, layer._window(state.shape), layer.strides)
        return rf, jump, 0
    if isinstance(layer, pool_types):
        rf, jump = _window(state, layer.pool_size, layer.strides)
        return rf, jump, 0
    if isinstance(layer, i3d_layers.Mean):
        rf, jump = _global(state, [a % len(state.shape) for a in layer.axis])
        return rf, jump, 0
    if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
                          keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling3D,
                          keras.layers.Flatten)):
        rf, jump = _global(state, range(1, len(state.shape) - 1))
        return rf, jump, 0
    if isinstance(layer, keras.layers.Dense):
        return state.rf, state.jump, math.prod(state.shape[1:]) * layer.units
    if isinstance(layer, keras.layers.RNN) or hasattr(layer, "cell"):
        # A recurrent layer over time sees the whole sequence.
        rf, jump = _global(state, [1])
        units = getattr(layer, "units", None) or layer.cell.units
        gates = {"LSTM": 4, "GRU": 3}.get(type(layer).__name__, 1)
        steps = state.shape[1] or 1
        return rf, jump, steps * gates * (state.shape[-1] + units) * units
    if len(in_states) > 1:
        rf = tuple(max(s.rf[i] for s in in_states) for i in range(3))
        jump = tuple(max(s.jump[i] for s in in_states) for i in range(3))
        return rf, jump, 0
    return state.rf, state.jump, 0


def _folded_geometry(layer, in_states):
    """(rf, jump, macs) of the layers that fold time or snapshots into the batch."""
    state = in_states[0]
    if isinstance(layer, (i3d_layers.FoldTime, i3d_layers.UnfoldTime)):
        return state.rf, state.jump, 0
    if isinstance(layer, i3d_layers.Snapshots):
        # Each snapshot stacks `length` frames into channels; neighbouring
        # snapshots are `spacing` frames apart.
        rf, jump = list(state.rf), list(state.jump)
        rf[0] += (layer.length - 1) * jump[0]
        frames = state.shape[1]
        if frames is not None and layer.num_snapshots > 1:
            starts = i3d_layers.snapshot_starts(frames, layer.num_snapshots, layer.span)
            jump[0] *= max(1, round((starts[-1] - starts[0]) / (layer.num_snapshots - 1)))
        return tuple(rf), tuple(jump), 0
    return None


def _copies(layer, in_states):
    """Clip copies along the batch axis after `layer` (see `_State.copies`)."""
    state = in_states[0]
    if isinstance(layer, i3d_layers.FoldTime):
        return state.copies * (state.shape[1] or 1)
    if isinstance(layer, i3d_layers.Snapshots):
        return state.copies * layer.num_snapshots
    if isinstance(layer, i3d_layers.UnfoldTime):
        steps = layer.steps
        if steps is None and len(in_states) > 1:
            steps = in_states[1].shape[1]
        return max(1, state.copies // (steps or 1))
    return state.copies


def _concrete_input_shape(model, input_shape):
    if input_shape is not None:
        return (1, *input_shape)
    shape = tuple(model.inputs[0].shape)
    defaults = [64, 224, 224] if len(shape) == 5 else [224, 224]
    filled = [1]
    for i, n in enumerate(shape[1:-1]):
        filled.append(n if n is not None else defaults[i])
    return (*filled, shape[-1])


def _trace(model, states, rows):
    """Walks `model`'s graph; `states` maps id(KerasTensor) -> _State."""
    for layer in model.operations:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node = next(
            (n for n in layer._inbound_nodes
             if n.input_tensors and all(id(t) in states for t in n.input_tensors)),
            None,
        )
        if node is None:
            continue
        in_states = [states[id(t)] for t in node.input_tensors]
        if isinstance(layer, keras.Model) and hasattr(layer, "operations"):
            inner = {id(t): s for t, s in zip(layer.inputs, in_states)}
            _trace(layer, inner, rows)
            outs = keras.tree.flatten(layer.outputs)
            for t, inner_t in zip(keras.tree.flatten(node.output_tensors), outs):
                states[id(t)] = inner[id(inner_t)]
            continue
        shapes = [s.shape for s in in_states]
        out_shape = layer.compute_output_shape(shapes[0] if len(shapes) == 1 else shapes)
        rf, jump, macs = _layer_geometry(layer, in_states)
        macs *= in_states[0].copies
        copies = _copies(layer, in_states)
        for t in keras.tree.flatten(node.output_tensors):
            states[id(t)] = _State(tuple(out_shape), rf, jump, copies)
        rows.append((layer.name, tuple(out_shape), rf, jump, layer.count_params(), macs))


def receptive_fields(model, input_shape=None, endpoints=None):
    """Receptive field, stride, parameters and multiply-adds per endpoint.

    Reference: Carreira & Zisserman, CVPR 2017, Sec. 2.2 ("Pacing receptive
    field growth in space, time and network depth").

    Args:
        model: a functional Keras model (I3D, a fusion model, an inflated
            keras.applications model, or another model of this package).
        input_shape: one clip's shape without batch, e.g. `(64, 224, 224, 3)`;
            default: the model's input shape with unknown frames set to 64 and
            unknown sizes to 224.
        endpoints: names of the layers to report; default: DeepMind's I3D
            endpoints where the model has them, else every layer with
            parameters or a change of receptive field. Parameters and
            multiply-adds of unreported layers are added to the next row.

    Returns:
        A list of `EndpointInfo` in graph order.

    Example:

    >>> rows = receptive_fields(InceptionI3D(), input_shape=(64, 224, 224, 3))
    >>> rows[0].name, rows[0].receptive_field, rows[0].stride
    ('Conv3d_1a_7x7', (7, 7, 7), (2, 2, 2))
    """
    shape = _concrete_input_shape(model, input_shape)
    states = {}
    for t in model.inputs:
        t_shape = tuple(t.shape)
        if len(t_shape) != len(shape):
            raise ValueError(
                f"Expected input_shape of rank {len(t_shape) - 1} (without batch) "
                f"for input {t.name!r}. Received: input_shape={shape[1:]}"
            )
        if t_shape[-1] is not None and shape[-1] != t_shape[-1]:
            # Multi-input models: each input keeps its own channel count.
            shape = (*shape[:-1], t_shape[-1])
        states[id(t)] = _State(shape)
    rows = []
    _trace(model, states, rows)
    names = {r[0] for r in rows}
    if endpoints is None:
        wanted = [e for e in i3d_model.ENDPOINTS if e in names]
        if not wanted:
            wanted, previous = [], None
            for name, _, rf, jump, params, _ in rows:
                if params or (rf, jump) != previous:
                    wanted.append(name)
                previous = (rf, jump)
    else:
        wanted = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        unknown = [e for e in wanted if e not in names]
        if unknown:
            raise ValueError(f"Expected layer names of the model. Received: endpoints={unknown}")
    wanted = set(wanted)
    result, params, macs = [], 0, 0
    for name, out_shape, rf, jump, p, m in rows:
        params, macs = params + p, macs + m
        if name in wanted:
            result.append(EndpointInfo(name, tuple(out_shape[1:]), rf, jump, params, macs))
            params, macs = 0, 0
    return result


def format_table(rows):
    """Renders `receptive_fields` rows as a fixed-width text table with totals."""
    header = (f"{'endpoint':<22} {'output shape':<22} {'RF t x h x w':<16} "
              f"{'stride':<12} {'params':>12} {'GMACs':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.name:<22} {'x'.join(str(d) for d in r.output_shape):<22} "
            f"{'x'.join(str(v) for v in r.receptive_field):<16} "
            f"{'x'.join(str(v) for v in r.stride):<12} {r.params:>12,} {r.macs / 1e9:>9.3f}"
        )
    total_params = int(np.sum([r.params for r in rows]))
    total_macs = float(np.sum([r.macs for r in rows]))
    lines.append("-" * len(header))
    lines.append(f"{'total':<74} {total_params:>12,} {total_macs / 1e9:>9.3f}")
    return "\n".join(lines)
