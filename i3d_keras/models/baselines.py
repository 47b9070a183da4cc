"""The architectures I3D is compared with in the paper, on the same backbone.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017, Sec. 2 and Table 1. All models except
the 3D ConvNet use the batch-normalised ImageNet Inception-V1 (`InceptionV1`,
TF-slim's variant) as backbone, so that the comparison is about the
architecture, not the backbone:

  ==================  ===========  ==============================================
  name                inputs       model
  ==================  ===========  ==============================================
  convnet_pooling     one stream   2D ConvNet on every frame, logits averaged
                                   over time (ignores temporal order)
  convnet_lstm        one stream   Inception-V1 features per frame -> BatchNorm
                                   LSTM (512 units) -> FC (Sec. 2.1)
  c3d                 one stream   8 3D convs, 5 poolings, 2 FC, BatchNorm,
                                   from scratch (Sec. 2.2)
  two_stream_2d       rgb + flow   1 RGB frame + 10 stacked flow frames per
                                   snapshot, averaged over snapshots (Sec. 2.3)
  3d_fused            rgb + flow   both 2D streams' last conv features fused by
                                   3x3x3 conv + 3x3x3 max pool + FC (Sec. 2.4)
  i3d                 one stream   `InceptionI3D`
  two_stream_i3d      rgb + flow   `TwoStreamI3D` (Sec. 2.5)
  ==================  ===========  ==============================================

"One stream" models take the input named by `stream` ("rgb": `[batch, T, H,
W, 3]` in [-1, 1], or "flow": `[batch, T, H, W, 2]`); two-stream models take a
dict `{"rgb": ..., "flow": ...}` of clips with the same T, H, W: exactly what
`i3d_keras.data.motion_dataset.motion_datasets(modality=input_modality(name))`
yields. Every model outputs logits `[batch, num_classes]` (float32), except
`two_stream_i3d`, the existing `TwoStreamI3D`, which outputs
`{"logits", "probabilities"}` (`classifier(model)` gives a logits-only view of
any of them).

Built layer by layer with fixed names (no auto-named layers, no Lambda
layers), so every model saves to `.keras` and loads in safe mode.
"""

import keras

from i3d_keras.models import inception_v1
from i3d_keras.models import layers as i3d_layers
from i3d_keras.models import i3d as i3d_model

STREAM_CHANNELS = i3d_model.STREAM_CHANNELS

# The paper's Table 1 (Kinetics, 224x224, 400 classes): parameters and
# training input, for comparison with the models built here.
PAPER_TABLE_1 = {
    "convnet_lstm": {"params": "9M", "train_input": "25 rgb"},
    "c3d": {"params": "79M", "train_input": "16 rgb"},
    "two_stream_2d": {"params": "12M", "train_input": "1 rgb, 10 flow"},
    "3d_fused": {"params": "39M", "train_input": "5 rgb, 50 flow"},
    "two_stream_i3d": {"params": "25M", "train_input": "64 rgb, 64 flow"},
}

# C3D (Tran et al., ICCV 2015) as data: (name, kind, argument) read in order
# by `C3D`. The paper (Sec. 2.2) uses temporal stride 2 in the first pooling
# (C3D: 1) and BatchNorm after every conv and FC layer.
C3D_ARCHITECTURE = (
    ("conv1a", "conv", 64),
    ("pool1", "pool", (2, 2, 2)),
    ("conv2a", "conv", 128),
    ("pool2", "pool", (2, 2, 2)),
    ("conv3a", "conv", 256),
    ("conv3b", "conv", 256),
    ("pool3", "pool", (2, 2, 2)),
    ("conv4a", "conv", 512),
    ("conv4b", "conv", 512),
    ("pool4", "pool", (2, 2, 2)),
    ("conv5a", "conv", 512),
    ("conv5b", "conv", 512),
    ("pool5", "pool", (2, 2, 2)),
    ("fc6", "fc", 4096),
    ("fc7", "fc", 4096),
)

# The flow stack of a two-stream network (Simonyan & Zisserman): 10 frames.
FLOW_STACK = 10
# The 3D-fused network's snapshots (Sec. 2.4: 5 RGB frames, 5 flow stacks).
FUSED_SNAPSHOTS = 5
# Slim Inception-V1's BatchNorm decay.
BACKBONE_MOMENTUM = 0.9997


