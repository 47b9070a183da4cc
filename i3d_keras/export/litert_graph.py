"""A 4-D formulation of the package's video models for LiteRT and XNNPACK.

LiteRT runs a model on its CPU with the XNNPACK delegate where XNNPACK takes
the operators, and with its own reference kernels elsewhere, copying tensors
at every border between the two. The Keras models' 2D formulation of Conv3D
(`i3d_keras.models.convolution`) slices and concatenates 5-D clips
`[batch, time, height, width, channels]`, which XNNPACK rejects: I3D's float32
LiteRT file ran in 13 XNNPACK partitions with 64 `SLICE`s and the stem's
7-input `CONCATENATION` between them, about twice as slow as TensorFlow.

This module traces a Keras model again, layer by layer, with the same weights,
into a graph of 4-D tensors: a batch-1 clip `[1, T, H, W, C]` is held as
`[T, H, W, C]` (time as the batch), so that

* a Conv3D is `kt` time-shifted copies of its input (`PAD`, `SLICE` on the
  time axis; a temporal stride by `RESHAPE` into `[rows, stride, H * W, C]`
  and one slice per tap), concatenated along channels (at most 5 inputs per
  `CONCATENATION`, XNNPACK's limit), then one `CONV_2D`; a `1x1x1` convolution is a `CONV_2D`
  with a `1x1` kernel;
* the BatchNorm after a convolution (or a dense layer) is folded into its
  kernel and bias, and its ReLU into the operator (LiteRT's fused activation);
* 3D poolings are a `MAX_POOL_2D` / `AVERAGE_POOL_2D` over space on
  `[T, H, W, C]` and one over time on `[1, T, H * W, C]`, exactly as
  `i3d_keras.models.layers.Pooling3D` computes them;
* means over the clip are `MEAN` over the two middle axes of
  `[1, T, H * W, C]`, dense layers `FULLY_CONNECTED` on 2-D tensors, and an
  LSTM is unrolled over the clip's steps (the converter's `WHILE` loop is not
  an XNNPACK operator).

Layers it does not know run as Keras runs them, on the 5-D clip (correct, but
XNNPACK may split the graph there). The numbers are those of the Keras model
up to float rounding (BatchNorm folding, summation order); the tests compare
logits within 1e-4 of their scale.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(I3D's inflated 3D convolutions and poolings); Jacob et al., "Quantization and
Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference",
CVPR 2018 (BatchNorm folding before integer quantisation).

Example:

>>> model = InceptionI3D(10, frames=8, image_size=32)
>>> fn = logits_function(model, {"rgb": (8, 32, 32, 3)})
>>> fn.structured_outputs["logits"].shape
TensorShape([1, 10])
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from i3d_keras.models import layers as i3d_layers

#: The most inputs per `CONCATENATION` XNNPACK's delegate takes (ai-edge-litert
#: 2.3: 5 taken, 6 or more left to LiteRT's own kernel, float and int8); more
#: are concatenated in two levels.
MAX_CONCAT_INPUTS = 5


class _Clip:
    """A batch-1 clip `[1, T, H, W, C]` held as the 4-D tensor `[T, H, W, C]`."""

    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def unfold(self):
        return tf.reshape(self.x, [1, *self.x.shape])


def fold(x):
    """`[1, T, H, W, C]` -> `_Clip`; other tensors as they are."""
    if isinstance(x, tf.Tensor) and len(x.shape) == 5 and x.shape[0] == 1:
        return _Clip(tf.reshape(x, x.shape[1:]))
    return x


def _unfold_all(structure):
    return tf.nest.map_structure(lambda v: v.unfold() if isinstance(v, _Clip) else v,
                                 structure)


def _leaves(structure):
    return [v for v in tf.nest.flatten(structure) if isinstance(v, (tf.Tensor, _Clip))]


def concat(tensors, axis):
    """`tf.concat` as concatenations of at most `MAX_CONCAT_INPUTS` inputs.

    The first inputs are concatenated first, as few as needed, so that the
    fewest are copied twice (7 time taps: 3 of them).
    """
    tensors = list(tensors)
    if len(tensors) == 1:
        return tensors[0]
    while len(tensors) > MAX_CONCAT_INPUTS:
        merged = min(len(tensors) - MAX_CONCAT_INPUTS + 1, MAX_CONCAT_INPUTS)
        tensors = [tf.concat(tensors[:merged], axis), *tensors[merged:]]
    return tf.concat(tensors, axis)


def _slice(x, begin, size):
    """`tf.slice` with every size explicit (XNNPACK rejects a size of -1)."""
    size = [x.shape[i] - b if n == -1 else n for i, (b, n) in enumerate(zip(begin, size))]
    return tf.slice(x, begin, size)


def _same_padding(length, size, stride):
    """TensorFlow "SAME" padding along one axis: `(before, after, output_length)`."""
    out = -(-length // stride)
    total = max((out - 1) * stride + size - length, 0)
    return total // 2, total - total // 2, out


def _padding(length, size, stride, padding):
    if padding == "same":
        return _same_padding(length, size, stride)
    return 0, 0, (length - size) // stride + 1


def time_taps(x, size, stride, padding):
    """The `size` time-shifted copies of a folded clip, concatenated along channels.

    Args:
        x: `[T, H, W, C]` (time as the batch), static shape.
        size, stride: the kernel's temporal size and stride.
        padding: `"same"` or `"valid"`.

    Returns:
        `[T_out, H, W, size * C]`: channel `k * C + c` holds input channel `c`
        at time `t * stride + k - pad_before` (zeros outside the clip), the
        order of `i3d_keras.models.convolution`'s taps.
    """
    length, height, width, channels = x.shape
    before, after, out = _padding(length, size, stride, padding)
    if size == 1 and stride == 1:
        return x
    rows = max(out + (size - 1) // stride, -(-(before + length) // stride))
    after = rows * stride - before - length
    if before or after > 0:
        x = tf.pad(x, [[before, max(after, 0)], [0, 0], [0, 0], [0, 0]])
    if after < 0:
        x = _slice(x, [0, 0, 0, 0], [rows * stride, -1, -1, -1])
    if stride == 1:
        taps = [_slice(x, [k, 0, 0, 0], [out, -1, -1, -1]) for k in range(size)]
    else:
        # Phases: frame t * stride + k is row t + k // stride, phase k % stride.
        x = tf.reshape(x, [rows, stride, height * width, channels])
        taps = [tf.reshape(_slice(x, [k // stride, k % stride, 0, 0], [out, 1, -1, -1]),
                           [out, height, width, channels]) for k in range(size)]
    return concat(taps, axis=-1)


def _numpy(variable):
    """A variable's value as float64 (read eagerly, also while tracing)."""
    with tf.init_scope():
        return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)


