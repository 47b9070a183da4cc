"""Inflating 2D ConvNets into 3D: I3D's ImageNet bootstrapping, for any Keras CNN.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017, Sec. 2.4 ("Inflating 2D ConvNets into
3D" and "Bootstrapping 3D filters from 2D filters"): a 2D `k x k` filter
becomes `t x k x k` by repeating it `t` times along time and dividing by `t`,
so that on a "boring video" (one image repeated) the 3D network computes what
the 2D network computes on the image.

Three levels:

* `inflate_kernel` (or `inflate(array, t)`): one kernel.
* `inflate_weights`: copy a 2D model's weights into an existing 3D model whose
  layers have the same names (up to a name map), e.g. TF-slim's Inception-V1
  into `InceptionI3D`.
* `inflate_model` (or `inflate(model)`): turn a functional Keras image model
  (e.g. any of `keras.applications` ResNet50, InceptionV3, VGG16, MobileNetV2,
  DenseNet121, EfficientNetB0) into a video model, layer by layer, keeping the
  2D layer names.

`unpadded_time_positions` tells, for a 3D model, which output time positions
of each layer are out of reach of temporal zero padding: there, a boring
video gives exactly the 2D activations.
"""

import re

import keras
import numpy as np

from i3d_keras.models import layers as i3d_layers

KERNEL_METHODS = ("mean", "centre")
CHANNEL_RULES = ("equal_response", "mean")


# --------------------------------------------------------------------------
# Kernel level.


def _check_method(method):
    if method == "center":
        method = "centre"
    if method not in KERNEL_METHODS:
        raise ValueError(
            f"`method` must be one of {KERNEL_METHODS}. Received: method={method!r}"
        )
    return method


def adapt_input_channels(kernel, channels, rule="equal_response", axis=-2):
    """Changes the number of input channels of a kernel (e.g. RGB -> flow).

    Rules (both collapse the source channels to one filter slice and repeat
    it `channels` times):

    * `"equal_response"` (default): the slice is the *sum* over the source
      channels divided by `channels`. For an input whose channels all hold the
      same value `v`, the response is unchanged: `v * sum_c w_c` before and
      after. RGB -> 2-channel flow multiplies the RGB mean filter by 3/2.
    * `"mean"`: the slice is the *mean* over the source channels (TSN's
      "cross-modality initialisation", Wang et al., ECCV 2016). The response
      to an equal-valued input is scaled by `channels / source channels`.

    Reference: Carreira & Zisserman, CVPR 2017 (the flow stream of I3D is
    bootstrapped from the RGB ImageNet network).

    Args:
        kernel: array, e.g. `[kh, kw, cin, cout]` or `[t, kh, kw, cin, cout]`.
        channels: the new number of input channels.
        rule: `"equal_response"` or `"mean"`.
        axis: the input-channel axis of `kernel`.

    Returns:
        The kernel with `channels` along `axis` (unchanged if it has them).

    Example:

    >>> k = np.ones([3, 3, 3, 8], "float32")
    >>> adapt_input_channels(k, 2)[0, 0, :, 0]
    array([1.5, 1.5], dtype=float32)
    """
    kernel = np.asarray(kernel)
    if rule not in CHANNEL_RULES:
        raise ValueError(
            f"`rule` must be one of {CHANNEL_RULES}. Received: rule={rule!r}"
        )
    if not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"`channels` must be a positive int. Received: channels={channels}")
    if kernel.shape[axis] == channels:
        return kernel
    if rule == "equal_response":
        collapsed = kernel.sum(axis=axis, keepdims=True) / channels
    else:
        collapsed = kernel.mean(axis=axis, keepdims=True)
    return np.repeat(collapsed, channels, axis=axis).astype(kernel.dtype)