def _check_stream(stream):
    if stream not in STREAM_CHANNELS:
        raise ValueError(
            f"`stream` must be one of {sorted(STREAM_CHANNELS)}. Received: stream={stream!r}"
        )


def _check_common(num_classes, frames):
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int. Received: num_classes={num_classes}")
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise ValueError(f"`frames` must be a positive int or None. Received: frames={frames}")


def _clip_input(stream, frames, height, width):
    return keras.Input(shape=(frames, height, width, STREAM_CHANNELS[stream]), name=stream)


def _backbone(name, channels, height, width, *, num_classes=None, dropout_rate=0.2,
              batch_norm_momentum=BACKBONE_MOMENTUM, weights=None):
    """Inception-V1 (with a `num_classes` head, or up to Mixed_5c) as one nested model.

    `weights="imagenet"` (or a slim checkpoint path) loads TF-slim's ImageNet
    Inception-V1 without its logits; a first conv with other than 3 input
    channels is adapted from the RGB kernel by `adapt_input_channels`'s
    "equal_response" rule (the rule I3D's flow stream uses).
    """
    model = inception_v1.InceptionV1(
        num_classes or 1, image_size=(height, width), channels=channels,
        include_top=num_classes is not None, dropout_rate=dropout_rate,
        batch_norm_momentum=batch_norm_momentum, name=name,
    )
    if weights is not None:
        load_imagenet_backbone(model, weights)
    return model


def load_imagenet_backbone(model, weights="imagenet"):
    """Loads ImageNet Inception-V1 weights (not the logits) into a backbone.

    Reference: Carreira & Zisserman, CVPR 2017, Sec. 2 (all models but the 3D
    ConvNet start from ImageNet Inception-V1) and Sec. 2.3 (the flow stream's
    first conv is adapted to the stacked flow channels).

    Args:
        model: an `InceptionV1` model, any number of input channels, with or
            without head (modified in place).
        weights: `"imagenet"` (TF-slim's checkpoint, downloaded once) or a
            path to a slim Inception-V1 checkpoint.

    Returns:
        `model`.

    Example:

    >>> backbone = InceptionV1(10, image_size=32, channels=20)
    >>> load_imagenet_backbone(backbone, "/tmp/inception_v1.ckpt")  # doctest: +SKIP
    """
    from i3d_keras.weights.inflation import adapt_input_channels  # noqa: PLC0415

    path = inception_v1.download_slim_checkpoint() if weights == "imagenet" else weights
    channels = model.inputs[0].shape[-1]
    if channels == 3:
        inception_v1.load_slim_checkpoint(model, path, skip_logits=True)
        return model
    has_top = i3d_model.has_layer(model, "Logits")
    rgb = inception_v1.InceptionV1(
        int(model.outputs[0].shape[-1]) if has_top else 1, image_size=None,
        include_top=has_top, name=f"{model.name}_rgb",
    )
    inception_v1.load_slim_checkpoint(rgb, path, skip_logits=True)
    for layer in model.layers:
        if not layer.weights or layer.name.startswith("Logits_"):
            continue
        values = rgb.get_layer(layer.name).get_weights()
        if layer.name == "Conv2d_1a_7x7_conv_2d":
            values[0] = adapt_input_channels(values[0], channels, "equal_response")
        layer.set_weights(values)
    return model


def _load_saved_weights(model, weights):
    if weights is not None:
        model.load_weights(weights)
    return model


def _split_weights(weights):
    """(backbone weights, whole-model weights file) from a `weights` argument."""
    if weights is None:
        return None, None
    if weights == "imagenet" or not str(weights).endswith((".keras", ".weights.h5", ".h5")):
        return weights, None
    return None, weights


