"""The Inflated 3D ConvNet (I3D) and the two-stream fusion model.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017 (arXiv:1705.07750). The network follows
DeepMind's release (github.com/deepmind/kinetics-i3d, `i3d.py`): the same
layers, the same TensorFlow "SAME" padding, the same endpoints, and layer names
made from DeepMind's variable scopes with "_" for "/", so that checkpoints map
by name (`RGB/inception_i3d/Mixed_4b/Branch_1/Conv3d_0b_3x3/conv_3d/w` is the
kernel of the layer `Mixed_4b_Branch_1_Conv3d_0b_3x3_conv_3d`).
"""

import keras

from i3d_keras.models import layers as i3d_layers

# The network as data: (endpoint, kind, arguments), read in order by
# `InceptionI3D`. Inception blocks give the channels of
# (Branch_0, Branch_1 1x1, Branch_1 3x3, Branch_2 1x1, Branch_2 3x3, Branch_3).
ARCHITECTURE = (
    ("Conv3d_1a_7x7", "conv", dict(filters=64, kernel_size=7, strides=2)),
    ("MaxPool3d_2a_3x3", "pool", dict(pool_size=(1, 3, 3), strides=(1, 2, 2))),
    ("Conv3d_2b_1x1", "conv", dict(filters=64, kernel_size=1, strides=1)),
    ("Conv3d_2c_3x3", "conv", dict(filters=192, kernel_size=3, strides=1)),
    ("MaxPool3d_3a_3x3", "pool", dict(pool_size=(1, 3, 3), strides=(1, 2, 2))),
    ("Mixed_3b", "mixed", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", dict(pool_size=(3, 3, 3), strides=(2, 2, 2))),
    ("Mixed_4b", "mixed", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", dict(pool_size=(2, 2, 2), strides=(2, 2, 2))),
    ("Mixed_5b", "mixed", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", (384, 192, 384, 48, 128, 128)),
)

# DeepMind's `VALID_ENDPOINTS`, in order.
ENDPOINTS = tuple(name for name, _, _ in ARCHITECTURE) + ("Logits", "Predictions")

STREAM_CHANNELS = {"rgb": 3, "flow": 2}

# The paper's logits head: average pool 2x7x7 (stride 1, VALID) over Mixed_5c,
# which needs at least 9 frames and 193x193 pixels (Mixed_5c is 1/8 in time
# and 1/32 in space).
LOGITS_POOL_SIZE = (2, 7, 7)
MIN_FRAMES_FOR_PAPER_HEAD = 9
MIN_SIZE_FOR_PAPER_HEAD = 193

# DeepMind's scope for Mixed_5b's second branch conv is "Conv3d_0a_3x3" (not
# "0b"); the checkpoints use it, so the layer names keep it.
_BRANCH_2_CONV_NAME = {"Mixed_5b": "Conv3d_0a_3x3"}


def apply_unit3d(
    x,
    filters,
    kernel_size=1,
    strides=1,
    *,
    name,
    use_batch_norm=True,
    use_bias=False,
    activation="relu",
    batch_norm_momentum=0.999,
    synchronized_batch_norm=False,
    conv_implementation="auto",
    dtype=None,
):
    """DeepMind's `Unit3D`: Conv3D (no bias) -> BatchNorm (offset, no scale) -> ReLU.

    Args:
        x: tensor `[batch, time, height, width, channels]`.
        filters: output channels.
        kernel_size: int or `(time, height, width)`.
        strides: int or `(time, height, width)`.
        name: the DeepMind scope with "_" for "/"; the layers are
            `{name}_conv_3d`, `{name}_batch_norm` and `{name}` (the activation,
            so that the unit's output carries the scope's name).
        use_batch_norm: add the BatchNorm (epsilon 1e-3, `center=True`,
            `scale=False`, as DeepMind's Sonnet BatchNorm).
        use_bias: give the convolution a bias (only the logits conv has one).
        activation: `"relu"` or None.
        batch_norm_momentum: moving-average momentum (Sonnet's default 0.999).
        synchronized_batch_norm: compute training batch statistics across all
            replicas of a `tf.distribute` strategy (so that N replicas train as
            one device with the same global batch).
        conv_implementation: how the convolution is computed (same result):
            `"auto"`, `"conv3d"` or `"conv2d"`; see `i3d_keras.models.layers.Conv3D`.
        dtype: the layers' dtype policy (default: Keras' global policy); the
            logits head passes `"float32"`.

    Returns:
        The unit's output tensor.
    """
    x = i3d_layers.Conv3D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=use_bias,
        implementation=conv_implementation,
        name=f"{name}_conv_3d",
        dtype=dtype,
    )(x)
    if use_batch_norm:
        x = i3d_layers.BatchNormalization(
            epsilon=1e-3,
            center=True,
            scale=False,
            momentum=batch_norm_momentum,
            synchronized=synchronized_batch_norm,
            name=f"{name}_batch_norm",
            dtype=dtype,
        )(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=name, dtype=dtype)(x)
    return x


def apply_inception_block(
    x, channels, *, name, batch_norm_momentum=0.999, synchronized_batch_norm=False,
    conv_implementation="auto",
):
    """An inflated Inception block (DeepMind's `Mixed_*`).

    Branch_0: 1x1x1 conv. Branch_1 and Branch_2: 1x1x1 conv -> 3x3x3 conv.
    Branch_3: 3x3x3 max pool (stride 1) -> 1x1x1 conv. The branches are
    concatenated along channels.

    Args:
        x: tensor `[batch, time, height, width, channels]`.
        channels: `(b0, b1a, b1b, b2a, b2b, b3)` output channels.
        name: the block's endpoint name, e.g. `"Mixed_4b"`.
        batch_norm_momentum: passed to every unit.
        synchronized_batch_norm: passed to every unit.
        conv_implementation: passed to every unit.

    Returns:
        Tensor `[batch, time, height, width, b0 + b1b + b2b + b3]`, produced by a
        Concatenate layer named `name`.
    """
    b0, b1a, b1b, b2a, b2b, b3 = channels
    unit = dict(
        batch_norm_momentum=batch_norm_momentum,
        synchronized_batch_norm=synchronized_batch_norm,
        conv_implementation=conv_implementation,
    )
    branch_0 = apply_unit3d(x, b0, 1, name=f"{name}_Branch_0_Conv3d_0a_1x1", **unit)
    branch_1 = apply_unit3d(x, b1a, 1, name=f"{name}_Branch_1_Conv3d_0a_1x1", **unit)
    branch_1 = apply_unit3d(branch_1, b1b, 3, name=f"{name}_Branch_1_Conv3d_0b_3x3", **unit)
    branch_2 = apply_unit3d(x, b2a, 1, name=f"{name}_Branch_2_Conv3d_0a_1x1", **unit)
    conv_name = _BRANCH_2_CONV_NAME.get(name, "Conv3d_0b_3x3")
    branch_2 = apply_unit3d(branch_2, b2b, 3, name=f"{name}_Branch_2_{conv_name}", **unit)
    branch_3 = i3d_layers.Pooling3D(
        3, strides=1, padding="same", name=f"{name}_Branch_3_MaxPool3d_0a_3x3"
    )(x)
    branch_3 = apply_unit3d(branch_3, b3, 1, name=f"{name}_Branch_3_Conv3d_0b_1x1", **unit)
    return keras.layers.Concatenate(axis=-1, name=name)([branch_0, branch_1, branch_2, branch_3])


def apply_logits_head(x, num_classes, *, dropout_rate=0.5, adaptive=True, name="Logits",
                      conv_implementation="auto"):
    """The I3D head: avg pool 2x7x7 -> dropout -> 1x1x1 conv -> mean.

    DeepMind pools Mixed_5c with a 2x7x7 VALID average pool (stride 1), applies
    dropout and a 1x1x1 convolution with bias (no BatchNorm, no activation),
    squeezes the 1x1 spatial map and averages the per-time logits.

    The head computes in float32 under every dtype policy (its input is cast):
    under `mixed_bfloat16`, bfloat16's 8-bit mantissa would round logits of
    about 16 to steps of 0.125, and the classifier's 1024-term sums more;
    the head is 0.1% of I3D's multiply-adds.

    Args:
        x: Mixed_5c, `[batch, time, height, width, 1024]`.
        num_classes: number of logits.
        dropout_rate: dropout before the classifier (the paper: 0.5).
        adaptive: where Mixed_5c is smaller than 2x7x7 the window shrinks to
            it; where it is larger in space, the logits are averaged over the
            remaining positions as over time (DeepMind squeezes a 1x1 map).
        name: the endpoint name of the averaged logits.
        conv_implementation: see `apply_unit3d`.

    Returns:
        Logits `[batch, num_classes]`, float32 under every dtype policy.
    """
    x = i3d_layers.Pooling3D(
        LOGITS_POOL_SIZE,
        strides=1,
        padding="valid",
        mode="avg",
        adaptive=adaptive,
        name=f"{name}_AvgPool3d",
        dtype="float32",
    )(x)
    x = keras.layers.Dropout(dropout_rate, name=f"{name}_Dropout", dtype="float32")(x)
    x = apply_unit3d(
        x,
        num_classes,
        1,
        name=f"{name}_Conv3d_0c_1x1",
        use_batch_norm=False,
        use_bias=True,
        activation=None,
        conv_implementation=conv_implementation,
        dtype="float32",
    )
    return i3d_layers.Mean(axis=(1, 2, 3), name=name, dtype="float32")(x)


def _check_paper_head(frames, image_size):
    received = []
    if frames is not None and frames < MIN_FRAMES_FOR_PAPER_HEAD:
        received.append(f"frames={frames}")
    for axis, size in zip(("height", "width"), image_size):
        if size is not None and size < MIN_SIZE_FOR_PAPER_HEAD:
            received.append(f"{axis}={size}")
    if received:
        raise ValueError(
            "The paper's logits head (2x7x7 average pool over Mixed_5c) needs at "
            f"least {MIN_FRAMES_FOR_PAPER_HEAD} frames and "
            f"{MIN_SIZE_FOR_PAPER_HEAD}x{MIN_SIZE_FOR_PAPER_HEAD} pixels; use "
            "adaptive_head=True for smaller clips. Received: " + ", ".join(received)
        )


def _image_size_pair(image_size):
    if image_size is None or isinstance(image_size, int):
        return (image_size, image_size)
    if len(image_size) != 2:
        raise ValueError(
            f"`image_size` must be an int, None or (height, width). "
            f"Received: image_size={image_size}"
        )
    return tuple(image_size)


def InceptionI3D(
    num_classes=400,
    stream="rgb",
    *,
    frames=None,
    image_size=224,
    final_endpoint="Logits",
    dropout_rate=0.5,
    adaptive_head=True,
    conv_implementation="auto",
    batch_norm_momentum=0.999,
    synchronized_batch_norm=False,
    weights=None,
    name=None,
):
    """The Inflated 3D ConvNet (Inception-V1 inflated to 3D) for one stream.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New
    Model and the Kinetics Dataset", CVPR 2017.

    Args:
        num_classes: number of output classes (Kinetics-400: 400).
        stream: `"rgb"` (3 input channels) or `"flow"` (2 channels: x, y).
        frames: clip length, or None for any length (the paper trains on 64
            frames and tests on whole videos).
        image_size: int, `(height, width)` or None for any size (the paper:
            224; the head adapts to other sizes, see `adaptive_head`).
        final_endpoint: build up to this endpoint (one of `ENDPOINTS`); the
            model's output is that endpoint. `"Logits"` (default) gives the
            time-averaged logits, `"Predictions"` their softmax, `"Mixed_5c"`
            the last feature map.
        dropout_rate: dropout before the logits conv (active in training only).
        adaptive_head: let the logits head accept clips shorter than 9 frames
            or frames smaller than 193 pixels (the pool window shrinks to the
            feature map) and frames larger than 224 pixels (logits averaged
            over space). Where the paper's head applies, it computes exactly
            the paper's head. With False, a too-small static input raises.
        conv_implementation: how the 3D convolutions are computed (the same
            result up to float rounding): `"auto"` (TensorFlow's Conv3D with a
            GPU, else 2D convolutions, faster on CPUs), `"conv3d"` or
            `"conv2d"`; see `i3d_keras.models.layers.Conv3D`.
        batch_norm_momentum: BatchNorm moving-average momentum (Sonnet 0.999).
        synchronized_batch_norm: batch statistics across replicas when trained
            under a multi-replica `tf.distribute` strategy.
        weights: None (random initialisation), `"imagenet"` (ImageNet
            Inception-V1 inflated into 3D), `"kinetics"` (DeepMind's Kinetics
            checkpoint for this stream, ImageNet-pretrained), `"kinetics_scratch"`,
            or a path to a `.keras`/`.weights.h5` file or a DeepMind checkpoint.
        name: model name; defaults to `"inception_i3d_{stream}"`.

    Returns:
        A functional `keras.Model` with one input named `stream`,
        `[batch, frames, height, width, channels]`, values in [-1, 1].

    Example:

    >>> model = InceptionI3D(num_classes=10, frames=16, image_size=64)
    >>> model(np.zeros([1, 16, 64, 64, 3], "float32")).shape
    TensorShape([1, 10])
    """
    if stream not in STREAM_CHANNELS:
        raise ValueError(
            f"`stream` must be one of {sorted(STREAM_CHANNELS)}. Received: stream={stream!r}"
        )
    if final_endpoint not in ENDPOINTS:
        raise ValueError(
            f"`final_endpoint` must be one of {ENDPOINTS}. "
            f"Received: final_endpoint={final_endpoint!r}"
        )
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise ValueError(f"`frames` must be a positive int or None. Received: frames={frames}")
    height, width = _image_size_pair(image_size)
    builds_head = final_endpoint in ("Logits", "Predictions")
    if builds_head and not adaptive_head:
        _check_paper_head(frames, (height, width))
    if builds_head and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes}"
        )

    inputs = keras.Input(
        shape=(frames, height, width, STREAM_CHANNELS[stream]), name=stream
    )
    x = inputs
    unit = dict(
        batch_norm_momentum=batch_norm_momentum,
        synchronized_batch_norm=synchronized_batch_norm,
        conv_implementation=conv_implementation,
    )
    for endpoint, kind, args in ARCHITECTURE:
        if kind == "conv":
            x = apply_unit3d(x, **args, name=endpoint, **unit)
        elif kind == "pool":
            x = i3d_layers.Pooling3D(**args, padding="same", name=endpoint)(x)
        else:
            x = apply_inception_block(x, args, name=endpoint, **unit)
        if endpoint == final_endpoint:
            break
    if builds_head:
        x = apply_logits_head(
            x, num_classes, dropout_rate=dropout_rate, adaptive=adaptive_head,
            conv_implementation=conv_implementation,
        )
    if final_endpoint == "Predictions":
        x = keras.layers.Softmax(name="Predictions", dtype="float32")(x)

    model = keras.Model(inputs, x, name=name or f"inception_i3d_{stream}")
    if weights is not None:
        from i3d_keras.weights import pretrained as i3d_weights  # noqa: PLC0415 (heavy, optional)

        i3d_weights.load_pretrained(model, weights, stream=stream)
    return model