def inflate_kernel(kernel, time_size, method="mean", input_channels=None, channel_rule="equal_response"):
    """Inflates a 2D kernel `[kh, kw, ...]` to `[time_size, kh, kw, ...]`.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017, Sec. 2.4 (bootstrapping 3D filters from 2D filters).

    Args:
        kernel: a 2D kernel, e.g. `[kh, kw, cin, cout]` (Conv2D) or
            `[kh, kw, channels, multiplier]` (DepthwiseConv2D).
        time_size: temporal size `t` of the new kernel.
        method: `"mean"`: the 2D kernel repeated `t` times and divided by `t`
            (the paper's bootstrapping); `"centre"`: the 2D kernel at time
            index `(t - 1) // 2` (the tap that "SAME" padding aligns with the
            output frame; the middle one for odd `t`), zeros elsewhere, so a
            boring video gives the 2D activations at every frame, padding
            included.
        input_channels: if given and different from `kernel.shape[-2]`, the
            input channels are adapted with `adapt_input_channels`.
        channel_rule: the rule for `input_channels`.

    Returns:
        A float array `[t, kh, kw, ...]`.

    Example:

    >>> k3 = inflate_kernel(np.ones([3, 3, 3, 64], "float32"), 5)
    >>> k3.shape, float(k3.sum(axis=0).max())
    ((5, 3, 3, 3, 64), 1.0)
    """
    method = _check_method(method)
    kernel = np.asarray(kernel)
    if kernel.ndim < 3:
        raise ValueError(
            "Expected a 2D kernel [kh, kw, ...] with at least 3 axes. "
            f"Received: kernel of shape {kernel.shape}"
        )
    if not isinstance(time_size, (int, np.integer)) or time_size < 1:
        raise ValueError(f"`time_size` must be a positive int. Received: time_size={time_size}")
    if input_channels is not None:
        kernel = adapt_input_channels(kernel, input_channels, channel_rule)
    if method == "mean":
        return np.repeat(kernel[None], time_size, axis=0) / np.asarray(time_size, kernel.dtype)
    inflated = np.zeros((time_size, *kernel.shape), kernel.dtype)
    inflated[(time_size - 1) // 2] = kernel
    return inflated


# --------------------------------------------------------------------------
# Name-based weight inflation into an existing 3D model.


def _inflate_layer_weights(values_2d, shapes_3d, method, channel_rule):
    """Maps a 2D layer's weight arrays onto a 3D layer's weight shapes, or None."""
    if len(values_2d) != len(shapes_3d):
        return None
    out = []
    for value, shape in zip(values_2d, shapes_3d):
        value, shape = np.asarray(value), tuple(shape)
        if value.shape == shape:
            out.append(value)
        elif (value.ndim == 4 and len(shape) == 5 and value.shape[:2] == shape[1:3]
              and value.shape[3] == shape[4]):
            # [kh, kw, cin, cout] -> [t, kh, kw, cin', cout].
            out.append(inflate_kernel(value, shape[0], method, shape[3], channel_rule))
        elif value.ndim <= 1 and value.size == int(np.prod(shape)) and value.size == max(shape, default=1):
            # BatchNorm vectors [C] <-> [1, 1, 1, 1, C].
            out.append(value.reshape(shape))
        else:
            return None
    return out


def inflate_weights(
    model_2d,
    model_3d,
    name_map=None,
    *,
    method="mean",
    channel_rule="equal_response",
    skip_mismatch=(),
    allow_unassigned=(),
):
    """Bootstraps a 3D model from a 2D model with the same layer names.

    Every 2D layer with weights is matched to the 3D layer named
    `name_map(name)`; kernels `[kh, kw, cin, cout]` are inflated to the 3D
    kernel's temporal size (`inflate_kernel`), input channels are adapted
    when they differ (e.g. RGB -> flow, `adapt_input_channels`), and all other
    weights (biases, BatchNorm parameters and statistics) are copied.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017, Sec. 2.4.

    Args:
        model_2d: the source Keras model (or a list of its layers).
        model_3d: the target Keras model (modified in place).
        name_map: callable from a 2D layer name to a 3D layer name (default:
            the same name).
        method: `"mean"` or `"centre"` (see `inflate_kernel`).
        channel_rule: see `adapt_input_channels`.
        skip_mismatch: 3D layer names whose weights may mismatch in shape
            (e.g. a classifier with another number of classes): they are
            left as they are and reported.
        allow_unassigned: 3D layer names that may be left without a 2D
            source.

    Returns:
        A dict with lists `assigned`, `skipped` (shape mismatches allowed by
        `skip_mismatch`) and `unassigned` (allowed 3D layers left as is).

    Raises:
        ValueError: listing the 2D layers without a 3D layer, the shape
            mismatches, and the 3D weight layers that got nothing.

    Example:

    >>> from i3d_keras.models.inception_v1 import InceptionV1, to_i3d_name
    >>> m2 = InceptionV1(num_classes=10, image_size=64)
    >>> m3 = InceptionI3D(num_classes=10, frames=8, image_size=64)
    >>> report = inflate_weights(m2, m3, to_i3d_name)
    """
    method = _check_method(method)
    name_map = name_map or (lambda name: name)
    skip_mismatch, allow_unassigned = set(skip_mismatch), set(allow_unassigned)
    layers_3d = {layer.name: layer for layer in model_3d.layers}
    if isinstance(model_2d, keras.Model):
        source_name, source_layers = model_2d.name, model_2d.layers
    else:
        source_layers = list(model_2d)
        source_name = "the given 2D layers"
    assigned, skipped, missing, mismatched = [], [], [], []
    for layer in source_layers:
        if not layer.weights:
            continue
        target_name = name_map(layer.name)
        target = layers_3d.get(target_name)
        if target is None:
            missing.append(f"{layer.name} -> {target_name}")
            continue
        values = _inflate_layer_weights(
            layer.get_weights(), [w.shape for w in target.weights], method, channel_rule
        )
        if values is None:
            description = (
                f"{target_name}: expected {[tuple(w.shape) for w in target.weights]}, "
                f"received {[tuple(w.shape) for w in layer.weights]} from {layer.name}"
            )
            if target_name in skip_mismatch:
                skipped.append(description)
            else:
                mismatched.append(description)
            continue
        target.set_weights(values)
        assigned.append(target_name)
    done = set(assigned) | {s.split(":")[0] for s in skipped}
    unassigned = [
        layer.name for layer in model_3d.layers if layer.weights and layer.name not in done
    ]
    not_allowed = [name for name in unassigned if name not in allow_unassigned]
    if missing or mismatched or not_allowed:
        problems = []
        if missing:
            problems.append(f"2D layers without a 3D layer: {missing}")
        if mismatched:
            problems.append(f"shape mismatches: {mismatched}")
        if not_allowed:
            problems.append(f"3D layers without 2D weights: {not_allowed}")
        raise ValueError(
            f"Cannot inflate {source_name!r} into {model_3d.name!r}: " + "; ".join(problems)
        )
    return {"assigned": assigned, "skipped": skipped, "unassigned": unassigned}


# --------------------------------------------------------------------------
# Model level: temporal sizes.

_RESNET_STAGE_PATTERN = {2: (3,), 3: (3, 1), 4: (3, 1), 5: (1, 3)}
_RESNET_BLOCK = re.compile(r"conv(\d)_block(\d+)_1_conv")


def resnet_time_kernel(layer):
    """The I3D-ResNet recipe for Keras ResNet names (ResNet50/101/152, V2).

    Following the I3D ResNet-50 of the non-local / SlowFast papers (Wang et
    al., CVPR 2018, Table 1; Feichtenhofer et al., ICCV 2019, PySlowFast's
    "i3d" temporal kernel basis): the stem `conv1_conv` is 5x7x7; the first
    1x1 convolution of a residual block (`convS_blockB_1_conv`) becomes 3x1x1
    in every block of stage 2, in blocks 1, 3, ... of stages 3 and 4, and in
    blocks 2, 4, ... of stage 5; everything else keeps temporal size 1.

    Args:
        layer: a Conv2D layer.

    Returns:
        The temporal kernel size.
    """
    if layer.name == "conv1_conv":
        return 5
    match = _RESNET_BLOCK.fullmatch(layer.name)
    if match:
        stage, block = int(match.group(1)), int(match.group(2)) - 1
        pattern = _RESNET_STAGE_PATTERN.get(stage)
        if pattern:
            return pattern[block % len(pattern)]
    return 1


def i3d_time_kernel(layer):
    """The paper's rule: an `N x N` kernel becomes `N x N x N`.

    For a non-square kernel (e.g. InceptionV3's 1x7 / 7x1) the temporal size
    is the smaller spatial size, so factorised kernels stay 2D.

    Args:
        layer: a Conv2D, DepthwiseConv2D or SeparableConv2D layer.

    Returns:
        `min(kh, kw)`.
    """
    return int(min(layer.kernel_size))


def _is_resnet(model):
    names = {layer.name for layer in model.layers}
    return "conv1_conv" in names and "conv2_block1_1_conv" in names


def _resolve_spec(spec, default_fn, kind, names):
    """Returns a function layer -> int (temporal size) from a user spec."""
    if callable(spec) and not isinstance(spec, str):

        def from_callable(layer):
            value = spec(layer)
            return default_fn(layer) if value is None else value

        return from_callable
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - names)
        if unknown:
            raise ValueError(
                f"`{kind}` names layers the model does not have. Received: {unknown}"
            )
        return lambda layer: spec.get(layer.name, None) or default_fn(layer)
    raise ValueError(
        f"`{kind}` must be 'auto', 'i3d', 'resnet', an int, a dict or a callable. "
        f"Received: {kind}={spec!r}"
    )