def _batch_norm_affine(norm):
    """A BatchNormalization layer's inference as `x * scale + offset` (float64)."""
    scale = 1.0 / np.sqrt(_numpy(norm.moving_variance) + norm.epsilon)
    if norm.scale:
        scale = scale * _numpy(norm.gamma)
    offset = -_numpy(norm.moving_mean) * scale
    if norm.center:
        offset = offset + _numpy(norm.beta)
    return scale, offset


def _following_batch_norm(op, model_outputs):
    """The BatchNormalization over the last axis that alone reads `op`'s only
    output, or None (shared layers, other readers, an output of a model in
    `model_outputs`, the ids of the traced models' outputs, are left as they are)."""
    if len(op._inbound_nodes) != 1 or len(op._outbound_nodes) != 1:
        return None
    if id(op.output) in model_outputs:
        return None
    norm = op._outbound_nodes[0].operation
    if not isinstance(norm, keras.layers.BatchNormalization) or len(norm._inbound_nodes) != 1:
        return None
    rank = len(op.output.shape)
    return norm if norm.axis % rank == rank - 1 else None


def _activation(name):
    return None if name == "linear" else name


def _apply_activation(y, activation):
    if activation is None:
        return y
    if activation == "relu":
        return tf.nn.relu(y)
    return keras.activations.get(activation)(y)