def ConvNetPooling(num_classes, stream="rgb", *, frames=None, image_size=224,
                   dropout_rate=0.2, batch_norm_momentum=BACKBONE_MOMENTUM, weights=None,
                   name="convnet_pooling"):
    """A 2D ConvNet applied to every frame, its logits averaged over time.

    The simplest video model (Carreira & Zisserman, CVPR 2017, Sec. 2.1): it
    ignores temporal order, so it cannot tell a clip from its time reversal
    ("opening versus closing a door").

    Args:
        num_classes: number of classes.
        stream: `"rgb"` or `"flow"` (the input's name and channels).
        frames: clip length, or None for any length.
        image_size: int or `(height, width)`.
        dropout_rate: Inception-V1's dropout before its logits.
        batch_norm_momentum: BatchNorm moving-average momentum (slim 0.9997;
            use ~0.9 for short training runs).
        weights: None, `"imagenet"` / a slim checkpoint (the backbone), or a
            `.keras` / `.weights.h5` file of this model.
        name: model name.

    Returns:
        A functional `keras.Model`, input `stream` `[batch, frames, h, w, c]`,
        output logits `[batch, num_classes]` (layer `Logits`).

    Example:

    >>> model = ConvNetPooling(10, frames=8, image_size=32)
    >>> model(np.zeros([2, 8, 32, 32, 3], "float32")).shape
    TensorShape([2, 10])
    """
    _check_stream(stream)
    _check_common(num_classes, frames)
    height, width = i3d_model._image_size_pair(image_size)
    backbone_weights, saved = _split_weights(weights)
    inputs = _clip_input(stream, frames, height, width)
    x = i3d_layers.FoldTime(name="FoldTime")(inputs)
    backbone = _backbone("InceptionV1", STREAM_CHANNELS[stream], height, width,
                         num_classes=num_classes, dropout_rate=dropout_rate,
                         batch_norm_momentum=batch_norm_momentum, weights=backbone_weights)
    x = backbone(x)
    x = i3d_layers.UnfoldTime(name="UnfoldTime")([x, inputs])
    x = i3d_layers.Mean(axis=1, name="Logits", dtype="float32")(x)
    return _load_saved_weights(keras.Model(inputs, x, name=name), saved)


def ConvNetLSTM(num_classes, stream="rgb", *, frames=None, image_size=224, lstm_units=512,
                dropout_rate=0.5, batch_norm_momentum=BACKBONE_MOMENTUM, weights=None,
                name="convnet_lstm"):
    """Inception-V1 per frame, then an LSTM with BatchNorm and an FC classifier.

    Carreira & Zisserman, CVPR 2017, Sec. 2.1: "a recurrent layer with batch
    normalization after the last average pooling layer of Inception-V1, with
    512 hidden units. A fully connected layer is added on top for the
    classifier." Here BatchNorm normalises the LSTM's input sequence and its
    output; the classifier reads the last time step (the paper's test-time
    output). Deviation: the paper's training loss also sums the outputs of all
    time steps; here only the last step is trained, so that every model has
    one `[batch, classes]` output.

    Args:
        num_classes: number of classes.
        stream: `"rgb"` or `"flow"`.
        frames: clip length, or None for any length.
        image_size: int or `(height, width)`.
        lstm_units: hidden units (the paper: 512).
        dropout_rate: dropout before the classifier.
        batch_norm_momentum: BatchNorm momentum, backbone and LSTM BatchNorms.
        weights: None, `"imagenet"` / a slim checkpoint (the backbone), or a
            `.keras` / `.weights.h5` file of this model.
        name: model name.

    Returns:
        A functional `keras.Model`, input `stream`, output logits (layer
        `Logits`).

    Example:

    >>> model = ConvNetLSTM(10, frames=8, image_size=32)
    >>> model(np.zeros([2, 8, 32, 32, 3], "float32")).shape
    TensorShape([2, 10])
    """
    _check_stream(stream)
    _check_common(num_classes, frames)
    height, width = i3d_model._image_size_pair(image_size)
    backbone_weights, saved = _split_weights(weights)
    inputs = _clip_input(stream, frames, height, width)
    x = i3d_layers.FoldTime(name="FoldTime")(inputs)
    backbone = _backbone("InceptionV1", STREAM_CHANNELS[stream], height, width,
                         batch_norm_momentum=batch_norm_momentum, weights=backbone_weights)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="AvgPool_0a")(x)
    x = i3d_layers.UnfoldTime(name="UnfoldTime")([x, inputs])
    x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="LSTM_input_batch_norm")(x)
    x = keras.layers.LSTM(lstm_units, name="LSTM")(x)
    x = keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="LSTM_batch_norm")(x)
    x = keras.layers.Dropout(dropout_rate, name="Logits_Dropout")(x)
    x = keras.layers.Dense(num_classes, name="Logits", dtype="float32")(x)
    return _load_saved_weights(keras.Model(inputs, x, name=name), saved)