def _all_layer_names(model):
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if isinstance(layer, keras.Model):
            names |= _all_layer_names(layer)
    return names


def _time_kernel_fn(time_kernel, model):
    names = _all_layer_names(model)
    if time_kernel == "auto":
        return resnet_time_kernel if _is_resnet(model) else i3d_time_kernel
    if time_kernel == "i3d":
        return i3d_time_kernel
    if time_kernel == "resnet":
        return resnet_time_kernel
    if isinstance(time_kernel, (int, np.integer)) and not isinstance(time_kernel, bool):
        if time_kernel < 1:
            raise ValueError(f"`time_kernel` must be >= 1. Received: time_kernel={time_kernel}")
        return lambda layer: int(time_kernel) if max(layer.kernel_size) > 1 else 1
    default = resnet_time_kernel if _is_resnet(model) else i3d_time_kernel
    return _resolve_spec(time_kernel, default, "time_kernel", names)


def _time_pool_fn(time_pool, model):
    if time_pool is None:
        return lambda layer: (1, 1)
    names = _all_layer_names(model)
    fn = _resolve_spec(time_pool, lambda layer: 1, "time_pool", names)

    def pool(layer):
        value = fn(layer)
        if isinstance(value, (tuple, list)):
            size, stride = (int(v) for v in value)
        else:
            size = stride = int(value)
        if size < 1 or stride < 1:
            raise ValueError(
                f"Temporal pool size and stride must be >= 1. Received for layer "
                f"{layer.name!r}: {value!r}"
            )
        return size, stride

    return pool


def _check_time_size(value, layer):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"The temporal kernel size must be a positive int. Received for layer "
            f"{layer.name!r}: {value!r}"
        )
    return int(value)


# --------------------------------------------------------------------------
# Model level: the layer converters.


def _shift_axis(axis, rank_2d):
    """Maps a 2D channels-last axis to the 3D tensor (one more axis, at 1)."""

    def one(a):
        a = int(a)
        if a < 0:
            return a
        if a == 0:
            raise ValueError("Cannot inflate a layer that works along the batch axis.")
        return a + 1

    if isinstance(axis, (list, tuple)):
        return type(axis)(one(a) for a in axis)
    return one(axis)


def _time_pad_amounts(size):
    before = (size - 1) // 2
    return before, size - 1 - before