def logits_model(model):
    """The part of a stream model that ends at its `Logits` endpoint.

    Shares layers (and weights) with `model`. A model that already ends at
    `Logits` is returned as is.

    Args:
        model: a model built by `InceptionI3D` (or any model with a layer
            named `"Logits"`).

    Returns:
        A `keras.Model` from `model.inputs` to the `Logits` output.
    """
    if model.layers[-1].name == "Logits":
        return model
    try:
        logits = model.get_layer("Logits").output
    except ValueError:
        raise ValueError(
            "Expected a stream model with a 'Logits' endpoint (build it with "
            f"final_endpoint='Logits' or 'Predictions'). Received: model "
            f"{model.name!r} ending at {model.layers[-1].name!r}"
        ) from None
    return keras.Model(model.input, logits, name=model.name)


def endpoint_model(model, endpoints=None, pooled=False):
    """A model that returns intermediate endpoints of a built I3D model.

    The returned model shares all layers and weights with `model` (nothing is
    rebuilt or copied). Typical use: the 1024-d clip feature
    `endpoint_model(model, "Mixed_5c", pooled=True)`.

    Args:
        model: a model built by `InceptionI3D`.
        endpoints: an endpoint name, or a list of names; default: all endpoints
            the model has.
        pooled: average each feature map over time and space (giving
            `[batch, channels]`).

    Returns:
        A `keras.Model` whose output is one tensor for a single name, else a
        dict from endpoint name to tensor.

    Example:

    >>> model = InceptionI3D(frames=16, image_size=64)
    >>> features = endpoint_model(model, "Mixed_5c", pooled=True)
    >>> features(np.zeros([1, 16, 64, 64, 3], "float32")).shape
    TensorShape([1, 1024])
    """
    single = isinstance(endpoints, str)
    names = [endpoints] if single else list(endpoints or [])
    available = [e for e in ENDPOINTS if has_layer(model, e)]
    if not names:
        names = available
    missing = [e for e in names if e not in available]
    if missing:
        raise ValueError(
            f"Expected endpoints among {available}. Received: endpoints={missing}"
        )
    outputs = {}
    for endpoint in names:
        x = model.get_layer(endpoint).output
        if pooled and len(x.shape) == 5:
            x = i3d_layers.Mean(axis=(1, 2, 3), name=f"{endpoint}_pooled")(x)
        outputs[endpoint] = x
    return keras.Model(
        model.input,
        outputs[names[0]] if single else outputs,
        name=f"{model.name}_endpoints",
    )