def c3d_fc_units(flattened):
    """The width of C3D's FC layers for a given flattened pool5 size.

    C3D's fc6 halves its 8192 inputs (16x112x112 clips) to 4096. Small clips
    have far fewer pool5 features (512 at 16x32x32), and a 4096-wide layer on
    them would be mostly parameters with nothing to read, so the FC layers are
    as wide as their input, at most 4096: 4096 at 112 pixels (the paper's
    model), 2048 at 64, 512 at 32.

    Example:

    >>> c3d_fc_units(8192), c3d_fc_units(512)
    (4096, 512)
    """
    return int(min(4096, flattened))


def C3D(num_classes, stream="rgb", *, frames=16, image_size=112, fc_units=None, dropout_rate=0.5,
        batch_norm_momentum=0.99, weights=None, name="c3d"):
    """A C3D-style 3D ConvNet with BatchNorm, trained from scratch.

    Carreira & Zisserman, CVPR 2017, Sec. 2.2: "8 convolutional layers, 5
    pooling layers and 2 fully connected layers at the top", 16-frame 112x112
    inputs, batch normalisation after all convolutional and fully connected
    layers, temporal stride 2 in the first pooling. The layers follow Tran et
    al. (ICCV 2015), read from `C3D_ARCHITECTURE`: 3x3x3 convs (SAME),
    2x2x2 max poolings (SAME, so pool5 of 7x7 gives C3D's 4x4), fc6/fc7 with
    dropout, then the logits layer.

    Args:
        num_classes: number of classes.
        stream: `"rgb"` or `"flow"`.
        frames: clip length (needed: the FC layers read a flattened map).
        image_size: int or `(height, width)`, needed for the same reason.
        fc_units: width of fc6 and fc7; default `c3d_fc_units(pool5 size)`
            (4096 at the paper's 16x112x112, fewer for small clips).
        dropout_rate: after fc6 and fc7 (C3D: 0.5).
        batch_norm_momentum: BatchNorm momentum.
        weights: None or a `.keras` / `.weights.h5` file of this model (the
            paper trains C3D from scratch: there are no ImageNet weights).
        name: model name.

    Returns:
        A functional `keras.Model`, input `stream`, output logits (layer
        `Logits`).

    Example:

    >>> model = C3D(10, frames=8, image_size=32)
    >>> model(np.zeros([2, 8, 32, 32, 3], "float32")).shape
    TensorShape([2, 10])
    """
    _check_stream(stream)
    _check_common(num_classes, frames)
    height, width = i3d_model._image_size_pair(image_size)
    if frames is None or height is None or width is None:
        raise ValueError(
            "C3D's fully connected layers need a fixed clip size. "
            f"Received: frames={frames}, image_size={image_size}"
        )
    if weights == "imagenet":
        raise ValueError(
            "C3D is trained from scratch (paper Sec. 2.2); expected weights=None or a "
            f"saved model file. Received: weights={weights!r}"
        )
    inputs = _clip_input(stream, frames, height, width)
    x = inputs
    for layer_name, kind, arg in C3D_ARCHITECTURE:
        if kind == "conv":
            x = i3d_model.apply_unit3d(x, arg, 3, name=layer_name,
                                       batch_norm_momentum=batch_norm_momentum)
        elif kind == "pool":
            x = i3d_layers.Pooling3D(arg, strides=arg, padding="same", name=layer_name)(x)
        else:
            if layer_name == "fc6":
                x = keras.layers.Flatten(name="flatten")(x)
                units = fc_units or c3d_fc_units(x.shape[-1])
            x = keras.layers.Dense(units, use_bias=False, name=f"{layer_name}_dense")(x)
            x = keras.layers.BatchNormalization(
                epsilon=1e-3, scale=False, momentum=batch_norm_momentum,
                name=f"{layer_name}_batch_norm")(x)
            x = keras.layers.Activation("relu", name=layer_name)(x)
            x = keras.layers.Dropout(dropout_rate, name=f"{layer_name}_dropout")(x)
    x = keras.layers.Dense(num_classes, name="Logits", dtype="float32")(x)
    return _load_saved_weights(keras.Model(inputs, x, name=name), weights)