class _Inflater:
    """Rebuilds a functional 2D model node by node with 3D layers."""

    def __init__(self, model, *, time_kernel, time_pool, method, channel_rule, num_classes,
                 classifier_activation, frames, input_channels):
        self.model = model
        self.input_channels = input_channels
        self.kernel_fn = _time_kernel_fn(time_kernel, model)
        self.pool_fn = _time_pool_fn(time_pool, model)
        self.method = _check_method(method)
        self.channel_rule = channel_rule
        self.num_classes = num_classes
        self.classifier_activation = classifier_activation
        self.frames = frames
        self.options = dict(
            time_kernel=time_kernel, time_pool=time_pool, method=method, channel_rule=channel_rule
        )
        self.converted = {}  # id(2D layer) -> callable on 3D args
        self.classifier = None
        if num_classes is not None:
            out_op = model.outputs[0]._keras_history.operation
            if len(model.outputs) == 1 and type(out_op) is keras.layers.Dense:
                self.classifier = out_op

    # ---- helpers -------------------------------------------------------

    def _set(self, layer_3d, values):
        try:
            layer_3d.set_weights(values)
        except ValueError as error:
            raise ValueError(
                f"Cannot assign inflated weights to layer {layer_3d.name!r}: {error}"
            ) from None

    def _timed(self, layer, x2, x3):
        if len(x3.shape) != len(x2.shape) + 1:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) is spatial but its input "
                "has no time axis left (it was pooled over time earlier in the network). "
                f"Received: input shape {tuple(x3.shape)}"
            )

    def _kernel(self, layer, kernel, t, in_channels):
        return inflate_kernel(
            kernel, t, self.method,
            input_channels=in_channels if kernel.shape[-2] != in_channels else None,
            channel_rule=self.channel_rule,
        )

    # ---- converters ----------------------------------------------------

    def conv2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        config = layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            raise ValueError(f"Only channels_last is supported. Received: layer {layer.name!r}")
        if config.get("groups", 1) != 1:
            raise ValueError(
                f"Grouped Conv2D is not supported (no grouped Conv3D kernel on CPU/LiteRT). "
                f"Received: layer {layer.name!r} with groups={config['groups']}"
            )
        t = _check_time_size(self.kernel_fn(layer), layer)
        config.update(
            kernel_size=(t, *layer.kernel_size),
            strides=(1, *layer.strides),
            dilation_rate=(1, *layer.dilation_rate),
        )
        pad = None
        if layer.padding == "valid" and t > 1:
            pad = keras.layers.ZeroPadding3D(
                (_time_pad_amounts(t), (0, 0), (0, 0)),
                name=f"{layer.name}_time_pad",
                dtype=layer.dtype_policy,
            )
        # i3d_keras' Conv3D (fast 2D formulation on CPUs, same weights) where
        # it applies: no dilation.
        dilated = any(d != 1 for d in config["dilation_rate"])
        conv = (keras.layers.Conv3D if dilated else i3d_layers.Conv3D).from_config(config)
        y = conv(pad(x3) if pad else x3)
        values = layer.get_weights()
        values[0] = self._kernel(layer, values[0], t, x3.shape[-1])
        self._set(conv, values)
        return y

    def depthwise2d(self, layer, x2, x3, name=None, use_bias=None):
        self._timed(layer, x2, x3)
        if x3.shape[-1] != x2.shape[-1]:
            raise ValueError(
                f"Cannot adapt the input channels of depthwise layer {layer.name!r}. "
                f"Expected {x2.shape[-1]} channels. Received: {x3.shape[-1]}"
            )
        t = _check_time_size(self.kernel_fn(layer), layer)
        use_bias = layer.use_bias if use_bias is None else use_bias
        activation = getattr(layer, "activation", None)
        linear = activation is None or keras.activations.serialize(activation) in ("linear", None)
        conv = i3d_layers.DepthwiseConv3D(
            (t, *layer.kernel_size),
            strides=layer.strides,
            padding=layer.padding,
            depth_multiplier=layer.depth_multiplier,
            dilation_rate=layer.dilation_rate,
            use_bias=use_bias,
            name=name or (layer.name if linear else f"{layer.name}_linear"),
            dtype=layer.dtype_policy,
        )
        y = conv(x3)
        kernel = layer.depthwise_kernel.numpy() if hasattr(layer, "depthwise_kernel") else layer.kernel.numpy()
        values = [self._kernel(layer, kernel, t, kernel.shape[-2])]
        if use_bias:
            values.append(layer.bias.numpy())
        self._set(conv, values)
        if not linear and name is None:
            y = keras.layers.Activation(activation, name=layer.name, dtype=layer.dtype_policy)(y)
        return y

    def separable2d(self, layer, x2, x3):
        y = self.depthwise2d(layer, x2, x3, name=f"{layer.name}_depthwise", use_bias=False)
        config = layer.get_config()
        pointwise = i3d_layers.Conv3D(
            layer.filters,
            1,
            activation=config["activation"],
            use_bias=layer.use_bias,
            name=layer.name,
            dtype=layer.dtype_policy,
        )
        y = pointwise(y)
        values = [layer.pointwise_kernel.numpy()[None]]
        if layer.use_bias:
            values.append(layer.bias.numpy())
        self._set(pointwise, values)
        return y

    def pool2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ValueError(f"Only channels_last is supported. Received: layer {layer.name!r}")
        mode = "max" if isinstance(layer, keras.layers.MaxPooling2D) else "avg"
        size, stride = self.pool_fn(layer)
        if size > 1 and layer.padding == "valid":
            y = i3d_layers.Pooling3D(
                (1, *layer.pool_size), (1, *layer.strides), "valid", mode,
                name=f"{layer.name}_spatial", dtype=layer.dtype_policy,
            )(x3)
            return i3d_layers.Pooling3D(
                (size, 1, 1), (stride, 1, 1), "same", mode,
                name=layer.name, dtype=layer.dtype_policy,
            )(y)
        return i3d_layers.Pooling3D(
            (size, *layer.pool_size), (stride, *layer.strides), layer.padding, mode,
            name=layer.name, dtype=layer.dtype_policy,
        )(x3)

    def _per_frame_global(self, layer):
        if layer.keepdims:
            return True
        consumers = [node.operation for node in layer._outbound_nodes]
        return bool(consumers) and all(type(op) is keras.layers.Reshape for op in consumers)

    def global_pool2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        is_max = isinstance(layer, keras.layers.GlobalMaxPooling2D)
        kwargs = dict(name=layer.name, dtype=layer.dtype_policy)
        if self._per_frame_global(layer):
            if is_max:
                return keras.layers.TimeDistributed(
                    keras.layers.GlobalMaxPooling2D(keepdims=layer.keepdims), **kwargs
                )(x3)
            return i3d_layers.Mean(axis=(2, 3), keepdims=layer.keepdims, **kwargs)(x3)
        cls = keras.layers.GlobalMaxPooling3D if is_max else keras.layers.GlobalAveragePooling3D
        return cls(**kwargs)(x3)

    def flatten(self, layer, x2, x3):
        if len(x3.shape) == len(x2.shape):
            return keras.layers.Flatten.from_config(layer.get_config())(x3)
        x3 = i3d_layers.Mean(axis=1, name=f"{layer.name}_time_mean", dtype=layer.dtype_policy)(x3)
        return keras.layers.Flatten.from_config(layer.get_config())(x3)

    def reshape(self, layer, x2, x3):
        if len(x3.shape) == len(x2.shape):
            return keras.layers.Reshape.from_config(layer.get_config())(x3)
        target = tuple(layer.target_shape)
        frames = x3.shape[1]
        if frames is None and -1 in target:
            raise ValueError(
                f"Cannot reshape per frame with an unknown number of frames: layer "
                f"{layer.name!r} has target_shape={target}; pass `frames=`."
            )
        config = layer.get_config()
        config["target_shape"] = (frames if frames is not None else -1, *target)
        return keras.layers.Reshape.from_config(config)(x3)

    def padding2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        if layer.data_format != "channels_last":
            raise ValueError(f"Only channels_last is supported. Received: layer {layer.name!r}")
        amounts = ((0, 0), *(tuple(p) for p in layer.padding))
        return keras.layers.ZeroPadding3D(amounts, name=layer.name, dtype=layer.dtype_policy)(x3)

    def cropping2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        amounts = ((0, 0), *(tuple(c) for c in layer.cropping))
        return keras.layers.Cropping3D(amounts, name=layer.name, dtype=layer.dtype_policy)(x3)

    def upsampling2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        if layer.interpolation != "nearest":
            raise ValueError(
                "UpSampling2D is supported with interpolation='nearest' only. "
                f"Received: layer {layer.name!r} with interpolation={layer.interpolation!r}"
            )
        return keras.layers.UpSampling3D(
            (1, *layer.size), name=layer.name, dtype=layer.dtype_policy
        )(x3)

    def spatial_dropout2d(self, layer, x2, x3):
        self._timed(layer, x2, x3)
        return keras.layers.SpatialDropout3D(
            layer.rate, seed=layer.seed, name=layer.name, dtype=layer.dtype_policy
        )(x3)

    def channelwise(self, layer, args, kwargs, inputs_2d, inputs_3d):
        """Layers that act per position / per channel: rebuilt from their config."""
        timed = [len(x3.shape) == len(x2.shape) + 1 for x2, x3 in zip(inputs_2d, inputs_3d)]
        if len(set(timed)) > 1:
            raise ValueError(
                f"Layer {layer.name!r} merges tensors with and without a time axis. "
                f"Received shapes: {[tuple(x.shape) for x in inputs_3d]}"
            )
        timed = timed[0]
        config = layer.get_config()
        cls = type(layer)
        rank_2d = len(inputs_2d[0].shape)
        if timed:
            for key in ("axis",):
                if key in config and config[key] is not None:
                    config[key] = _shift_axis(config[key], rank_2d)
            if config.get("noise_shape") is not None:
                shape = list(config["noise_shape"])
                spatial_one = all(d == 1 for d in shape[1:-1])
                config["noise_shape"] = (shape[0], 1 if spatial_one else None, *shape[1:])
        if layer is self.classifier:
            config["units"] = int(self.num_classes)
            if self.classifier_activation is not None:
                config["activation"] = self.classifier_activation
            for key in ("kernel_initializer", "bias_initializer"):
                config.pop(key, None)
        new_layer = cls.from_config(config)
        y = new_layer(*args, **kwargs)
        values = layer.get_weights()
        if values and layer is not self.classifier:
            in_channels = inputs_3d[0].shape[-1]
            old_channels = inputs_2d[0].shape[-1]
            if in_channels != old_channels:
                if isinstance(layer, (keras.layers.Normalization, keras.layers.BatchNormalization)):
                    values = [
                        np.repeat(v.mean(axis=-1, keepdims=True), in_channels, axis=-1)
                        if v.ndim and v.shape[-1] == old_channels else v
                        for v in values
                    ]
                elif isinstance(layer, keras.layers.Dense):
                    values[0] = adapt_input_channels(values[0], in_channels, self.channel_rule, axis=0)
                else:
                    raise ValueError(
                        f"Cannot adapt the input channels of layer {layer.name!r} "
                        f"({cls.__name__}). Expected {old_channels}. Received: {in_channels}"
                    )
            self._set(new_layer, values)
        return y

    def nested(self, layer, x2, x3):
        options = dict(self.options)
        inner = {sub.name for sub in layer.layers}
        for key in ("time_kernel", "time_pool"):
            if isinstance(options[key], dict):  # keep the names of the inner model
                options[key] = {k: v for k, v in options[key].items() if k in inner}
        sub = inflate_model(layer, frames=x3.shape[1], input_channels=x3.shape[-1], **options)
        return sub(x3)

    # ---- the walk ------------------------------------------------------

    _SPATIAL = {
        keras.layers.Conv2D: "conv2d",
        keras.layers.DepthwiseConv2D: "depthwise2d",
        keras.layers.SeparableConv2D: "separable2d",
        keras.layers.MaxPooling2D: "pool2d",
        keras.layers.AveragePooling2D: "pool2d",
        keras.layers.GlobalAveragePooling2D: "global_pool2d",
        keras.layers.GlobalMaxPooling2D: "global_pool2d",
        keras.layers.Flatten: "flatten",
        keras.layers.Reshape: "reshape",
        keras.layers.ZeroPadding2D: "padding2d",
        keras.layers.Cropping2D: "cropping2d",
        keras.layers.UpSampling2D: "upsampling2d",
        keras.layers.SpatialDropout2D: "spatial_dropout2d",
    }
    _CHANNELWISE = (
        keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
        keras.layers.Softmax, keras.layers.BatchNormalization, keras.layers.LayerNormalization,
        keras.layers.Normalization, keras.layers.Rescaling, keras.layers.Dropout,
        keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.AlphaDropout,
        keras.layers.ActivityRegularization, keras.layers.Identity, keras.layers.Dense,
        keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
        keras.layers.Maximum, keras.layers.Minimum, keras.layers.Concatenate,
    )

    def convert_node(self, node, args, kwargs):
        layer = node.operation
        cls = type(layer)
        inputs_2d = list(node.input_tensors)
        inputs_3d = [x for x in keras.tree.flatten((args, kwargs)) if isinstance(x, keras.KerasTensor)]
        if cls in self._SPATIAL:
            if len(inputs_2d) != 1 or kwargs:
                raise ValueError(
                    f"Expected layer {layer.name!r} to be called on one tensor. "
                    f"Received: {len(inputs_2d)} tensors and arguments {sorted(kwargs)}"
                )
            return getattr(self, self._SPATIAL[cls])(layer, inputs_2d[0], inputs_3d[0])
        if cls in self._CHANNELWISE:
            return self.channelwise(layer, args, kwargs, inputs_2d, inputs_3d)
        if isinstance(layer, keras.Sequential) or (
            isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth")
        ):
            if len(inputs_2d) != 1:
                raise ValueError(f"Nested model {layer.name!r} must have one input.")
            return self.nested(layer, inputs_2d[0], inputs_3d[0])
        kind = "layer" if isinstance(layer, keras.layers.Layer) else "operation"
        raise ValueError(
            f"Cannot inflate {kind} {layer.name!r} of type {cls.__module__}.{cls.__name__}: "
            "not a supported layer type (see `i3d_keras.inflate_model`'s docstring for "
            "the supported types)."
        )

    def run(self, name):
        model = self.model
        if len(model.inputs) != 1:
            raise ValueError(
                f"Expected a model with one image input. Received: {len(model.inputs)} inputs"
            )
        input_2d = model.inputs[0]
        if len(input_2d.shape) != 4:
            raise ValueError(
                "Expected an image model with input [batch, height, width, channels]. "
                f"Received: input shape {tuple(input_2d.shape)}"
            )
        _, height, width, channels = input_2d.shape
        channels = self.input_channels or channels
        input_layer = input_2d._keras_history.operation
        input_3d = keras.Input(
            shape=(self.frames, height, width, channels),
            name=input_layer.name,
            dtype=input_2d.dtype,
        )
        tensors = {id(input_2d): input_3d}
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if not node.operation or node.is_input:
                    continue
                if any(id(x) not in tensors for x in node.input_tensors):
                    continue
                args, kwargs = node.arguments.fill_in(tensors)
                outputs = self.convert_node(node, args, kwargs)
                for x2, x3 in zip(node.outputs, keras.tree.flatten(outputs)):
                    tensors[id(x2)] = x3
        outputs = [tensors[id(x)] for x in model.outputs]
        if self.num_classes is not None and self.classifier is None:
            if len(outputs) != 1:
                raise ValueError(
                    "`num_classes` needs a model with one output. "
                    f"Received: {len(outputs)} outputs"
                )
            x = outputs[0]
            if len(x.shape) > 2:
                x = keras.layers.GlobalAveragePooling3D(name="avg_pool_3d")(x) if len(x.shape) == 5 else x
                if len(x.shape) != 2:
                    raise ValueError(
                        "Cannot add a classifier: expected the output to be pooled to "
                        f"[batch, features]. Received: shape {tuple(x.shape)}"
                    )
            outputs = [
                keras.layers.Dense(
                    self.num_classes,
                    activation=self.classifier_activation,
                    name="predictions",
                )(x)
            ]
        structure = keras.tree.pack_sequence_as(model._outputs_struct, outputs)
        return keras.Model(input_3d, structure, name=name or f"{model.name}_3d")


