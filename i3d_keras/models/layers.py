"""Keras layers for I3D that convert to LiteRT builtin ops.

TensorFlow's `MaxPool3D` and `AvgPool3D` are not LiteRT builtins: the TF 2.21
converter emits them as Flex ops, which the standalone `ai-edge-litert` runtime
lacks. Both poolings are separable, so each 3D pooling is computed here as a 2D
pooling over (height, width) followed by a 2D pooling over (time, 1) on a
reshaped tensor. For max pooling with TensorFlow "SAME" padding this is exact
(the maximum of maxima, padding ignored per axis); for average pooling it is
exact up to float rounding (the mean of means over equal-count windows, and TF
excludes padding from the count per axis).

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017.
"""

import keras
import tensorflow as tf

from i3d_keras.models import convolution

_PACKAGE = "i3d_keras"


def _triple(value, name):
    if isinstance(value, int):
        return (value, value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise ValueError(
            f"`{name}` must be an int or 3 ints (time, height, width). "
            f"Received: {name}={value}"
        )
    return value


def _pool_output_length(length, size, stride, padding):
    if length is None:
        return None
    if padding == "same":
        return -(-length // stride)
    return max((length - size) // stride + 1, 0)


def _sliding_mean(x, axis, size):
    """Mean over windows of `min(size, length)` along `axis`, stride 1, valid."""
    if size == 1:
        return x
    static_length = x.shape[axis]
    if static_length is not None and static_length <= size:
        # The usual case of a clip or frame smaller than the window: one mean.
        return tf.reduce_mean(x, axis=axis, keepdims=True)
    if static_length is not None:
        length = window = size
        out_len = static_length - size + 1
    else:
        length = tf.shape(x)[axis]
        window = tf.minimum(size, length)
        out_len = length - window + 1
    rank = len(x.shape)
    # A leading zero along `axis` (static paddings: XLA- and LiteRT-friendly).
    paddings = [[1, 0] if i == axis else [0, 0] for i in range(rank)]
    sums = tf.pad(tf.cumsum(x, axis=axis), paddings)

    # Strided slices with every other axis left open: begin/size vectors built
    # from `tf.shape` crashed XLA with an unknown batch size (TF 2.21).
    def along_axis(start, stop):
        index = [slice(None)] * rank
        index[axis] = slice(start, stop)
        return sums[tuple(index)]

    return (along_axis(window, None) - along_axis(0, out_len)) / tf.cast(window, x.dtype)


def _separable_max_same(x, pool_size):
    """Stride-1 "SAME" max pooling as maxima of shifted slices, axis by axis.

    The same values as `tf.nn.max_pool3d` (padding never wins: it is the
    dtype's lowest value). Used in training without oneDNN: the gradient of
    `tf.maximum` is an element-wise select, while TensorFlow's Eigen
    `MaxPoolGrad` (of the 2D poolings of `Pooling3D`) took 9% of an I3D
    training step on the project's CPU. oneDNN's `MaxPoolGrad` is the faster
    one (training step 2.77 against 2.97 s and 2.59 against 2.79 s, two
    interleaved A/Bs, medians of 16), so with oneDNN training pools as
    inference does. Ties route the gradient to one of the tied inputs either
    way (here the first shifted slice); in I3D the pooled inputs are ReLU
    outputs, where ties are zeros whose gradient the ReLU drops.
    """
    lowest = x.dtype.min
    for axis, size in zip((1, 2, 3), pool_size):
        if size == 1:
            continue
        before = (size - 1) // 2
        paddings = [[0, 0]] * 5
        paddings[axis] = [before, size - 1 - before]
        padded = tf.pad(x, paddings, constant_values=lowest)
        length = convolution.dimension(x, axis)
        begin, sizes = [0] * 5, [-1] * 5
        sizes[axis] = length
        shifted = []
        for k in range(size):
            begin[axis] = k
            shifted.append(tf.slice(padded, list(begin), list(sizes)))
        x = shifted[0]
        for other in shifted[1:]:
            x = tf.maximum(x, other)
    return x


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Pooling3D(keras.layers.Layer):
    """3D max or average pooling built from LiteRT builtin 2D poolings.

    Numerically the same as `keras.layers.MaxPooling3D` /
    `keras.layers.AveragePooling3D` (TensorFlow padding semantics), but converts
    to `MAX_POOL_2D` / `AVERAGE_POOL_2D` and `RESHAPE` only.

    Args:
        pool_size: int or `(time, height, width)`.
        strides: int or `(time, height, width)`; defaults to `pool_size`.
        padding: `"same"` or `"valid"`.
        mode: `"max"` or `"avg"`.
        adaptive: average pooling with stride 1 and "valid" padding only: a
            window larger than the input along an axis is shrunk to the input's
            length there (a global mean along that axis), decided at run time,
            so that dynamic shapes work too. Used by the I3D logits head for
            clips shorter than the paper's 9 frames or frames smaller than 224
            pixels; where the input is at least the window, the result is the
            plain average pooling. Computed from cumulative sums (`CUMSUM`,
            `STRIDED_SLICE`: LiteRT builtins).

    Input shape: `[batch, time, height, width, channels]`.

    Example:

    >>> layer = Pooling3D((1, 3, 3), strides=(1, 2, 2), padding="same")
    >>> layer(tf.zeros([2, 4, 32, 32, 8])).shape
    TensorShape([2, 4, 16, 16, 8])
    """

    def __init__(
        self,
        pool_size,
        strides=None,
        padding="same",
        mode="max",
        adaptive=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.pool_size = _triple(pool_size, "pool_size")
        self.strides = _triple(strides if strides is not None else pool_size, "strides")
        padding = padding.lower()
        if padding not in ("same", "valid"):
            raise ValueError(
                f"`padding` must be 'same' or 'valid'. Received: padding={padding!r}"
            )
        if mode not in ("max", "avg"):
            raise ValueError(f"`mode` must be 'max' or 'avg'. Received: mode={mode!r}")
        self.padding = padding
        self.mode = mode
        self.adaptive = bool(adaptive)
        if self.adaptive and (mode != "avg" or padding != "valid" or self.strides != (1, 1, 1)):
            raise ValueError(
                "`adaptive=True` needs mode='avg', padding='valid' and strides 1. "
                f"Received: mode={mode!r}, padding={padding!r}, strides={self.strides}"
            )
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def _window(self, shape):
        if not self.adaptive:
            return self.pool_size
        return tuple(
            k if n is None else max(1, min(k, n))
            for k, n in zip(self.pool_size, shape[1:4])
        )

    def _pool2d(self, x, ksize, strides):
        if tuple(ksize) == (1, 1) and tuple(strides) == (1, 1):
            return x
        pool = tf.nn.max_pool2d if self.mode == "max" else tf.nn.avg_pool2d
        return pool(x, ksize=list(ksize), strides=list(strides), padding=self.padding.upper())

    def call(self, inputs, training=None):
        if (training and self.mode == "max" and self._is_stride_one_same()
                and not convolution.onednn_enabled()):
            return _separable_max_same(inputs, self.pool_size)
        if self.adaptive:
            x = inputs
            for axis, size in zip((1, 2, 3), self.pool_size):
                x = _sliding_mean(x, axis, size)
            x.set_shape(self.compute_output_shape(inputs.shape))
            return x
        kt, kh, kw = self._window(inputs.shape)
        st, sh, sw = self.strides
        shape = tf.shape(inputs)
        batch, time, channels = shape[0], shape[1], inputs.shape[-1] or shape[4]
        # Spatial pooling on [batch * time, height, width, channels].
        x = tf.reshape(inputs, tf.stack([-1, shape[2], shape[3], channels]))
        x = self._pool2d(x, (kh, kw), (sh, sw))
        out_h, out_w = tf.shape(x)[1], tf.shape(x)[2]
        # Temporal pooling on [batch, time, height * width, channels].
        x = tf.reshape(x, tf.stack([batch, time, out_h * out_w, channels]))
        x = self._pool2d(x, (kt, 1), (st, 1))
        x = tf.reshape(x, tf.stack([batch, tf.shape(x)[1], out_h, out_w, channels]))
        x.set_shape(self.compute_output_shape(inputs.shape))
        return x

    def _is_stride_one_same(self):
        return self.padding == "same" and self.strides == (1, 1, 1)

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        dims = [
            _pool_output_length(n, k, s, self.padding)
            for n, k, s in zip(input_shape[1:4], window, self.strides)
        ]
        return (input_shape[0], *dims, input_shape[4])

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            mode=self.mode,
            adaptive=self.adaptive,
        )
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with TensorFlow's fused kernel in training.

    With oneDNN (`i3d_keras.models.convolution.onednn_enabled()`), training-mode batch
    normalisation of `[..., height, width, channels]` inputs runs as one
    `FusedBatchNormV3` (forward and gradient) on the inputs folded to 4D,
    instead of Keras' separate moments, normalisation and their gradients:
    an I3D training step took 2.91 s against 3.06 s (interleaved A/B in one
    process, medians of 8, the project's 2-core CPU). The same layer
    otherwise: same arguments, weights and variable names, the batch's
    (biased) variance in the moving statistics like Keras', and Keras' own
    computation in inference, without oneDNN, with a mask, renormalisation or
    statistics synchronised across replicas.

    Reference: Ioffe & Szegedy, "Batch Normalization", ICML 2015; Carreira &
    Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017 (after every I3D
    convolution but the logits).

    Example:

    >>> layer = BatchNormalization(epsilon=1e-3, scale=False)
    >>> layer(tf.ones([2, 4, 8, 8, 16]), training=True).shape
    TensorShape([2, 4, 8, 8, 16])
    """

    def call(self, inputs, training=None, mask=None):
        rank = len(inputs.shape)
        if not (training and self.trainable and mask is None and not self.renorm
                and not self.synchronized and rank >= 4 and self.axis in (-1, rank - 1)
                and convolution.onednn_enabled()):
            return super().call(inputs, training=training, mask=mask)
        inputs = tf.cast(inputs, "float32")  # as Keras: float32 statistics
        channels = inputs.shape[-1]
        shape = tf.shape(inputs)
        folded = tf.reshape(inputs, tf.stack([-1, shape[rank - 3], shape[rank - 2], channels]))
        scale = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        offset = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=folded, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # FusedBatchNormV3 returns the unbiased (n - 1) variance; Keras keeps
        # the biased one in its moving statistics.
        count = tf.cast(tf.size(inputs) // channels, "float32")
        variance = variance * tf.maximum(count - 1.0, 0.0) / count
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance * (1.0 - momentum))
        return tf.cast(tf.reshape(outputs, shape), self.compute_dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Conv3D(keras.layers.Conv3D):
    """`keras.layers.Conv3D`, computed with fast 2D convolutions on CPUs.

    The same layer (same arguments, weights, variable names and output up to
    float rounding) as `keras.layers.Conv3D`, whose TensorFlow kernels are slow
    on CPUs; see `i3d_keras.models.convolution` for the formulation and
    docs/design/conv3d-as-2d.md for measurements. Only `channels_last`, dilation 1 and
    `groups=1` (all I3D needs).

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017 (I3D's inflated 3D convolutions).

    Args:
        filters, kernel_size, strides, padding: as `keras.layers.Conv3D`.
        implementation: `"auto"` (default: TensorFlow's Conv3D when a GPU is
            visible, else the 2D formulation), `"conv3d"` or `"conv2d"`.
        **kwargs: other `keras.layers.Conv3D` arguments.

    Example:

    >>> layer = Conv3D(16, 3, strides=(1, 2, 2), padding="same")
    >>> layer(tf.zeros([2, 8, 32, 32, 3])).shape
    TensorShape([2, 8, 16, 16, 16])
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 implementation="auto", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, **kwargs)
        convolution.resolve_implementation(implementation)  # validates
        unsupported = {
            "data_format": (self.data_format, "channels_last"),
            "dilation_rate": (tuple(self.dilation_rate), (1, 1, 1)),
            "groups": (self.groups, 1),
        }
        for key, (value, expected) in unsupported.items():
            if value != expected:
                raise ValueError(
                    f"i3d_keras.models.layers.Conv3D supports {key}={expected!r} only. "
                    f"Received: {key}={value!r}"
                )
        self.implementation = implementation

    def convolution_op(self, inputs, kernel):
        return convolution.conv3d(inputs, kernel, self.strides, self.padding,
                                  self.implementation)

    def get_config(self):
        config = super().get_config()
        config["implementation"] = self.implementation
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Mean(keras.layers.Layer):
    """Mean over the given axes; a named, serialisable `keras.ops.mean`.

    Used for the I3D head: the logits are averaged over time (DeepMind's
    `averaged_logits`) and, for frames larger than 224 pixels, over the
    remaining spatial positions (DeepMind squeezes a 1x1 map there).

    Args:
        axis: int or tuple of ints (batch axis excluded from the count: axis 1
            is the first non-batch axis).
        keepdims: keep the reduced axes with length 1.

    Example:

    >>> Mean(axis=(1, 2, 3))(tf.ones([2, 4, 3, 3, 10])).shape
    TensorShape([2, 10])
    """

    def __init__(self, axis, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else (int(axis),)
        self.keepdims = bool(keepdims)

    def call(self, inputs):
        return keras.ops.mean(inputs, axis=self.axis, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        axes = {a % len(input_shape) for a in self.axis}
        if self.keepdims:
            return tuple(1 if i in axes else n for i, n in enumerate(input_shape))
        return tuple(n for i, n in enumerate(input_shape) if i not in axes)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, keepdims=self.keepdims)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WeightedSum(keras.layers.Layer):
    """Weighted sum of same-shaped tensors: the two-stream logit fusion.

    The paper adds the RGB and flow logits with equal weights at test time;
    other weights can be given (e.g. tuned on a validation split).

    Args:
        weights_per_input: one float per input; default all ones (plain sum).

    Example:

    >>> WeightedSum([1.0, 1.5])([tf.ones([1, 3]), tf.ones([1, 3])]).numpy()
    array([[2.5, 2.5, 2.5]], dtype=float32)
    """

    def __init__(self, weights_per_input=None, **kwargs):
        super().__init__(**kwargs)
        self.weights_per_input = (
            None if weights_per_input is None else [float(w) for w in weights_per_input]
        )

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        weights = self.weights_per_input or [1.0] * len(inputs)
        if len(weights) != len(inputs):
            raise ValueError(
                f"Expected one weight per input ({len(inputs)} inputs). "
                f"Received: weights_per_input={weights}"
            )
        total = inputs[0] if weights[0] == 1.0 else inputs[0] * weights[0]
        for x, w in zip(inputs[1:], weights[1:]):
            total = total + (x if w == 1.0 else x * w)
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0] if isinstance(input_shape, list) else input_shape

    def get_config(self):
        config = super().get_config()
        config.update(weights_per_input=self.weights_per_input)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DepthwiseConv3D(keras.layers.Layer):
    """Depthwise 3D convolution built from LiteRT builtin ops.

    TensorFlow has no depthwise 3D convolution (a grouped `Conv3D` has no CPU
    kernel and no LiteRT builtin). This layer computes the full, non-separable
    depthwise convolution with kernel `[t, kh, kw, channels, multiplier]`
    exactly: one per-frame `DEPTHWISE_CONV_2D` with `t * multiplier` outputs
    per channel (the `t` temporal taps), then the taps are summed with their
    temporal shifts ("SAME" zero padding in time, stride 1): `PAD`, `SLICE`,
    `ADD` and `RESHAPE` only. Used by `i3d_keras.inflate` for
    `DepthwiseConv2D` layers (MobileNetV2, EfficientNet).

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017 (inflation of 2D filters to 3D).

    Args:
        kernel_size: int or `(time, height, width)`.
        strides: int or `(height, width)` spatial strides, or
            `(1, height, width)`; the temporal stride must be 1.
        padding: spatial padding, `"same"` or `"valid"` (time is always
            "same").
        depth_multiplier: outputs per input channel.
        dilation_rate: spatial dilation, int or `(height, width)`.
        use_bias: add a bias per output channel (after the temporal sum).
        kernel_initializer, bias_initializer: Keras initialisers.

    Input shape: `[batch, time, height, width, channels]`; output
    `[batch, time, height', width', channels * depth_multiplier]`.

    Example:

    >>> layer = DepthwiseConv3D((3, 3, 3), padding="same")
    >>> layer(tf.zeros([2, 4, 8, 8, 5])).shape
    TensorShape([2, 4, 8, 8, 5])
    """

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="same",
        depth_multiplier=1,
        dilation_rate=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = _triple(kernel_size, "kernel_size")
        strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
        if len(strides) == 3:
            if strides[0] != 1:
                raise ValueError(
                    f"DepthwiseConv3D supports temporal stride 1 only. Received: strides={strides}"
                )
            strides = strides[1:]
        self.strides = tuple(int(s) for s in strides)
        dilation = (
            (dilation_rate, dilation_rate) if isinstance(dilation_rate, int) else tuple(dilation_rate)
        )
        if len(dilation) == 3:
            if dilation[0] != 1:
                raise ValueError(
                    "DepthwiseConv3D supports temporal dilation 1 only. "
                    f"Received: dilation_rate={dilation}"
                )
            dilation = dilation[1:]
        self.dilation_rate = tuple(int(d) for d in dilation)
        padding = padding.lower()
        if padding not in ("same", "valid"):
            raise ValueError(f"`padding` must be 'same' or 'valid'. Received: padding={padding!r}")
        self.padding = padding
        self.depth_multiplier = int(depth_multiplier)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"DepthwiseConv3D needs a known channel count. Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, self.depth_multiplier),
            initializer=self.kernel_initializer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(channels * self.depth_multiplier,),
                initializer=self.bias_initializer,
            )
        self.input_spec = keras.layers.InputSpec(ndim=5, axes={-1: channels})

    def call(self, inputs):
        kt, kh, kw = self.kernel_size
        channels = inputs.shape[-1]
        multiplier = self.depth_multiplier
        # Per-frame depthwise filter with the t taps as extra multipliers:
        # [kh, kw, C, multiplier * t], inner order (multiplier, tap).
        kernel = tf.transpose(tf.cast(self.kernel, inputs.dtype), [1, 2, 3, 4, 0])
        kernel = tf.reshape(kernel, [kh, kw, channels, multiplier * kt])
        shape = tf.shape(inputs)
        batch, time = shape[0], shape[1]
        x = tf.reshape(inputs, tf.stack([-1, shape[2], shape[3], channels]))
        x = tf.nn.depthwise_conv2d(
            x,
            kernel,
            strides=[1, *self.strides, 1],
            padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
        )
        out_h, out_w = tf.shape(x)[1], tf.shape(x)[2]
        out_channels = channels * multiplier
        if kt == 1:
            x = tf.reshape(x, tf.stack([batch, time, out_h, out_w, out_channels]))
        else:
            x = tf.reshape(x, tf.stack([batch, time, out_h * out_w, out_channels, kt]))
            pad_before = (kt - 1) // 2
            x = tf.pad(x, [[0, 0], [pad_before, kt - 1 - pad_before], [0, 0], [0, 0], [0, 0]])
            total = None
            for tap in range(kt):
                part = tf.slice(
                    x,
                    tf.stack([0, tap, 0, 0, tap]),
                    tf.stack([-1, time, -1, -1, 1]),
                )
                total = part if total is None else total + part
            x = tf.reshape(total, tf.stack([batch, time, out_h, out_w, out_channels]))
        if self.use_bias:
            x = x + tf.cast(self.bias, x.dtype)
        x.set_shape(self.compute_output_shape(inputs.shape))
        return x

    def compute_output_shape(self, input_shape):
        dims = []
        for n, k, s, d in zip(input_shape[2:4], self.kernel_size[1:], self.strides, self.dilation_rate):
            if n is None:
                dims.append(None)
            elif self.padding == "same":
                dims.append(-(-n // s))
            else:
                dims.append(max((n - (k - 1) * d - 1) // s + 1, 0))
        channels = input_shape[-1]
        out_channels = None if channels is None else channels * self.depth_multiplier
        return (input_shape[0], input_shape[1], *dims, out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            depth_multiplier=self.depth_multiplier,
            dilation_rate=self.dilation_rate,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


# --------------------------------------------------------------------------
# Layers for the paper's comparison models (i3d_keras.models.baselines): 2D ConvNets
# applied frame by frame or snapshot by snapshot.


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FoldTime(keras.layers.Layer):
    """Folds time into the batch: `[batch, time, ...]` -> `[batch * time, ...]`.

    Lets a 2D ConvNet (e.g. `InceptionV1`) run on every frame of a clip with
    one call, BatchNorm statistics taken over all frames of the batch; undo it
    with `UnfoldTime`. Used by the per-frame baselines of Carreira &
    Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017, Sec. 2.1.

    Example:

    >>> FoldTime()(tf.zeros([2, 4, 8, 8, 3])).shape
    TensorShape([8, 8, 8, 3])
    """

    def call(self, inputs):
        shape = tf.shape(inputs)
        rest = [inputs.shape[i] if inputs.shape[i] is not None else shape[i]
                for i in range(2, len(inputs.shape))]
        x = tf.reshape(inputs, tf.stack([-1, *rest]))
        x.set_shape(self.compute_output_shape(inputs.shape))
        return x

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        folded = batch * time if batch is not None and time is not None else None
        return (folded, *input_shape[2:])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class UnfoldTime(keras.layers.Layer):
    """Undoes `FoldTime` / `Snapshots`: `[batch * steps, ...]` -> `[batch, steps, ...]`.

    Called on one tensor, `steps` must be given; called on
    `[folded, reference]`, `steps` defaults to the reference's axis 1 (its
    time length, static or dynamic), so that clips of any length work.

    Args:
        steps: number of steps folded into the batch, or None to read it from
            the reference tensor.

    Example:

    >>> clip = tf.zeros([2, 4, 8, 8, 3])
    >>> UnfoldTime()([FoldTime()(clip), clip]).shape
    TensorShape([2, 4, 8, 8, 3])
    """

    def __init__(self, steps=None, **kwargs):
        super().__init__(**kwargs)
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ValueError(f"`steps` must be a positive int or None. Received: steps={steps}")
        self.steps = steps

    def _split(self, inputs):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(
                    "Expected [folded, reference] or one tensor. "
                    f"Received: {len(inputs)} inputs"
                )
            return inputs[0], inputs[1]
        if self.steps is None:
            raise ValueError(
                "UnfoldTime on a single tensor needs `steps`. Received: steps=None"
            )
        return inputs, None

    def call(self, inputs):
        folded, reference = self._split(inputs)
        steps = self.steps
        if steps is None:
            steps = reference.shape[1] if reference.shape[1] is not None else tf.shape(reference)[1]
        shape = tf.shape(folded)
        rest = [folded.shape[i] if folded.shape[i] is not None else shape[i]
                for i in range(1, len(folded.shape))]
        x = tf.reshape(folded, tf.stack([-1, steps, *rest]))
        if reference is None:
            x.set_shape(self.compute_output_shape(tuple(folded.shape)))
        else:
            x.set_shape(self.compute_output_shape([tuple(folded.shape), tuple(reference.shape)]))
        return x

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list) and input_shape and not isinstance(
            input_shape[0], (int, type(None))
        ):
            folded, reference = input_shape[0], input_shape[1]
        else:
            folded, reference = input_shape, None
        steps = self.steps
        if steps is None and reference is not None:
            steps = reference[1]
        if reference is not None and reference[0] is not None:
            batch = reference[0]
        elif folded[0] is not None and steps:
            batch = folded[0] // steps
        else:
            batch = None
        return (batch, steps, *folded[1:])

    def get_config(self):
        config = super().get_config()
        config.update(steps=self.steps)
        return config


def snapshot_starts(frames, num_snapshots, span):
    """First frame of each of `num_snapshots` windows of `span` frames.

    Evenly spaced from the first to the last possible window (one snapshot:
    the centred window), as `Snapshots` computes them.

    Args:
        frames: clip length T (>= span).
        num_snapshots: K.
        span: window length.

    Returns:
        A list of K ints.

    Example:

    >>> snapshot_starts(250, 25, 10)[:3]
    [0, 10, 20]
    """
    if frames < span:
        raise ValueError(
            f"Snapshots of {span} frames need clips of at least {span} frames. "
            f"Received: frames={frames}"
        )
    if num_snapshots == 1:
        return [(frames - span) // 2]
    room = frames - span
    half = (num_snapshots - 1) // 2
    return [(k * room + half) // (num_snapshots - 1) for k in range(num_snapshots)]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Snapshots(keras.layers.Layer):
    """Snapshots of a clip for 2D two-stream networks, folded into the batch.

    Takes `num_snapshots` evenly spaced windows of `span` frames
    (`snapshot_starts`) and, from the middle of each window, `length`
    consecutive frames stacked along channels:
    `[batch, time, h, w, c]` -> `[batch * num_snapshots, h, w, length * c]`
    (channels ordered frame by frame). With `length=10` on optical flow this
    is the two-stream network's 20-channel flow stack; with `length=1,
    span=10` on RGB, the RGB frame at the centre of that stack.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017, Sec. 2.3-2.4 (Simonyan & Zisserman's two-stream networks).

    Args:
        num_snapshots: K windows per clip.
        length: frames stacked per snapshot.
        span: window length (>= length; default `length`).

    Example:

    >>> Snapshots(2, length=10)(tf.zeros([3, 16, 8, 8, 2])).shape
    TensorShape([6, 8, 8, 20])
    """

    def __init__(self, num_snapshots, length=1, span=None, **kwargs):
        super().__init__(**kwargs)
        span = length if span is None else span
        for key, value in (("num_snapshots", num_snapshots), ("length", length), ("span", span)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{key}` must be a positive int. Received: {key}={value}")
        if span < length:
            raise ValueError(
                f"`span` must be at least `length` ({length}). Received: span={span}"
            )
        self.num_snapshots = num_snapshots
        self.length = length
        self.span = span

    def build(self, input_shape):
        if input_shape[1] is not None:
            snapshot_starts(input_shape[1], self.num_snapshots, self.span)  # validates

    def call(self, inputs):
        shape = tf.shape(inputs)
        frames = shape[1]
        k, length, span = self.num_snapshots, self.length, self.span
        room = frames - span
        if k == 1:
            starts = tf.reshape(room // 2, [1])
        else:
            starts = (tf.range(k) * room + (k - 1) // 2) // (k - 1)
        index = starts[:, None] + (span - length) // 2 + tf.range(length)[None]
        x = tf.gather(inputs, index, axis=1)  # [batch, K, length, h, w, c]
        x = tf.transpose(x, [0, 1, 3, 4, 2, 5])
        rest = [inputs.shape[i] if inputs.shape[i] is not None else shape[i] for i in (2, 3)]
        channels = inputs.shape[-1]
        x = tf.reshape(x, tf.stack([-1, *rest, length * channels]))
        x.set_shape(self.compute_output_shape(inputs.shape))
        return x

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        folded = None if batch is None else batch * self.num_snapshots
        channels = input_shape[-1]
        return (folded, input_shape[2], input_shape[3],
                None if channels is None else channels * self.length)

    def get_config(self):
        config = super().get_config()
        config.update(num_snapshots=self.num_snapshots, length=self.length, span=self.span)
        return config