class _Tracer:
    """Traces a Keras model into 4-D TensorFlow ops (one per conversion).

    `refold[id(tensor)]` rebuilds an affine operator's output with its
    weights scaled and shifted per output channel (how a following BatchNorm
    is folded in); entries keep their tensor alive so that ids stay unique.
    """

    def __init__(self):
        self.refold = {}
        self.folded = set()  # ids of BatchNorm layers folded into the layer before
        self.model_outputs = set()  # ids of the traced models' output tensors
        self.fallbacks = []

    # -- graph walking ----------------------------------------------------

    def run(self, model, values):
        """Runs `model`'s graph on `values` (one per `model.inputs`)."""
        self.model_outputs.update(id(t) for t in tf.nest.flatten(model.outputs))
        return model._run_through_graph(list(values), operation_fn=self.operation)

    def operation(self, op):
        if isinstance(op, keras.Sequential):
            op = op._functional
        if isinstance(op, keras.Model) and hasattr(op, "_run_through_graph"):
            return functools.partial(self._nested, op)
        for cls, method in _HANDLERS:
            if isinstance(op, cls):
                return functools.partial(getattr(self, method), op)
        return functools.partial(self.fallback, op)

    def _nested(self, model, inputs, *args, **kwargs):
        del args, kwargs  # training / mask: inference
        self.model_outputs.update(id(t) for t in tf.nest.flatten(model.outputs))
        return model._run_through_graph(inputs, operation_fn=self.operation)

    def fallback(self, op, *args, **kwargs):
        """A layer this module does not know, run by Keras on 5-D clips."""
        if _leaves((args, kwargs)) and any(isinstance(v, _Clip) for v in _leaves((args, kwargs))):
            self.fallbacks.append(op.name)
        args, kwargs = _unfold_all((args, kwargs))
        kwargs.pop("training", None)
        out = op(*args, **kwargs)
        return tf.nest.map_structure(fold, out)

    # -- element-wise and structural layers --------------------------------

    def identity(self, op, x, *args, **kwargs):
        del op, args, kwargs
        return x

    def elementwise(self, op, *args, **kwargs):
        """Layers that act value by value (activations, sums): any layout."""
        leaves = _leaves((args, kwargs))
        if not all(isinstance(v, _Clip) for v in leaves):
            return self.fallback(op, *args, **kwargs)
        args, kwargs = tf.nest.map_structure(lambda v: v.x if isinstance(v, _Clip) else v,
                                             (args, kwargs))
        kwargs.pop("training", None)
        return _Clip(op(*args, **kwargs))

    def concatenate(self, op, inputs, *args, **kwargs):
        if not all(isinstance(v, _Clip) for v in inputs) or op.axis % 5 == 0:
            return self.fallback(op, inputs, *args, **kwargs)
        return _Clip(concat([v.x for v in inputs], op.axis % 5 - 1))

    def fold_time(self, op, x, *args, **kwargs):
        if not isinstance(x, _Clip):
            return self.fallback(op, x, *args, **kwargs)
        return x.x

    def unfold_time(self, op, inputs, *args, **kwargs):
        folded = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if isinstance(folded, _Clip):
            return self.fallback(op, inputs, *args, **kwargs)
        steps = op.steps if op.steps is not None else int(
            inputs[1].x.shape[0] if isinstance(inputs[1], _Clip) else inputs[1].shape[1])
        if folded.shape[0] != steps:  # batch 1: [steps, ...] is [1, steps, ...]
            return self.fallback(op, inputs, *args, **kwargs)
        if len(folded.shape) == 4:
            return _Clip(folded)
        return tf.reshape(folded, [1, *folded.shape])

    def snapshots(self, op, x, *args, **kwargs):
        if not isinstance(x, _Clip):
            return self.fallback(op, x, *args, **kwargs)
        frames, height, width, channels = x.x.shape
        offset = (op.span - op.length) // 2
        stacks = []
        for start in i3d_layers.snapshot_starts(frames, op.num_snapshots, op.span):
            stack = _slice(x.x, [start + offset, 0, 0, 0], [op.length, -1, -1, -1])
            if op.length > 1:  # frame by frame along channels
                stack = tf.reshape(tf.transpose(stack, [1, 2, 0, 3]),
                                   [1, height, width, op.length * channels])
            stacks.append(stack)
        return concat(stacks, axis=0)

    def flatten(self, op, x, *args, **kwargs):
        if not isinstance(x, _Clip):
            return self.fallback(op, x, *args, **kwargs)
        return tf.reshape(x.x, [1, -1])

    # -- reductions and poolings -------------------------------------------

    def _clip_mean(self, x, keepdims):
        """Mean of a folded clip over time and space: `[1, C]`."""
        t, h, w, c = x.shape
        y = tf.reduce_mean(tf.reshape(x, [1, t, h * w, c]), axis=[1, 2])
        return tf.reshape(y, [1, 1, 1, 1, c]) if keepdims else y

    def mean(self, op, x, *args, **kwargs):
        axes = {a % 5 for a in op.axis} if isinstance(x, _Clip) else None
        if axes != {1, 2, 3}:
            return self.fallback(op, x, *args, **kwargs)
        return self._clip_mean(x.x, op.keepdims)

    def global_pool(self, op, x, *args, **kwargs):
        if not isinstance(x, _Clip) or op.data_format != "channels_last":
            return self.fallback(op, x, *args, **kwargs)
        if isinstance(op, keras.layers.GlobalMaxPooling3D):
            t, h, w, c = x.x.shape
            y = tf.reduce_max(tf.reshape(x.x, [1, t, h * w, c]), axis=[1, 2])
            return tf.reshape(y, [1, 1, 1, 1, c]) if op.keepdims else y
        return self._clip_mean(x.x, op.keepdims)

    def pooling(self, op, x, *args, **kwargs):
        if not isinstance(x, _Clip):
            return self.fallback(op, x, *args, **kwargs)
        if isinstance(op, i3d_layers.Pooling3D):
            window = op._window((1, *x.x.shape))
            strides, padding, mode = op.strides, op.padding, op.mode
        else:
            if op.data_format != "channels_last":
                return self.fallback(op, x, *args, **kwargs)
            window, strides, padding = tuple(op.pool_size), tuple(op.strides), op.padding
            mode = "max" if isinstance(op, keras.layers.MaxPooling3D) else "avg"
        return _Clip(pool3d(x.x, window, strides, padding, mode))

    # -- affine layers -----------------------------------------------------

    def _affine(self, op, build, kernel, bias, activation):
        """Emits `build(kernel, bias)`; records how to fold a BatchNorm into it.

        The BatchNorm that alone reads `op`'s output is folded in at once: a
        layer rebuilt with folded weights would leave its first weights in the
        graph as dead constants, which the converter copies many times over.
        """
        norm = (_following_batch_norm(op, self.model_outputs) if activation is None
                else None)
        if norm is not None:
            scale, offset = _batch_norm_affine(norm)
            kernel, bias = kernel * scale, bias * scale + offset
            self.folded.add(id(norm))
        y = build(kernel, bias)
        if activation is None:  # a BatchNorm further on (after a Dropout) folds in here
            def rebuild(scale, offset):
                return build(kernel * scale, bias * scale + offset)
            self.refold[id(y)] = (y, rebuild)
        return _apply_activation(y, activation)

    def conv3d(self, op, x, *args, **kwargs):
        x = fold(x) if isinstance(x, tf.Tensor) else x
        if (not isinstance(x, _Clip) or op.data_format != "channels_last" or op.groups != 1
                or tuple(op.dilation_rate) != (1, 1, 1)):
            return self.fallback(op, x, *args, **kwargs)
        kernel = _numpy(op.kernel)
        bias = (_numpy(op.bias) if op.use_bias
                else np.zeros(kernel.shape[-1]))
        kt, kh, kw, c_in, c_out = kernel.shape
        strides, padding = tuple(op.strides), op.padding
        taps = time_taps(x.x, kt, strides[0], padding)

        def build(kernel, bias):
            kernel2d = np.transpose(kernel, [1, 2, 0, 3, 4]).reshape(kh, kw, kt * c_in, c_out)
            y = tf.nn.conv2d(taps, tf.constant(kernel2d, tf.float32), [1, *strides[1:], 1],
                             padding.upper())
            return tf.nn.bias_add(y, tf.constant(bias, tf.float32))

        y = self._affine(op, build, kernel, bias, _activation(op.activation.__name__))
        return _Clip(y) if y.shape.rank == 4 else y

    def conv2d(self, op, x, *args, **kwargs):
        if (not isinstance(x, tf.Tensor) or op.data_format != "channels_last"
                or op.groups != 1 or len(x.shape) != 4):
            return self.fallback(op, x, *args, **kwargs)
        kernel = _numpy(op.kernel)
        bias = (_numpy(op.bias) if op.use_bias
                else np.zeros(kernel.shape[-1]))

        def build(kernel, bias):
            y = tf.nn.conv2d(x, tf.constant(kernel, tf.float32), [1, *op.strides, 1],
                             op.padding.upper(), dilations=[1, *op.dilation_rate, 1])
            return tf.nn.bias_add(y, tf.constant(bias, tf.float32))

        return self._affine(op, build, kernel, bias, _activation(op.activation.__name__))

    def dense(self, op, x, *args, **kwargs):
        if isinstance(x, _Clip) or getattr(op, "lora_enabled", False):
            return self.fallback(op, x, *args, **kwargs)
        shape = x.shape
        flat = tf.reshape(x, [-1, shape[-1]]) if len(shape) != 2 else x
        kernel = _numpy(op.kernel)
        bias = (_numpy(op.bias) if op.use_bias
                else np.zeros(kernel.shape[-1]))

        def build(kernel, bias):
            y = tf.matmul(flat, tf.constant(kernel, tf.float32)) + tf.constant(bias, tf.float32)
            return y if len(shape) == 2 else tf.reshape(y, [*shape[:-1], kernel.shape[-1]])

        return self._affine(op, build, kernel, bias, _activation(op.activation.__name__))

    def batch_norm(self, op, x, *args, **kwargs):
        if id(op) in self.folded:  # already in the weights of the layer before
            return x
        tensor = x.x if isinstance(x, _Clip) else x
        rank = len(tensor.shape) + (1 if isinstance(x, _Clip) else 0) if isinstance(
            tensor, tf.Tensor) else None
        if rank is None or op.axis % rank != rank - 1:
            return self.fallback(op, x, *args, **kwargs)
        scale, offset = _batch_norm_affine(op)
        entry = self.refold.get(id(tensor))
        if entry is not None and entry[0] is tensor:
            y = entry[1](scale, offset)
            self.refold[id(y)] = (y, lambda s, o, f=entry[1], a=scale, b=offset: f(a * s, b * s + o))
        else:
            y = tensor * tf.constant(scale, tf.float32) + tf.constant(offset, tf.float32)
        return _Clip(y) if isinstance(x, _Clip) else y

    def lstm(self, op, x, *args, **kwargs):
        """A Keras LSTM unrolled over the clip's steps (batch 1, zero initial state).

        `FULLY_CONNECTED`, `LOGISTIC`, `TANH`, `MUL`, `ADD` and `SLICE` only,
        which XNNPACK takes; the converter's own LSTM lowering is a `WHILE`
        loop, which it does not.
        """
        cell = op.cell
        if (isinstance(x, _Clip) or not isinstance(x, tf.Tensor) or len(x.shape) != 3
                or x.shape[0] != 1 or None in x.shape or op.stateful or kwargs.get("mask") is not None
                or kwargs.get("initial_state") is not None or args
                or _activation(cell.activation.__name__) != "tanh"
                or _activation(cell.recurrent_activation.__name__) != "sigmoid"):
            return self.fallback(op, x, *args, **kwargs)
        units, steps = cell.units, x.shape[1]
        kernel = tf.constant(_numpy(cell.kernel), tf.float32)
        recurrent = tf.constant(_numpy(cell.recurrent_kernel), tf.float32)
        bias = _numpy(cell.bias) if cell.use_bias else np.zeros(4 * units)
        inputs = tf.matmul(tf.reshape(x, x.shape[1:]), kernel) + tf.constant(bias, tf.float32)
        order = range(steps - 1, -1, -1) if op.go_backwards else range(steps)
        h = c = None
        outputs = []
        for t in order:
            z = _slice(inputs, [t, 0], [1, -1])
            if h is not None:
                z = z + tf.matmul(h, recurrent)
            i, f, g, o = (_slice(z, [0, k * units], [1, units]) for k in range(4))
            i, f, o, g = tf.sigmoid(i), tf.sigmoid(f), tf.sigmoid(o), tf.tanh(g)
            c = i * g if c is None else f * c + i * g
            h = o * tf.tanh(c)
            outputs.append(h)
        out = tf.reshape(concat(outputs, axis=0), [1, steps, units]) if op.return_sequences else h
        return [out, h, c] if op.return_state else out

    def depthwise_conv3d(self, op, x, *args, **kwargs):
        if not isinstance(x, _Clip):
            return self.fallback(op, x, *args, **kwargs)
        kt, kh, kw = op.kernel_size
        channels, multiplier = x.x.shape[-1], op.depth_multiplier
        kernel = np.transpose(_numpy(op.kernel), [1, 2, 3, 4, 0]).reshape(
            kh, kw, channels, multiplier * kt)
        y = tf.nn.depthwise_conv2d(x.x, tf.constant(kernel, tf.float32),
                                   [1, *op.strides, 1], op.padding.upper(),
                                   dilations=list(op.dilation_rate))
        time, height, width = y.shape[:3]
        out_channels = channels * multiplier
        if kt > 1:
            # [T, H * W, C * multiplier, taps]: tap k of frame t - k + pad adds to t.
            y = tf.reshape(y, [time, height * width, out_channels, kt])
            before = (kt - 1) // 2
            y = tf.pad(y, [[before, kt - 1 - before], [0, 0], [0, 0], [0, 0]])
            taps = [_slice(y, [k, 0, 0, k], [time, -1, -1, 1]) for k in range(kt)]
            y = taps[0]
            for tap in taps[1:]:
                y = y + tap
        y = tf.reshape(y, [time, height, width, out_channels])
        if op.use_bias:
            y = tf.nn.bias_add(y, tf.constant(_numpy(op.bias), tf.float32))
        return _Clip(y)