def inflate_model(
    model_2d,
    time_kernel="auto",
    *,
    frames=None,
    method="mean",
    num_classes=None,
    classifier_activation=None,
    input_channels=None,
    channel_rule="equal_response",
    time_pool=None,
    name=None,
):
    """Turns a functional Keras image model into a video model (I3D inflation).

    Walks the 2D model's functional graph in topological order and rebuilds
    it with 3D layers that keep the 2D layer names, inflating the weights
    (`inflate_kernel`). Input `[batch, height, width, channels]` becomes
    `[batch, frames, height, width, channels]`. With `method="mean"`, a
    "boring video" (one frame repeated) gives the 2D activations at every
    time position out of reach of temporal zero padding (see
    `unpadded_time_positions`); with `method="centre"`, at every position.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New
    Model and the Kinetics Dataset", CVPR 2017, Sec. 2.4.

    Supported layer types (anything else raises a ValueError naming it):

    * `Conv2D` -> `Conv3D` with kernel `t x kh x kw`, temporal stride 1 and
      "SAME" temporal padding (a "valid" 2D conv gets a `ZeroPadding3D`
      named `{name}_time_pad` in time); grouped convolutions are refused.
    * `DepthwiseConv2D` -> `i3d_keras.models.layers.DepthwiseConv3D` (full
      `t x kh x kw` depthwise kernel from builtin ops).
    * `SeparableConv2D` -> `DepthwiseConv3D` (`{name}_depthwise`) + 1x1x1
      `Conv3D` (`{name}`).
    * `MaxPooling2D`, `AveragePooling2D` -> `i3d_keras.models.layers.Pooling3D`
      (LiteRT builtins), temporal size and stride 1 unless `time_pool` says.
    * `GlobalAveragePooling2D`, `GlobalMaxPooling2D`: inside the network
      (`keepdims=True`, or feeding only `Reshape` layers, as in
      squeeze-and-excitation blocks) they pool over space per frame
      (`Mean(axis=(2, 3))` / `TimeDistributed`); otherwise (the head) over
      time and space (`GlobalAveragePooling3D` / `GlobalMaxPooling3D`).
    * `Flatten` of a frame tensor (VGG's head): the mean over time
      (`{name}_time_mean`) then `Flatten`.
    * `Reshape` of a per-frame tensor: the time axis is kept in front.
    * `ZeroPadding2D` -> `ZeroPadding3D`, `Cropping2D` -> `Cropping3D`,
      `UpSampling2D` (nearest) -> `UpSampling3D`, `SpatialDropout2D` ->
      `SpatialDropout3D`, each without padding/cropping/upsampling in time.
    * Per-position layers, rebuilt from their config (positive axes shifted
      by one): `Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax`,
      `BatchNormalization` (parameters and statistics copied),
      `LayerNormalization`, `Normalization`, `Rescaling`, `Dropout` (the
      noise shape gets a time axis), `GaussianNoise`, `GaussianDropout`,
      `AlphaDropout`, `ActivityRegularization`, `Identity`, `Dense`, and the
      merges `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
      `Concatenate`.
    * A nested functional model used as a layer is inflated recursively.

    Args:
        model_2d: a functional (or built Sequential) channels-last image model
            with one input.
        time_kernel: temporal kernel size per convolution: `"auto"` (the
            I3D-ResNet recipe `resnet_time_kernel` for Keras ResNets, else
            the paper's `N x N -> N x N x N` rule `i3d_time_kernel`), `"i3d"`,
            `"resnet"`, an int (for every kernel larger than 1x1; 1x1 stays
            1x1x1), a dict `{layer name: size}` (others: "auto") or a callable
            `layer -> size or None` (None: "auto").
        frames: static clip length, or None for any.
        method: `"mean"` (the paper's bootstrapping) or `"centre"`.
        num_classes: replace the output `Dense` classifier by a new one with
            this many units (freshly initialised); a model without a `Dense`
            output gets a head (`GlobalAveragePooling3D` over time and space,
            then `Dense` named `"predictions"`).
        classifier_activation: activation of a new classifier (default: the
            old classifier's, or linear for an added head).
        input_channels: number of input channels of the video model (e.g. 2
            for optical flow); the first layers' weights are adapted with
            `channel_rule` (`adapt_input_channels`).
        channel_rule: `"equal_response"` or `"mean"`.
        time_pool: temporal size of the 2D poolings: None (1, no temporal
            pooling), a dict `{layer name: size or (size, stride)}` or a
            callable `layer -> size, (size, stride) or None`.
        name: model name (default `"{2D name}_3d"`).

    Returns:
        A functional `keras.Model`.

    Example:

    >>> resnet = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    >>> video = inflate_model(resnet, frames=8, num_classes=10)
    >>> video(np.zeros([1, 8, 64, 64, 3], "float32")).shape
    TensorShape([1, 10])
    """
    name = name or f"{model_2d.name}_3d"
    if isinstance(model_2d, keras.Sequential):
        if not model_2d.built or getattr(model_2d, "_functional", None) is None:
            raise ValueError(
                f"Expected a built model. Received: unbuilt Sequential {model_2d.name!r}"
            )
        model_2d = model_2d._functional
    if not isinstance(model_2d, keras.Model) or not hasattr(model_2d, "_nodes_by_depth"):
        raise ValueError(
            "Expected a functional Keras model (subclassed models have no graph to "
            f"walk). Received: {type(model_2d).__name__}"
        )
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1
    ):
        raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={num_classes}")
    if frames is not None and (not isinstance(frames, (int, np.integer)) or frames < 1):
        raise ValueError(f"`frames` must be a positive int or None. Received: frames={frames}")
    if channel_rule not in CHANNEL_RULES:
        raise ValueError(
            f"`channel_rule` must be one of {CHANNEL_RULES}. Received: channel_rule={channel_rule!r}"
        )
    inflater = _Inflater(
        model_2d,
        time_kernel=time_kernel,
        time_pool=time_pool,
        method=method,
        channel_rule=channel_rule,
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        frames=frames,
        input_channels=input_channels,
    )
    return inflater.run(name)