def has_layer(model, name):
    """Whether `model` has a layer named `name` (Keras' `get_layer` raises instead)."""
    try:
        model.get_layer(name)
    except ValueError:
        return False
    return True


def TwoStreamI3D(rgb_model=None, flow_model=None, *, stream_weights=None, name="two_stream_i3d"):
    """The two-stream fusion model: RGB and flow logits added before the softmax.

    Reference: Carreira & Zisserman, CVPR 2017, Sec. 2.5: the two streams are
    trained separately and their predictions averaged at test time.

    The stream models are wrapped, not copied: the fusion model shares their
    layers and weights, so training or loading weights into a stream changes
    the fusion model too. Works with a single stream as well.

    Args:
        rgb_model: an RGB stream (`InceptionI3D(stream="rgb")`) or None.
        flow_model: a flow stream (`InceptionI3D(stream="flow")`) or None.
        stream_weights: optional `(rgb_weight, flow_weight)` for a weighted
            sum of the logits; default equal weights (the paper).
        name: model name.

    Returns:
        A functional `keras.Model` with inputs `{"rgb": ..., "flow": ...}` (those
        of the given streams) and outputs `{"logits": ..., "probabilities": ...}`.

    Example:

    >>> rgb = InceptionI3D(10, "rgb", frames=16, image_size=64)
    >>> flow = InceptionI3D(10, "flow", frames=16, image_size=64)
    >>> fused = TwoStreamI3D(rgb, flow)
    >>> out = fused({"rgb": np.zeros([1, 16, 64, 64, 3], "float32"),
    ...              "flow": np.zeros([1, 16, 64, 64, 2], "float32")})
    >>> out["probabilities"].shape
    TensorShape([1, 10])
    """
    streams = [(k, m) for k, m in (("rgb", rgb_model), ("flow", flow_model)) if m is not None]
    if not streams:
        raise ValueError("Expected at least one stream model. Received: rgb_model=None, flow_model=None")
    if stream_weights is not None and len(stream_weights) != len(streams):
        raise ValueError(
            f"Expected one weight per stream ({len(streams)}). "
            f"Received: stream_weights={stream_weights}"
        )
    inputs, logits = {}, []
    for key, model in streams:
        model = logits_model(model)
        model_input = model.inputs[0]
        inputs[key] = keras.Input(shape=model_input.shape[1:], name=key, dtype=model_input.dtype)
        logits.append(model(inputs[key]))
    classes = {int(x.shape[-1]) for x in logits}
    if len(classes) != 1:
        raise ValueError(
            f"Expected streams with the same number of classes. Received: {sorted(classes)}"
        )
    fused = i3d_layers.WeightedSum(stream_weights, name="Logits", dtype="float32")(logits)
    probabilities = keras.layers.Softmax(name="Predictions", dtype="float32")(fused)
    return keras.Model(inputs, {"logits": fused, "probabilities": probabilities}, name=name)
