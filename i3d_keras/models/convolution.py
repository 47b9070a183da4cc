"""3D convolution computed with 2D convolutions, for speed on CPUs.

TensorFlow's `Conv3D` kernels are slow on CPUs, and their backward passes more
so (measured on the project's 2-core AMD EPYC, TF 2.21 with oneDNN: forward at
40-50% of the machine's matmul rate for I3D's first layer, the input gradient
of a 3x3x3 convolution at about half of its forward rate). The same
convolution, written as

* a concatenation of the `kt` time-shifted copies of the input along channels
  (`[batch, time, height, width, kt * c_in]`), then
* one 2D convolution with the `kh x kw` kernel on `[batch * time, height,
  width, kt * c_in]`,

runs on TF's 2D kernels, which are much faster there. A `1 x 1 x 1`
convolution is a matrix multiply. The input gradient of a stride-1 "SAME"
convolution with an odd kernel is itself a stride-1 "SAME" convolution (of the
output gradient with the kernel flipped in space and time and its channel axes
swapped), so it is computed with forward 2D convolutions instead of
TensorFlow's `Conv2DBackpropInput`. The kernel gradient of a spatially strided
convolution (I3D's stem) is a dilated forward convolution too, instead of the
strided `Conv2DBackpropFilter`. With oneDNN (on by default with this package,
see `onednn_enabled`), the gradients differ: oneDNN's 3D input-gradient and
strided kernel-gradient kernels are fast, and the kernel gradients of the
stride-1 layers are `kh * kw` matrix products (`_conv2d_with_onednn_gradients`).

oneDNN's 3D backward kernels are defective on CPUs with AVX-512 (crashes,
NaN or wrong values for temporally strided convolutions on short clips, such
as I3D's stem on 5 or 7 frames; see `onednn_backward_defect`): there, and only
there, the gradients come from TensorFlow's 2D kernels instead.

The result is the same convolution up to float rounding (summation order):
`tests/models/test_convolution.py` checks outputs and gradients against the float64
convolution (TensorFlow's Eigen kernels) within 1e-5 relative to the output's
scale. Every op is a LiteRT builtin (`PAD`, `SLICE`/`STRIDED_SLICE`,
`CONCATENATION`, `RESHAPE`, `CONV_2D`, `FULLY_CONNECTED`).

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(the inflated 3D convolutions); the speed-ups are measured in
docs/design/conv3d-as-2d.md (`python tools/benchmark.py --compare_with conv3d`).
"""

import functools
import os

import tensorflow as tf

from i3d_keras.runtime import hardware

IMPLEMENTATIONS = ("auto", "conv3d", "conv2d")


def resolve_implementation(implementation):
    """`"auto"` -> `"conv3d"` (cuDNN) when a GPU is visible, else `"conv2d"`."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}. "
            f"Received: implementation={implementation!r}"
        )
    if implementation != "auto":
        return implementation
    return "conv3d" if tf.config.list_logical_devices("GPU") else "conv2d"


def _same_padding(length, size, stride):
    """TensorFlow "SAME" padding along one axis: `(before, after, output_length)`.

    `length` is a Python int or a scalar tensor; the results follow.
    """
    if isinstance(length, int):
        out = -(-length // stride)
        total = max((out - 1) * stride + size - length, 0)
        return total // 2, total - total // 2, out
    out = (length + stride - 1) // stride
    total = tf.maximum((out - 1) * stride + size - length, 0)
    return total // 2, total - total // 2, out


def _padding_and_length(length, size, stride, padding):
    if padding == "same":
        return _same_padding(length, size, stride)
    return 0, 0, (length - size) // stride + 1


def dimension(x, axis):
    """`x.shape[axis]` where static, else the run-time size (a scalar tensor)."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