def inflate(model_or_kernel, time_kernel="auto", **kwargs):
    """Inflates a 2D model (`inflate_model`) or a 2D kernel (`inflate_kernel`).

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017, Sec. 2.4.

    Args:
        model_or_kernel: a Keras image model, or a kernel array `[kh, kw, ...]`.
        time_kernel: for a model, see `inflate_model`; for a kernel, the
            temporal size (an int).
        **kwargs: passed to `inflate_model` or `inflate_kernel` (`method`,
            `input_channels`, `channel_rule`, ...).

    Returns:
        A 3D `keras.Model`, or the inflated kernel `[t, kh, kw, ...]`.

    Example:

    >>> inflate(np.ones([3, 3, 3, 8], "float32"), 3, method="centre").shape
    (3, 3, 3, 3, 8)
    """
    if isinstance(model_or_kernel, keras.Model):
        return inflate_model(model_or_kernel, time_kernel, **kwargs)
    if isinstance(time_kernel, str) or time_kernel is None:
        raise ValueError(
            "Inflating a kernel needs its temporal size as an int. "
            f"Received: time_kernel={time_kernel!r}"
        )
    return inflate_kernel(model_or_kernel, time_kernel, **kwargs)


# --------------------------------------------------------------------------
# Where temporal zero padding does not reach.