def pool3d(x, window, strides, padding, mode):
    """3D pooling of a folded clip `[T, H, W, C]` as 2D poolings and means.

    Over space on `[T, H, W, C]`, then over time on `[1, T, H' * W', C]`:
    the computation of `i3d_keras.models.layers.Pooling3D` (exact for max
    pooling, and for average pooling up to rounding: per-axis window counts
    multiply), in 4-D tensors only. An average over a whole axis ("valid"
    window as long as the axis: I3D's head at 224 pixels and 16 frames) is a
    `MEAN`, a "valid" stride-1 average over time a sum of shifted slices, and
    any other "valid" average (the head on frames over 224 pixels) a
    depthwise convolution of weights `1 / window`: XNNPACK has no int8
    average pooling, but int8 means, sums and depthwise convolutions.
    """
    (kt, kh, kw), (st, sh, sw) = window, strides
    time, height, width, channels = x.shape
    valid_mean = mode == "avg" and padding == "valid"
    if (kh, kw, sh, sw) != (1, 1, 1, 1):
        if valid_mean and (kh, kw) == (height, width):
            x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        elif valid_mean:
            x = _valid_average(x, kh, kw, sh, sw)
        else:
            pool = tf.nn.max_pool2d if mode == "max" else tf.nn.avg_pool2d
            x = pool(x, [kh, kw], [sh, sw], padding.upper())
    if (kt, st) == (1, 1):
        return x
    time, height, width, channels = x.shape
    x = tf.reshape(x, [1, time, height * width, channels])
    if valid_mean and kt == time:
        x = tf.reduce_mean(x, axis=[1], keepdims=True)
    elif valid_mean and st == 1:
        out = time - kt + 1
        total = _slice(x, [0, 0, 0, 0], [1, out, -1, -1])
        for k in range(1, kt):
            total = total + _slice(x, [0, k, 0, 0], [1, out, -1, -1])
        x = total * (1.0 / kt)
    elif valid_mean:
        x = _valid_average(x, kt, 1, st, 1)
    else:
        pool = tf.nn.max_pool2d if mode == "max" else tf.nn.avg_pool2d
        x = pool(x, [kt, 1], [st, 1], padding.upper())
    return tf.reshape(x, [x.shape[1], height, width, channels])


