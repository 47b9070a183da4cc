"""Tests for i3d_keras.data.preprocessing (graph-friendly clip ops)."""

import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.data import flow as flow_lib
from i3d_keras.data import preprocessing as pp


def _clip(t=4, h=6, w=8, c=3):
    return tf.reshape(tf.range(t * h * w * c) % 256, [t, h, w, c])


@pytest.mark.parametrize("hw,expected", [((48, 64), (32, 43)), ((64, 48), (43, 32)),
                                         ((32, 32), (32, 32)), ((256, 340), (32, 42))])  # 42.5 rounds to even
def test_resize_short_side_shapes_and_dtype(hw, expected):
    frames = tf.zeros([2, *hw, 3], tf.uint8)
    out = pp.resize_short_side(frames, 32)
    assert tuple(out.shape) == (2, *expected, 3)
    assert out.dtype == tf.uint8


def test_resize_short_side_dynamic_shapes_in_graph():
    fn = tf.function(lambda x: pp.resize_short_side(x, 16),
                     input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    assert tuple(fn(tf.fill([3, 20, 40, 3], tf.constant(200, tf.uint8))).shape) == (3, 16, 32, 3)
    out = fn(tf.fill([1, 40, 20, 3], tf.constant(200, tf.uint8)))
    assert tuple(out.shape) == (1, 32, 16, 3)
    assert int(tf.reduce_min(out)) == 200 and int(tf.reduce_max(out)) == 200  # bilinear of const


def test_center_crop_takes_the_middle():
    frames = _clip(2, 6, 8)
    out = pp.center_crop(frames, 4)
    np.testing.assert_array_equal(out.numpy(), frames.numpy()[:, 1:5, 2:6])
    out = pp.center_crop(frames, (2, 6))
    np.testing.assert_array_equal(out.numpy(), frames.numpy()[:, 2:4, 1:7])


def test_center_crop_too_large_raises():
    with pytest.raises(tf.errors.InvalidArgumentError, match="crop must fit"):
        pp.center_crop(tf.zeros([2, 10, 12, 3]), 224)


def test_random_crop_is_one_window_for_all_frames_and_seedable():
    frames = tf.tile(tf.reshape(tf.range(10 * 12), [1, 10, 12, 1]), [5, 1, 1, 3])
    a = pp.random_crop(frames, 4, seed=3).numpy()
    b = pp.random_crop(frames, 4, seed=3).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 4, 4, 3)
    for t in range(5):  # same window in every frame
        np.testing.assert_array_equal(a[t], a[0])
    windows = {int(pp.random_crop(frames, 4, seed=s)[0, 0, 0, 0]) for s in range(30)}
    assert len(windows) > 5
    unseeded = pp.random_crop(frames, 4)
    assert tuple(unseeded.shape) == (5, 4, 4, 3)


def test_scale_rgb_range():
    out = pp.scale_rgb(tf.constant([0, 255, 128], tf.uint8)).numpy()
    np.testing.assert_allclose(out, [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)
    assert out.dtype == np.float32


def test_flip_left_right_negates_flow_x_only():
    flow = tf.random.stateless_uniform([2, 3, 4, 2], seed=[1, 2], minval=-1, maxval=1)
    flipped = pp.flip_left_right(flow, is_flow=True).numpy()
    np.testing.assert_allclose(flipped[..., 0], -flow.numpy()[:, :, ::-1, 0])
    np.testing.assert_allclose(flipped[..., 1], flow.numpy()[:, :, ::-1, 1])
    np.testing.assert_allclose(pp.flip_left_right(flipped, is_flow=True).numpy(), flow.numpy())
    rgb = _clip()
    np.testing.assert_array_equal(pp.flip_left_right(rgb).numpy(), rgb.numpy()[:, :, ::-1])
    with pytest.raises(ValueError, match="dequantise"):
        pp.flip_left_right(tf.zeros([1, 2, 2, 2], tf.uint8), is_flow=True)


def test_sample_frame_indices_modes():
    idx = pp.sample_frame_indices(100, 16, "random", seed=5).numpy()
    assert idx.shape == (1, 16) and 0 <= idx[0, 0] <= 84
    np.testing.assert_array_equal(np.diff(idx[0]), 1)
    np.testing.assert_array_equal(pp.sample_frame_indices(100, 16, "center").numpy()[0],
                                  np.arange(42, 58))
    uni = pp.sample_frame_indices(100, 10, "uniform", num_clips=4).numpy()
    np.testing.assert_array_equal(uni[:, 0], [0, 30, 60, 90])
    assert uni.shape == (4, 10)
    np.testing.assert_array_equal(pp.sample_frame_indices(7, 3, "all").numpy()[0], np.arange(7))
    with pytest.raises(ValueError, match="mode"):
        pp.sample_frame_indices(10, 3, "middle")


def test_sample_frames_loops_short_videos():
    frames = tf.reshape(tf.range(5), [5, 1, 1, 1])
    for mode in ("random", "center"):
        out = pp.sample_frames(frames, 8, mode, seed=1).numpy().ravel()
        np.testing.assert_array_equal(out, [0, 1, 2, 3, 4, 0, 1, 2])
    out = pp.sample_frames(frames, 8, "all").numpy().ravel()
    np.testing.assert_array_equal(out, [0, 1, 2, 3, 4, 0, 1, 2])
    out = pp.sample_frames(frames, 3, "uniform", num_clips=2).numpy()
    assert out.shape == (2, 3, 1, 1, 1)
    np.testing.assert_array_equal(out[:, :, 0, 0, 0], [[0, 1, 2], [2, 3, 4]])


def test_random_sampling_covers_all_starts():
    starts = {int(pp.sample_frame_indices(12, 8, "random", seed=s)[0, 0]) for s in range(60)}
    assert starts == set(range(5))


def test_flow_quantisation_error_bound():
    rng = np.random.default_rng(0)
    flow = rng.uniform(-1, 1, (4, 16, 16, 2)).astype(np.float32)
    codes = pp.quantize_flow(flow)
    assert codes.dtype == tf.uint8
    back = pp.dequantize_flow(codes).numpy()
    err = np.abs(back - flow).max()
    assert err <= pp.FLOW_QUANT_MAX_ERROR + 1e-6
    assert err > 0.5 * pp.FLOW_QUANT_MAX_ERROR  # the bound is tight
    assert pp.FLOW_QUANT_MAX_ERROR_PIXELS == pytest.approx(20 * 0.5 / 127)
    # Zero motion is exact; values beyond [-1, 1] saturate.
    np.testing.assert_array_equal(pp.dequantize_flow(pp.quantize_flow([0.0, 3.0, -3.0])),
                                  [0.0, 1.0, -1.0])
    # The numpy twins (used when writing records) agree with the graph ops.
    np.testing.assert_array_equal(flow_lib.quantize_flow_np(flow), codes.numpy())
    np.testing.assert_array_equal(flow_lib.dequantize_flow_np(codes.numpy()), back)