def _window_mask(mask, size, stride, dilation, padding, zero_padding):
    n = len(mask)
    extent = (size - 1) * dilation + 1
    if padding == "same":
        out = -(-n // stride)
        before = max((out - 1) * stride + extent - n, 0) // 2
    else:
        out = max((n - extent) // stride + 1, 0)
        before = 0
    result = np.zeros(out, bool)
    for o in range(out):
        idx = [o * stride - before + j * dilation for j in range(size)]
        inside = [i for i in idx if 0 <= i < n]
        if zero_padding and len(inside) != len(idx):
            continue
        result[o] = bool(inside) and all(mask[i] for i in inside)
    return result


def _op_mask(layer, masks, out_tensor):
    """Output mask of one node, or None when the output has no time axis."""
    if any(m is None for m in masks) or not masks:
        return None
    mask = masks[0]
    if isinstance(layer, keras.layers.Conv3D):
        return _window_mask(mask, layer.kernel_size[0], layer.strides[0],
                            layer.dilation_rate[0], layer.padding, True)
    if isinstance(layer, i3d_layers.DepthwiseConv3D):
        return _window_mask(mask, layer.kernel_size[0], 1, 1, "same", True)
    if isinstance(layer, i3d_layers.Pooling3D):
        size = layer.pool_size[0]
        if layer.adaptive:
            size = max(1, min(size, len(mask)))
        return _window_mask(mask, size, layer.strides[0], 1, layer.padding, False)
    if isinstance(layer, (keras.layers.MaxPooling3D, keras.layers.AveragePooling3D)):
        return _window_mask(mask, layer.pool_size[0], layer.strides[0], 1, layer.padding, False)
    if isinstance(layer, keras.layers.ZeroPadding3D):
        before, after = layer.padding[0]
        return np.concatenate([np.zeros(before, bool), mask, np.zeros(after, bool)])
    if isinstance(layer, keras.layers.Cropping3D):
        before, after = layer.cropping[0]
        return mask[before: len(mask) - after]
    if isinstance(layer, i3d_layers.Mean):
        return None if 1 in layer.axis else mask
    if isinstance(layer, (keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling3D,
                          keras.layers.Flatten)):
        return None
    if isinstance(layer, keras.layers.Reshape):
        return mask if layer.target_shape[0] in (-1, len(mask)) else None
    if len(out_tensor.shape) < 3:
        return None
    lengths = {len(m) for m in masks}
    if len(lengths) != 1:
        return None
    result = masks[0].copy()
    for m in masks[1:]:
        result &= m
    return result


def unpadded_time_positions(model, frames):
    """Time positions of each layer's output that temporal zero padding can't reach.

    On a boring video (one frame repeated `frames` times), a model inflated
    with `method="mean"` reproduces the 2D activations exactly at these
    positions (the paper's bootstrapping argument); elsewhere the zero
    padding of the temporal convolutions is inside the receptive field.
    Poolings ignore their padding (as TensorFlow's max and average pooling
    do), so they only spread unclean positions. Nested models are not
    followed.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017, Sec. 2.4.

    Args:
        model: a functional video model with input `[batch, time, ...]`.
        frames: the clip length.

    Returns:
        A dict from layer name to a boolean array over that layer's output
        time axis, for every layer whose output still has a time axis.

    Example:

    >>> model = InceptionI3D(frames=64, image_size=32, final_endpoint="Mixed_5c")
    >>> int(unpadded_time_positions(model, 64)["Mixed_5c"].sum())
    0
    """
    masks = {id(model.inputs[0]): np.ones(int(frames), bool)}
    result = {}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(x) not in masks for x in node.input_tensors):
                continue
            in_masks = [masks[id(x)] for x in node.input_tensors]
            for x in node.outputs:
                out = _op_mask(node.operation, in_masks, x)
                masks[id(x)] = out
                if out is not None:
                    result[node.operation.name] = out
    return result