def _valid_average(x, kh, kw, sh, sw):
    """`avg_pool2d(..., "VALID")` of `[N, H, W, C]` as a depthwise convolution
    (XNNPACK runs it in int8; it has no int8 average pooling)."""
    weights = np.full((kh, kw, x.shape[-1], 1), 1.0 / (kh * kw), np.float32)
    return tf.nn.depthwise_conv2d(x, tf.constant(weights), [1, sh, sw, 1], "VALID")


_HANDLERS = (
    (i3d_layers.Pooling3D, "pooling"),
    (keras.layers.MaxPooling3D, "pooling"),
    (keras.layers.AveragePooling3D, "pooling"),
    (keras.layers.GlobalAveragePooling3D, "global_pool"),
    (keras.layers.GlobalMaxPooling3D, "global_pool"),
    (i3d_layers.Mean, "mean"),
    (i3d_layers.DepthwiseConv3D, "depthwise_conv3d"),
    (i3d_layers.FoldTime, "fold_time"),
    (i3d_layers.UnfoldTime, "unfold_time"),
    (i3d_layers.Snapshots, "snapshots"),
    (i3d_layers.WeightedSum, "elementwise"),
    (keras.layers.Conv3D, "conv3d"),
    (keras.layers.Conv2D, "conv2d"),
    (keras.layers.Dense, "dense"),
    (keras.layers.LSTM, "lstm"),
    (keras.layers.BatchNormalization, "batch_norm"),
    (keras.layers.Dropout, "identity"),
    (keras.layers.Activation, "elementwise"),
    (keras.layers.ReLU, "elementwise"),
    (keras.layers.Add, "elementwise"),
    (keras.layers.Multiply, "elementwise"),
    (keras.layers.Maximum, "elementwise"),
    (keras.layers.Minimum, "elementwise"),
    (keras.layers.Subtract, "elementwise"),
    (keras.layers.Concatenate, "concatenate"),
    (keras.layers.Flatten, "flatten"),
)