def _default_snapshots(frames):
    return 1 if frames is None else max(1, frames // FLOW_STACK)


def _two_stream_inputs(frames, height, width):
    return {s: _clip_input(s, frames, height, width) for s in ("rgb", "flow")}


def _check_flow_stack(frames, flow_stack, num_snapshots):
    for key, value in (("flow_stack", flow_stack), ("num_snapshots", num_snapshots)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{key}` must be a positive int. Received: {key}={value}")
    if frames is not None and frames < flow_stack:
        raise ValueError(
            f"A flow stack of {flow_stack} frames needs clips of at least {flow_stack} "
            f"frames; pass a smaller flow_stack. Received: frames={frames}"
        )


def TwoStream2D(num_classes, *, frames=None, image_size=224, flow_stack=FLOW_STACK,
                num_snapshots=None, dropout_rate=0.2, batch_norm_momentum=BACKBONE_MOMENTUM,
                weights=None, name="two_stream_2d"):
    """The original two-stream network: one RGB frame + a stack of flow frames.

    Carreira & Zisserman, CVPR 2017, Sec. 2.3 (Simonyan & Zisserman, NIPS
    2014): two Inception-V1s, one on a single RGB frame, one on 10 stacked
    optical flow frames (a 20-channel first conv adapted from the ImageNet
    RGB kernel); their logits are added (as `TwoStreamI3D` does) and averaged
    over `num_snapshots` snapshots of the clip (`Snapshots`: evenly spaced
    flow stacks, the RGB frame in the middle of each). The paper trains this
    model end to end, averaging included.

    Args:
        num_classes: number of classes.
        frames: clip length (>= `flow_stack`), or None for any length.
        image_size: int or `(height, width)`.
        flow_stack: flow frames per snapshot (the paper: 10).
        num_snapshots: snapshots per clip; default one per `flow_stack`
            frames (25 for the paper's 250-frame test clips), 1 for frames
            None.
        dropout_rate: each Inception-V1's dropout before its logits.
        batch_norm_momentum: BatchNorm momentum.
        weights: None, `"imagenet"` / a slim checkpoint (both backbones), or a
            `.keras` / `.weights.h5` file of this model.
        name: model name.

    Returns:
        A functional `keras.Model`, inputs `{"rgb", "flow"}` (clips
        `[batch, frames, h, w, 3 / 2]`), output logits (layer `Logits`).

    Example:

    >>> model = TwoStream2D(10, frames=16, image_size=32)
    >>> model({"rgb": np.zeros([2, 16, 32, 32, 3], "float32"),
    ...        "flow": np.zeros([2, 16, 32, 32, 2], "float32")}).shape
    TensorShape([2, 10])
    """
    _check_common(num_classes, frames)
    num_snapshots = num_snapshots or _default_snapshots(frames)
    _check_flow_stack(frames, flow_stack, num_snapshots)
    height, width = i3d_model._image_size_pair(image_size)
    backbone_weights, saved = _split_weights(weights)
    inputs = _two_stream_inputs(frames, height, width)
    logits = []
    for stream, length in (("rgb", 1), ("flow", flow_stack)):
        x = i3d_layers.Snapshots(num_snapshots, length=length, span=flow_stack,
                                 name=f"{stream}_Snapshots")(inputs[stream])
        backbone = _backbone(f"{stream}_InceptionV1", STREAM_CHANNELS[stream] * length, height,
                             width, num_classes=num_classes, dropout_rate=dropout_rate,
                             batch_norm_momentum=batch_norm_momentum, weights=backbone_weights)
        logits.append(backbone(x))
    x = i3d_layers.WeightedSum(name="Fusion")(logits)
    x = i3d_layers.UnfoldTime(num_snapshots, name="UnfoldSnapshots")(x)
    x = i3d_layers.Mean(axis=1, name="Logits", dtype="float32")(x)
    return _load_saved_weights(keras.Model(inputs, x, name=name), saved)


def ThreeDFused(num_classes, *, frames=None, image_size=224, flow_stack=FLOW_STACK,
                num_snapshots=FUSED_SNAPSHOTS, fusion_filters=512, dropout_rate=0.5,
                batch_norm_momentum=BACKBONE_MOMENTUM, weights=None, name="3d_fused"):
    """Two 2D streams fused after their last conv by a small 3D ConvNet.

    Carreira & Zisserman, CVPR 2017, Sec. 2.4 (after Feichtenhofer et al.,
    CVPR 2016): `num_snapshots` RGB frames and flow stacks (the paper: 5
    frames 10 apart and their flow) go through two Inception-V1s up to their
    last conv block (Mixed_5c, 1024 channels each, before the last average
    pooling); the two `[batch, snapshots, h, w, 1024]` feature grids are
    concatenated and passed through a 3x3x3 conv with 512 outputs (+
    BatchNorm, ReLU), a 3x3x3 max pooling (stride 2) and a fully connected
    layer. The FC reads the globally averaged pooled map: with the two
    backbones (~12M) and the 3x3x3x2048x512 conv (28M) that gives the paper's
    39M parameters, where an FC on the flattened map would add ~10M more.

    Args:
        num_classes: number of classes.
        frames: clip length (>= `flow_stack`), or None.
        image_size: int or `(height, width)`.
        flow_stack: flow frames per snapshot (the paper: 10).
        num_snapshots: snapshots per clip (the paper: 5).
        fusion_filters: the fusion conv's channels (the paper: 512).
        dropout_rate: before the FC.
        batch_norm_momentum: BatchNorm momentum.
        weights: None, `"imagenet"` / a slim checkpoint (both backbones), or a
            `.keras` / `.weights.h5` file of this model.
        name: model name.

    Returns:
        A functional `keras.Model`, inputs `{"rgb", "flow"}`, output logits
        (layer `Logits`).

    Example:

    >>> model = ThreeDFused(10, frames=16, image_size=32)
    >>> model({"rgb": np.zeros([2, 16, 32, 32, 3], "float32"),
    ...        "flow": np.zeros([2, 16, 32, 32, 2], "float32")}).shape
    TensorShape([2, 10])
    """
    _check_common(num_classes, frames)
    _check_flow_stack(frames, flow_stack, num_snapshots)
    height, width = i3d_model._image_size_pair(image_size)
    backbone_weights, saved = _split_weights(weights)
    inputs = _two_stream_inputs(frames, height, width)
    features = []
    for stream, length in (("rgb", 1), ("flow", flow_stack)):
        x = i3d_layers.Snapshots(num_snapshots, length=length, span=flow_stack,
                                 name=f"{stream}_Snapshots")(inputs[stream])
        backbone = _backbone(f"{stream}_InceptionV1", STREAM_CHANNELS[stream] * length, height,
                             width, batch_norm_momentum=batch_norm_momentum,
                             weights=backbone_weights)
        x = backbone(x)
        features.append(i3d_layers.UnfoldTime(num_snapshots, name=f"{stream}_UnfoldSnapshots")(x))
    x = keras.layers.Concatenate(axis=-1, name="Fusion_Concat")(features)
    x = i3d_model.apply_unit3d(x, fusion_filters, 3, name="Fusion_Conv3d_3x3",
                               batch_norm_momentum=batch_norm_momentum)
    x = i3d_layers.Pooling3D(3, strides=2, padding="same", name="Fusion_MaxPool3d_3x3")(x)
    x = i3d_layers.Mean(axis=(1, 2, 3), name="Fusion_AvgPool")(x)
    x = keras.layers.Dropout(dropout_rate, name="Logits_Dropout")(x)
    x = keras.layers.Dense(num_classes, name="Logits", dtype="float32")(x)
    return _load_saved_weights(keras.Model(inputs, x, name=name), saved)


def _i3d(num_classes, stream="rgb", *, frames=None, image_size=224, batch_norm_momentum=None,
         weights=None, **kwargs):
    extra = {} if batch_norm_momentum is None else {"batch_norm_momentum": batch_norm_momentum}
    return i3d_model.InceptionI3D(num_classes, stream, frames=frames, image_size=image_size,
                                  weights=weights, name=f"i3d_{stream}", **extra, **kwargs)


def _two_stream_i3d(num_classes, *, frames=None, image_size=224, batch_norm_momentum=None,
                    weights=None, **kwargs):
    streams = [
        _i3d(num_classes, s, frames=frames, image_size=image_size,
             batch_norm_momentum=batch_norm_momentum, weights=weights, **kwargs)
        for s in ("rgb", "flow")
    ]
    return i3d_model.TwoStreamI3D(*streams)


# name -> (builder, inputs): inputs "stream" (one clip, named by the
# `stream` argument) or "both" (a dict {"rgb", "flow"}).
ARCHITECTURES = {
    "i3d": (_i3d, "stream"),
    "convnet_pooling": (ConvNetPooling, "stream"),
    "convnet_lstm": (ConvNetLSTM, "stream"),
    "c3d": (C3D, "stream"),
    "two_stream_2d": (TwoStream2D, "both"),
    "3d_fused": (ThreeDFused, "both"),
    "two_stream_i3d": (_two_stream_i3d, "both"),
}


def _check_name(name):
    if name not in ARCHITECTURES:
        raise ValueError(
            f"`name` must be one of {sorted(ARCHITECTURES)}. Received: name={name!r}"
        )


def input_modality(name, stream="rgb"):
    """The `motion_datasets` / input pipeline modality an architecture takes.

    Args:
        name: a key of `ARCHITECTURES`.
        stream: the stream of one-stream architectures (ignored by two-stream
            ones).

    Returns:
        `"rgb"`, `"flow"` (a single clip) or `"both"` (a dict
        `{"rgb", "flow"}`).

    Example:

    >>> input_modality("two_stream_2d"), input_modality("c3d")
    ('both', 'rgb')
    """
    _check_name(name)
    if ARCHITECTURES[name][1] == "both":  # `stream` is ignored, as by `build_architecture`
        return "both"
    _check_stream(stream)
    return stream


def build_architecture(name, num_classes, frames=None, image_size=224, *, stream="rgb",
                       weights=None, batch_norm_momentum=None, **kwargs):
    """Builds one of the paper's compared architectures by name.

    Reference: Carreira & Zisserman, CVPR 2017, Sec. 2 and Table 1.

    Feed it what `motion_datasets(modality=input_modality(name, stream))`
    (or the input pipeline with that modality) yields.

    Args:
        name: a key of `ARCHITECTURES`.
        num_classes: number of classes.
        frames: clip length (C3D needs it; None elsewhere for any length).
            Two-stream 2D models stack `min(10, frames)` flow frames.
        image_size: int or `(height, width)` (C3D needs it).
        stream: `"rgb"` or `"flow"` for one-stream architectures (ignored by
            two-stream ones).
        weights: None (random initialisation), `"imagenet"` (backbones),
            a saved weights file, or for the I3D models anything
            `InceptionI3D` accepts.
        batch_norm_momentum: BatchNorm momentum for every BatchNorm of the
            model; default each builder's own (0.9 or so suits short runs).
        **kwargs: passed on to the builder.

    Returns:
        A functional `keras.Model` (`two_stream_i3d`: outputs `{"logits",
        "probabilities"}`; the others: logits).

    Example:

    >>> model = build_architecture("convnet_lstm", 10, frames=8, image_size=32)
    >>> input_modality("convnet_lstm")
    'rgb'
    """
    _check_name(name)
    builder, inputs = ARCHITECTURES[name]
    if batch_norm_momentum is not None:
        kwargs["batch_norm_momentum"] = batch_norm_momentum
    if inputs == "stream":
        _check_stream(stream)
        kwargs["stream"] = stream
    if name in ("two_stream_2d", "3d_fused") and frames is not None and "flow_stack" not in kwargs:
        kwargs["flow_stack"] = min(FLOW_STACK, frames)
    return builder(num_classes, frames=frames, image_size=image_size, weights=weights, **kwargs)


def classifier(model):
    """A single-output logits view of a built architecture (shares its layers).

    `TwoStreamI3D` outputs `{"logits", "probabilities"}`; the other
    architectures output logits already and are returned as they are.

    Example:

    >>> model = build_architecture("two_stream_i3d", 10, frames=8, image_size=32)
    >>> classifier(model).output.shape
    (None, 10)
    """
    if isinstance(model.output, dict):
        return keras.Model(model.input, model.output["logits"], name=model.name)
    return model