def _time_taps(x, size, stride, padding):
    """The `size` time-shifted copies of `x`, concatenated along channels.

    Args:
        x: `[batch, time, height, width, channels]`.
        size, stride: the kernel's temporal size and stride.
        padding: `"same"` or `"valid"`.

    Returns:
        `([batch, out_time, height, width, size * channels], out_time)`, where
        channel `k * channels + c` holds input channel `c` at time
        `t * stride + k - pad_before` (zeros outside the clip).
    """
    before, after, out_time = _padding_and_length(dimension(x, 1), size, stride, padding)
    if size == 1 and stride == 1:
        return x, out_time
    dims = [dimension(x, axis) for axis in (2, 3, 4)]
    if stride > 1:
        # Phases: frame `t * stride + k` is row `t + k // stride`, phase
        # `k % stride` of a [rows, stride] view, so every tap is one slice
        # (a strided slice + copy measured 25% slower for I3D's stem).
        rows = out_time + (size - 1) // stride
        if isinstance(rows, int) and isinstance(dimension(x, 1), int):
            rows = max(rows, -(-(before + dimension(x, 1)) // stride))
        else:
            rows = tf.maximum(rows, (before + dimension(x, 1) + stride - 1) // stride)
        after = rows * stride - before - dimension(x, 1)
        x = tf.pad(x, [[0, 0], [before, after], [0, 0], [0, 0], [0, 0]])
        x = tf.reshape(x, _shape(-1, rows, stride, *dims))
        taps = [tf.reshape(tf.slice(x, [0, k // stride, k % stride, 0, 0, 0],
                                    [-1, out_time, 1, -1, -1, -1]), _shape(-1, out_time, *dims))
                for k in range(size)]
    else:
        x = tf.pad(x, [[0, 0], [before, after], [0, 0], [0, 0], [0, 0]])
        # tf.slice (gradient: a pad) rather than a strided slice (its gradient,
        # StridedSliceGrad, was 5% of a training step).
        taps = [tf.slice(x, [0, k, 0, 0, 0], [-1, out_time, -1, -1, -1]) for k in range(size)]
    return (taps[0] if size == 1 else tf.concat(taps, axis=-1)), out_time


def _shape(*dims):
    """A reshape target: a list when every dim is a Python int, else a tensor."""
    if all(isinstance(d, int) for d in dims):
        return list(dims)
    return tf.stack(dims)


def _flatten_time(x):
    """`[batch, time, h, w, c]` -> `[batch * time, h, w, c]`."""
    return tf.reshape(x, _shape(-1, *[dimension(x, axis) for axis in (2, 3, 4)]))


def _unflatten_time(y, out_time):
    """`[batch * time, h, w, c]` -> `[batch, time, h, w, c]`."""
    return tf.reshape(y, _shape(-1, out_time, *[dimension(y, axis) for axis in (1, 2, 3)]))


def _conv2d_formulation(x, kernel, strides, padding):
    """Autodiff-friendly 2D formulation; see the module docstring."""
    kt, kh, kw, c_in, c_out = kernel.shape
    st, sh, sw = strides
    if (kt, kh, kw) == (1, 1, 1):
        # A pointwise convolution: strided subsampling, then a matmul.
        if (st, sh, sw) != (1, 1, 1):
            x = x[:, ::st, ::sh, ::sw]
        y = tf.matmul(tf.reshape(x, [-1, c_in]), tf.reshape(kernel, [c_in, c_out]))
        return tf.reshape(y, _shape(-1, *[dimension(x, axis) for axis in (1, 2, 3)], c_out))
    conv2d = _plain_conv2d if (sh, sw) == (1, 1) else _strided_conv2d
    return _taps_conv2d(x, kernel, strides, padding, conv2d)[0]


def _taps_conv2d(x, kernel, strides, padding, conv2d):
    """The 2D formulation's forward pass: `(y, flat_taps, kernel2d)`.

    `conv2d(flat_taps, kernel2d, (sh, sw), padding)` is the 2D convolution
    (`_plain_conv2d`, or `_strided_conv2d` for its kernel gradient).
    """
    taps, out_time = _time_taps(x, kernel.shape[0], strides[0], padding)
    flat_taps, kernel2d = _flatten_time(taps), _kernel2d(kernel)
    y = conv2d(flat_taps, kernel2d, tuple(strides[1:]), padding)
    return _unflatten_time(y, out_time), flat_taps, kernel2d


def _plain_conv2d(x, kernel, strides, padding):
    return tf.nn.conv2d(x, kernel, [1, *strides, 1], padding.upper())


def _strided_conv2d(x, kernel, strides, padding):
    """`tf.nn.conv2d` with spatial strides, its kernel gradient as a forward conv.

    The kernel gradient `dk[i, j, c, f] = sum_{n, y, x} xpad[n, s*y + i,
    s*x + j, c] * dy[n, y, x, f]` is a stride-1 convolution of the padded
    input, batch and channel axes swapped (`[c, h, w, n]`), with the output
    gradient as its kernel (`[out_h, out_w, n, f]`), dilated by the stride.
    For I3D's stem (7x7, stride 2, 21 channels) this ran in 470 ms against
    616 ms for `Conv2DBackpropFilter` (medians of 11, B2x16 clips, the
    project's 2-core CPU), a tenth of an I3D training step before.
    """
    (sh, sw), (kh, kw) = strides, kernel.shape[:2]

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, [1, sh, sw, 1], padding.upper())

        def grad(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=dy,
                strides=[1, sh, sw, 1], padding=padding.upper())
            pads = [[0, 0]]
            for axis, k, s in ((1, kh, sh), (2, kw, sw)):
                before, after, _ = _padding_and_length(dimension(x, axis), k, s, padding)
                pads.append([before, after])
            xt = tf.transpose(tf.pad(x, pads + [[0, 0]]), [3, 1, 2, 0])
            dk = tf.nn.conv2d(xt, tf.transpose(dy, [1, 2, 0, 3]), 1, "VALID",
                              dilations=[1, sh, sw, 1])
            # "valid" may leave rows past the kernel (input rows no output reads).
            return dx, tf.transpose(dk[:, :kh, :kw], [1, 2, 0, 3])

        return y, grad

    return conv(x, kernel)


def _kernel2d(kernel):
    """`[kt, kh, kw, c_in, c_out]` -> `[kh, kw, kt * c_in, c_out]`, in the taps'
    channel order (time-major)."""
    kt, kh, kw, c_in, c_out = kernel.shape
    return tf.reshape(tf.transpose(kernel, [1, 2, 0, 3, 4]), [kh, kw, kt * c_in, c_out])


def _fast_input_gradient_applies(kernel_size, strides, padding):
    return (padding == "same" and tuple(strides) == (1, 1, 1)
            and all(k % 2 == 1 for k in kernel_size) and tuple(kernel_size) != (1, 1, 1))


def _same_input_gradient(dy, kernel):
    """Input gradient of a stride-1 "SAME" convolution with an odd kernel.

    `dx[t] = sum_k z_k[t - k + pad]`, where `z_k` is the 2D input gradient of
    time tap `k`: one forward 2D convolution of `dy` (`[b * t, h, w, c_out]`)
    with the spatially flipped, channel-swapped kernel gives all `kt` of them
    (`kt * c_in` channels), then `kt` shifted slices are summed. On the
    project's CPU this ran 1.0-1.8x faster than TensorFlow's
    `Conv2DBackpropInput` for I3D's 3x3x3 layers.
    """
    kt, kh, kw, c_in, c_out = kernel.shape
    pad = (kt - 1) // 2
    flipped = tf.reverse(kernel, axis=[1, 2])
    kernel2d = tf.reshape(tf.transpose(flipped, [1, 2, 4, 0, 3]), [kh, kw, c_out, kt * c_in])
    z = tf.nn.conv2d(_flatten_time(dy), kernel2d, 1, "SAME")
    time = dimension(dy, 1)
    dims = [dimension(dy, axis) for axis in (2, 3)]
    z = tf.reshape(z, _shape(-1, time, *dims, kt, c_in))
    if kt == 1:
        return tf.reshape(z, _shape(-1, time, *dims, c_in))
    z = tf.pad(z, [[0, 0], [kt - 1 - pad, pad], [0, 0], [0, 0], [0, 0], [0, 0]])
    dx = tf.add_n([tf.slice(z, [0, kt - 1 - k, 0, 0, k, 0], [-1, time, -1, -1, 1, -1])
                   for k in range(kt)])
    return tf.reshape(dx, _shape(-1, time, *dims, c_in))


@functools.lru_cache(maxsize=None)
def onednn_enabled():
    """Whether TensorFlow runs its oneDNN CPU kernels in this process.

    TensorFlow decides once, when it loads: `TF_ENABLE_ONEDNN_OPTS=1` or `0`,
    else its default for the CPU (on only for CPUs with AVX-512 neural-network
    extensions or AMX; off on the project's AVX2 machine). `import i3d_keras`
    before TensorFlow turns it on (see `i3d_keras/__init__.py`).
    """
    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # pragma: no cover (another TF build)
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower() in ("1", "true")


# "auto" (default): route around oneDNN's defect where its AVX-512 kernels
# run; "on": on any CPU (e.g. to test that path, or on a CPU with a defect
# not yet known); "off": never.
WORKAROUND_ENV = "I3D_KERAS_ONEDNN_WORKAROUND"


def onednn_defect_possible():
    """Whether this process runs oneDNN's AVX-512 kernels (the defective ones).

    True when oneDNN is on (`onednn_enabled`) and the CPU has AVX-512 (read
    from the OS at run time, `i3d_keras.runtime.hardware.cpu_info`). On AVX2-only CPUs
    oneDNN runs other kernels, which a sweep found correct (see
    `onednn_backward_defect`). The environment variable
    `I3D_KERAS_ONEDNN_WORKAROUND` overrides it: `on` (always) or `off`
    (never); `auto` or unset decides by the CPU.
    """
    setting = os.environ.get(WORKAROUND_ENV, "auto").strip().lower() or "auto"
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"{WORKAROUND_ENV} must be 'auto', 'on' or 'off'. "
                         f"Received: {WORKAROUND_ENV}={setting!r}")
    if setting != "auto":
        return setting == "on"
    return onednn_enabled() and hardware.cpu_info().avx512


def onednn_backward_defect(time, kernel_size, strides):
    """Whether oneDNN's 3D gradient kernels may fail for this convolution here.

    TensorFlow 2.21's oneDNN (3.7) computes wrong gradients for some
    temporally strided 3D convolutions of short clips on AVX-512 CPUs:
    measured on a 2-core Xeon with AVX-512 and AMX, TensorFlow's own Conv3D
    gradient (`Conv3DBackpropInputV2` / `Conv3DBackpropFilterV2`, float32),
    7x7x7 kernel, stride 2, "SAME": 7 frames gave NaN or errors up to 1e32 at
    every frame size tried (13-32 pixels), 5 frames killed the process (heap
    corruption); 4, 8, 9 and 16 frames were right (a sweep of 300 shapes
    against float64), 3 and 12 finite; 3x3x3 kernels with stride 2 and all
    stride-1 kernels were right. The same shapes are right with oneDNN's AVX2
    kernels (AMD EPYC: 1-17 frames, kernels 3/5/7, strides 1/2, `python
    tools/doctor.py --sweep`) and with TensorFlow's Eigen kernels.

    The region routed away from those kernels contains every failure seen and
    the untested lengths around them: a temporal stride above 1 and a clip no
    longer than the temporal kernel (no output's window then lies inside the
    clip; for I3D's stem, clips of at most 7 frames). Longer clips, the usual
    case, keep the fast kernels.

    Args:
        time: the input's frame count: a Python int, or a scalar tensor where
            it is unknown when the graph is traced.
        kernel_size: `(kt, kh, kw)`.
        strides: `(st, sh, sw)`.

    Returns:
        `False` where the fast kernels are safe (always on CPUs without
        AVX-512 or without oneDNN), `True` where they are not, or a boolean
        scalar tensor, decided at run time, for an unknown frame count.
    """
    if strides[0] == 1 or not onednn_defect_possible():
        return False
    return time <= kernel_size[0]


def _gradients_2d(x, kernel, dy, strides, padding):
    """The 2D formulation's gradients by TensorFlow's own 2D gradient kernels.

    `Conv2DBackpropInput` and `Conv2DBackpropFilter` on the time-tap tensor
    (the kernels every 2D network trains with), then the gradient of the taps'
    slices: slower than the 3D kernels for I3D's stem, correct where those
    are not (`onednn_backward_defect`).
    """
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = _taps_conv2d(x, kernel, strides, padding, _plain_conv2d)[0]
    return tuple(tape.gradient(y, [x, kernel], output_gradients=dy))


def _select_gradients(defect, safe, fast):
    """`safe()` where `defect` (a Python or tensor boolean), else `fast()`."""
    if isinstance(defect, bool):
        return safe() if defect else fast()
    return tf.cond(defect, safe, fast)


def _native_conv3d_guarded(x, kernel, strides, padding, defect):
    """`tf.nn.conv3d` whose gradients avoid oneDNN's defect (`defect` not False)."""
    strides3d, pad = [1, *strides, 1], padding.upper()

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            def native():
                return (tf.raw_ops.Conv3DBackpropInputV2(
                            input_sizes=tf.shape(x), filter=kernel, out_backprop=dy,
                            strides=strides3d, padding=pad),
                        tf.raw_ops.Conv3DBackpropFilterV2(
                            input=x, filter_sizes=kernel.shape, out_backprop=dy,
                            strides=strides3d, padding=pad))
            return _select_gradients(
                defect, lambda: _gradients_2d(x, kernel, dy, strides, padding), native)

        return tf.nn.conv3d(x, kernel, strides3d, pad), grad

    return conv(x, kernel)


def _kernel_gradient_by_matmuls(x, dy, kernel_shape):
    """Kernel gradient of a stride-1 "SAME" 2D convolution with an odd kernel.

    Tap `(i, j)` of the gradient is `x` shifted by `(i, j)` (a slice of the
    padded input), `[n * h * w, c]`, transposed times `dy`, `[n * h * w, f]`:
    `kh * kw` matrix products. Used with oneDNN, whose `Conv2DBackpropFilter`
    ran at 50-85 GFLOP/s on I3D's 3x3 layers against 110-150 for its forward
    convolution and these products (project's CPU, batch 2 x 16 frames;
    `Conv3d_2c_3x3`: 257 ms against 643). TensorFlow's Eigen kernel is faster
    than the products there (318 ms against 481), so it is kept without oneDNN.

    Args:
        x: the convolution's input, `[n, h, w, c]`.
        dy: the output gradient, `[n, h, w, f]`.
        kernel_shape: `(kh, kw, c, f)`, Python ints.

    Returns:
        `[kh, kw, c, f]`.
    """
    kh, kw, c, f = kernel_shape
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    size = _shape(-1, dimension(x, 1), dimension(x, 2), -1)
    padded = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
    dy = tf.reshape(dy, [-1, f])
    taps = [tf.matmul(tf.reshape(tf.slice(padded, [0, i, j, 0], size), [-1, c]), dy,
                      transpose_a=True)
            for i in range(kh) for j in range(kw)]
    return tf.reshape(tf.stack(taps), [kh, kw, c, f])


def _kernel3d(kernel2d, kernel_shape):
    """Inverse of `_kernel2d`: `[kh, kw, kt * c_in, c_out]` -> `[kt, kh, kw, c_in, c_out]`."""
    kt, kh, kw, c_in, c_out = kernel_shape
    return tf.transpose(tf.reshape(kernel2d, [kh, kw, kt, c_in, c_out]), [2, 0, 1, 3, 4])


def _conv2d_with_onednn_gradients(x, kernel, strides, padding, defect=False):
    """The 2D formulation's forward pass, with the gradients fastest under oneDNN.

    oneDNN's own 3D gradient kernels beat the 2D formulation's there: the
    input gradient (`Conv3DBackpropInputV2`: 203 ms against 223 for
    `Conv3d_2c_3x3`, 10-40% less on the smaller 3x3x3 layers) and the stem's
    kernel gradient (305 ms against 473); the kernel gradients of stride-1
    "SAME" layers are `_kernel_gradient_by_matmuls` of the forward pass's time
    taps. The training step ran in 3.09 s against 3.40 s with the 2D
    formulation's gradients (interleaved A/B, medians of 8, project's CPU).
    The forward pass, and so inference and exported graphs, is unchanged.
    Where `defect` (`onednn_backward_defect`: a Python or tensor boolean), the
    gradients come from `_gradients_2d` instead.
    """
    strides3d, pad = [1, *strides, 1], padding.upper()
    kernel_by_matmuls = _fast_input_gradient_applies(kernel.shape[:3], strides, padding)

    @tf.custom_gradient
    def conv(x, kernel):
        y, flat_taps, kernel2d = _taps_conv2d(x, kernel, strides, padding, _plain_conv2d)

        def fast_gradients(dy):
            # Pruned from the graph where nothing needs it (the stem's input).
            dx = tf.raw_ops.Conv3DBackpropInputV2(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=dy, strides=strides3d,
                padding=pad)
            if kernel_by_matmuls:
                dkernel = _kernel3d(_kernel_gradient_by_matmuls(
                    flat_taps, _flatten_time(dy), kernel2d.shape), kernel.shape)
            else:
                dkernel = tf.raw_ops.Conv3DBackpropFilterV2(
                    input=x, filter_sizes=kernel.shape, out_backprop=dy, strides=strides3d,
                    padding=pad)
            return dx, dkernel

        def grad(dy):
            return _select_gradients(
                defect, lambda: _gradients_2d(x, kernel, dy, strides, padding),
                lambda: fast_gradients(dy))

        return y, grad

    return conv(x, kernel)


@tf.custom_gradient
def _same_conv_with_fast_input_gradient(x, kernel):
    """Stride-1 "SAME" convolution, odd kernel; the input gradient runs forward."""
    y, flat_taps, kernel2d = _taps_conv2d(x, kernel, (1, 1, 1), "same", _plain_conv2d)

    def grad(dy):
        dkernel2d = tf.raw_ops.Conv2DBackpropFilter(
            input=flat_taps, filter_sizes=tf.shape(kernel2d), out_backprop=_flatten_time(dy),
            strides=[1, 1, 1, 1], padding="SAME")
        return _same_input_gradient(dy, kernel), _kernel3d(dkernel2d, kernel.shape)

    return y, grad


def conv3d(x, kernel, strides=(1, 1, 1), padding="same", implementation="auto"):
    """A 3D convolution (cross-correlation, TensorFlow padding semantics).

    Args:
        x: `[batch, time, height, width, c_in]`; any dimension but the
            channels may be unknown.
        kernel: `[kt, kh, kw, c_in, c_out]` with a static shape.
        strides: `(time, height, width)` strides.
        padding: `"same"` or `"valid"`.
        implementation: `"conv3d"` (`tf.nn.conv3d`), `"conv2d"` (the 2D
            formulation of this module) or `"auto"` (`"conv3d"` when a GPU is
            visible, else `"conv2d"`).

    Returns:
        `[batch, out_time, out_height, out_width, c_out]`, as `tf.nn.conv3d`.

    Example:

    >>> x = tf.random.normal([2, 8, 32, 32, 3])
    >>> w = tf.random.normal([3, 3, 3, 3, 16])
    >>> conv3d(x, w, implementation="conv2d").shape
    TensorShape([2, 8, 32, 32, 16])
    """
    padding = padding.lower()
    if padding not in ("same", "valid"):
        raise ValueError(f"`padding` must be 'same' or 'valid'. Received: padding={padding!r}")
    strides = tuple(int(s) for s in strides)
    x = tf.convert_to_tensor(x)
    kernel = tf.convert_to_tensor(kernel)
    pointwise = tuple(kernel.shape[:3]) == (1, 1, 1)
    # oneDNN's 3D gradient kernels serve both implementations on the CPU
    # (not the 2D formulation's pointwise matmuls; not a GPU's cuDNN).
    defect = (not pointwise and None not in kernel.shape[:3]
              and onednn_backward_defect(dimension(x, 1), kernel.shape[:3], strides))
    if resolve_implementation(implementation) == "conv3d":
        if defect is False or tf.config.list_logical_devices("GPU"):
            return tf.nn.conv3d(x, kernel, [1, *strides, 1], padding.upper())
        return _native_conv3d_guarded(x, tf.cast(kernel, x.dtype), strides, padding, defect)
    if None in kernel.shape:
        raise ValueError(f"The 2D formulation needs a static kernel shape. "
                         f"Received: kernel.shape={kernel.shape}")
    kernel = tf.cast(kernel, x.dtype)
    if onednn_enabled() and not pointwise:
        y = _conv2d_with_onednn_gradients(x, kernel, strides, padding, defect)
    elif _fast_input_gradient_applies(kernel.shape[:3], strides, padding):
        y = _same_conv_with_fast_input_gradient(x, kernel)
    else:
        y = _conv2d_formulation(x, kernel, strides, padding)
    y.set_shape(output_shape(x.shape, kernel.shape, strides, padding))
    return y


def output_shape(input_shape, kernel_shape, strides, padding):
    """Static output shape of `conv3d` (None where unknown)."""
    dims = []
    for n, k, s in zip(input_shape[1:4], kernel_shape[:3], strides):
        if n is None:
            dims.append(None)
        else:
            dims.append(_padding_and_length(int(n), int(k), int(s), padding)[2])
    return tf.TensorShape([input_shape[0], *dims, kernel_shape[-1]])


__all__ = ["IMPLEMENTATIONS", "WORKAROUND_ENV", "conv3d", "onednn_backward_defect",
           "onednn_defect_possible", "onednn_enabled", "resolve_implementation"]