def logits_function(model, clip_shapes, logits=None):
    """A `tf.function` of batch-1 clips returning `{"logits": ...}`, 4-D inside.

    Args:
        model: a Keras functional model: a stream model ending at its logits,
            a `TwoStreamI3D` model or a comparison architecture
            (`i3d_keras.models.baselines`), computing in float32.
        clip_shapes: `{"rgb": (T, H, W, 3), "flow": (T, H, W, 2)}`, the
            streams the model takes (fixed shapes, without the batch).
        logits: picks the logits from the model's output (default: the output
            itself, or its `"logits"` entry).

    Returns:
        A concrete function with inputs named after the streams
        (`[1, T, H, W, C]` float32) and the output `{"logits": [1, classes]}`;
        its `.fallbacks` attribute lists the layers run on 5-D clips by Keras.
    """
    names = [t.name.split(":")[0] for t in model.inputs]
    missing = [n for n in names if n not in clip_shapes]
    if missing:
        raise ValueError(f"Expected a clip shape for every input of the model {names}. "
                         f"Received: clip_shapes for {sorted(clip_shapes)}")
    specs = [tf.TensorSpec([1, *clip_shapes[n]], tf.float32, name=n) for n in names]
    tracer = _Tracer()

    def pick(out):
        if logits is not None:
            return logits(out)
        return out["logits"] if isinstance(out, dict) else out

    @tf.function(input_signature=specs, autograph=False)
    def fn(*clips):
        out = tracer.run(model, [fold(c) for c in clips])
        out = pick(out)
        out = out.unfold() if isinstance(out, _Clip) else out
        return {"logits": tf.cast(out, tf.float32)}

    concrete = fn.get_concrete_function()
    concrete.fallbacks = tuple(tracer.fallbacks)
    return concrete


__all__ = ["MAX_CONCAT_INPUTS", "concat", "fold", "logits_function", "pool3d", "time_taps"]
