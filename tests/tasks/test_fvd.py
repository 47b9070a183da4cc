"""Tests of i3d_keras.tasks.fvd: FVD / KVD, their preprocessing, features and weights.

The distances are checked against closed forms and independent implementations
(scipy's `sqrtm`, a double loop for the MMD); the preprocessing against the TF1
bilinear formula written in NumPy on a real shared video; the TF-Hub module
loading against the model a synthetic module folder was written from. I3D runs
on tiny clips (4 frames of 32x32 after the resize) with random weights.
"""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from i3d_keras.data import video
from i3d_keras.tasks import fvd
from i3d_keras.weights import deepmind
from _checkpoints import write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "fvd.py"
SIZE, FRAMES = 32, 4


def _random_i3d():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fvd.load_fvd_model("random")
    # Random I3D logits hardly vary between clips; a larger classifier spreads
    # them so that distances between sets are far from rounding.
    logits = model.get_layer("Logits_Conv3d_0c_1x1_conv_3d")
    logits.kernel.assign(logits.kernel * 300.0)
    return model


@pytest.fixture(scope="module")
def i3d():
    return _random_i3d()


@pytest.fixture
def clips(rng):
    return rng.integers(0, 256, (6, FRAMES, 24, 40, 3), dtype=np.uint8)


def _gaussian_features(rng, n, mean, cov):
    return rng.multivariate_normal(mean, cov, size=n)


# ----------------------------------------------------------------------------
# Fréchet distance
# ----------------------------------------------------------------------------

def test_frechet_distance_closed_form_commuting_gaussians(rng):
    d = 6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    sigma1, sigma2 = (q * a) @ q.T, (q * b) @ q.T
    # Same eigenvectors: d^2 = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fvd.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-10)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert fvd.frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1)


def test_frechet_distance_general_gaussians_against_sqrtm(rng):
    d = 8
    x, y = rng.normal(size=(d, 3 * d)), rng.normal(size=(d, 3 * d))
    sigma1, sigma2 = x @ x.T / d, y @ y.T / d + np.diag(rng.uniform(0, 1, d))
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    assert np.abs(root.imag).max() < 1e-8
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * root.real)
    assert fvd.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n", [600, 40])  # more and fewer videos than dimensions
def test_identical_sets_give_zero_and_distance_is_symmetric(rng, n):
    d = 50
    features = rng.normal(size=(n, d)) * rng.uniform(0.5, 4, d) + 10
    context = pytest.warns(UserWarning, match="covariance is singular") if n <= d \
        else warnings.catch_warnings()
    with context:
        stats = fvd.FeatureStatistics.from_features(features)
    assert abs(fvd.frechet_distance(*stats.gaussian, *stats.gaussian)) <= 1e-6
    other = fvd.FeatureStatistics.from_features(
        rng.normal(size=(700, d)) * 2 + 9.5)
    forward = fvd.frechet_distance(*stats.gaussian, *other.gaussian)
    backward = fvd.frechet_distance(*other.gaussian, *stats.gaussian)
    assert forward > 1.0
    assert forward == pytest.approx(backward, rel=1e-9)


def test_frechet_distance_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        fvd.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"shape \(3, 3\).*Received: shape \(2, 2\)"):
        fvd.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="non-finite values in `sigma2`"):
        fvd.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.nan))


# ----------------------------------------------------------------------------
# Kernel distance
# ----------------------------------------------------------------------------

def _mmd2_by_loops(x, y):
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kernel_distance_against_loops_and_symmetry(rng):
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(9, 5)) + 0.7
    expected = _mmd2_by_loops(x, y)
    assert fvd.kernel_distance(x, y) == pytest.approx(expected, rel=1e-10)
    assert fvd.kernel_distance(y, x) == pytest.approx(expected, rel=1e-10)
    assert expected > 0.1


def test_kernel_distance_same_distribution_near_zero_and_subsets(rng):
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    shifted = y + 1.0
    # Same distribution: about 0 (the estimate's spread here is ~0.01).
    assert abs(fvd.kernel_distance(x, y)) < 0.05
    full = fvd.kernel_distance(x, shifted)
    assert full > 5.0
    subsets = fvd.kernel_distance(x, shifted, subset_size=100, num_subsets=20)
    assert subsets == pytest.approx(full, rel=0.2)
    assert subsets == fvd.kernel_distance(x, shifted, subset_size=100, num_subsets=20)
    with pytest.raises(ValueError, match="subset_size"):
        fvd.kernel_distance(x, y, subset_size=401)
    with pytest.raises(ValueError, match="same dimension"):
        fvd.kernel_distance(x, y[:, :4])
    with pytest.raises(ValueError, match="at least 2 videos"):
        fvd.kernel_distance(x[:1], y)


# ----------------------------------------------------------------------------
# Statistics files
# ----------------------------------------------------------------------------

def test_statistics_round_trip_and_bad_files(rng, tmp_path):
    features = rng.normal(size=(30, 4))
    stats = fvd.FeatureStatistics.from_features(features, {"clip_length": 16})
    np.testing.assert_allclose(stats.covariance, np.cov(features.T))
    path = stats.save(tmp_path / "stats" / "real.npz")
    loaded = fvd.FeatureStatistics.load(path)
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.covariance, stats.covariance)
    np.testing.assert_array_equal(loaded.features, features.astype(np.float32))
    assert loaded.count == 30 and loaded.metadata == {"clip_length": 16}
    with pytest.raises(FileNotFoundError, match="no such file"):
        fvd.FeatureStatistics.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", videos=np.zeros(3))
    with pytest.raises(ValueError, match="'mean', 'covariance' and 'count'.*'videos'"):
        fvd.FeatureStatistics.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="readable .npz"):
        fvd.FeatureStatistics.load(tmp_path / "junk.npz")


# ----------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------

def _tf1_bilinear_numpy(frames, out_h, out_w):
    """TF1 resize_bilinear, align_corners=False, no half-pixel centres: output
    pixel i samples the input at i * in / out (float64 here)."""
    frames = frames.astype(np.float64)
    in_h, in_w = frames.shape[1:3]

    def axis(out, size):
        # The source coordinate in float32, as TensorFlow computes the scale
        # (in exact arithmetic the weights differ by up to ~3e-6).
        src = np.arange(out, dtype=np.float32) * (np.float32(size) / np.float32(out))
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, size - 1)
        return low, high, src.astype(np.float64) - low

    y0, y1, wy = axis(out_h, in_h)
    x0, x1, wx = axis(out_w, in_w)
    top = frames[:, y0][:, :, x0] * (1 - wx)[:, None] + frames[:, y0][:, :, x1] * wx[:, None]
    bottom = frames[:, y1][:, :, x0] * (1 - wx)[:, None] + frames[:, y1][:, :, x1] * wx[:, None]
    return top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]


def test_preprocessing_equals_the_reference_formula_on_a_real_video(shared_data):
    frames = video.read_video(shared_data / "videos" / "arm_wrestling.mp4", fps=None,
                              short_side=None, max_frames=6)
    assert frames.shape == (6, 256, 340, 3)
    out = fvd.preprocess_videos(frames[np.newaxis]).numpy()
    assert out.shape == (1, 6, 224, 224, 3) and out.dtype == np.float32
    expected = 2 * _tf1_bilinear_numpy(frames, 224, 224) / 255 - 1
    np.testing.assert_allclose(out[0], expected, atol=2e-6)
    assert -1 <= out.min() and out.max() <= 1
    # The TF2 variant is tf.image.resize (half-pixel centres): a different sampling.
    tf2 = fvd.preprocess_videos(frames[np.newaxis], resize="tf2").numpy()
    reference_tf2 = 2 * tf.image.resize(frames, (224, 224)).numpy() / 255 - 1
    np.testing.assert_allclose(tf2[0], reference_tf2, atol=2e-6)
    difference = np.abs(tf2 - out).mean()
    print(f"mean |tf2 - tf1| on arm_wrestling.mp4: {difference:.4f} (in [-1, 1] units)")
    assert difference > 1e-3
    # A float video in [0, 1] with value_range=(0, 1) is the same video.
    as_unit = fvd.preprocess_videos(frames[np.newaxis] / 255.0, value_range=(0, 1)).numpy()
    np.testing.assert_allclose(as_unit, out, atol=2e-6)


def test_preprocessing_same_size_is_identity_and_small_sizes(rng):
    clip = rng.integers(0, 256, (1, 2, 224, 224, 3), dtype=np.uint8)
    out = fvd.preprocess_videos(clip).numpy()
    np.testing.assert_allclose(out, 2 * clip.astype(np.float64) / 255 - 1, atol=1e-6)
    small = rng.integers(0, 256, (2, 3, 9, 13, 3), dtype=np.uint8)
    np.testing.assert_allclose(fvd.preprocess_videos(small, image_size=(5, 7)).numpy(),
                               2 * _tf1_bilinear_numpy(small.reshape(6, 9, 13, 3), 5, 7)
                               .reshape(2, 3, 5, 7, 3) / 255 - 1, atol=2e-6)
    with pytest.raises(ValueError, match="resize"):
        fvd.preprocess_videos(small, resize="bicubic")
    with pytest.raises(ValueError, match=r"\[N, T, H, W, 3\]"):
        fvd.preprocess_videos(small[0])


# ----------------------------------------------------------------------------
# Weights: a TF-Hub module folder
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfhub_module(tmp_path_factory):
    """`(folder, model)`: a TF-Hub module folder in the layout of
    `deepmind/i3d-kinetics-400/1` (`variables/variables.*`, DeepMind's
    `RGB/inception_i3d/...` names) holding the random weights of `model`."""
    rng = np.random.default_rng(1)
    source = _random_i3d()
    for layer in source.layers:
        if layer.name.endswith("_batch_norm"):
            beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.normal(size=beta.shape).astype("float32"),
                               rng.normal(size=mean.shape).astype("float32") * 0.1,
                               rng.uniform(0.5, 2, variance.shape).astype("float32")])
    names = deepmind.deepmind_variable_names(source, "RGB/inception_i3d/")
    folder = tmp_path_factory.mktemp("tfhub") / "i3d-kinetics-400_1"
    write_checkpoint(folder / "variables" / "variables",
                     {name: layer.weights[i].numpy() for name, (layer, i) in names.items()})
    (folder / "tfhub_module.pb").write_bytes(b"\x08\x03")
    return folder, source


def test_tfhub_module_folder_loads_and_gives_the_same_logits(tfhub_module, rng, shared_data):
    folder, source = tfhub_module
    # The module's variables are DeepMind's: those of the real rgb checkpoint index.
    index = shared_data / "deepmind_i3d" / "checkpoints" / "rgb_imagenet" / "model.ckpt"
    written = dict(tf.train.list_variables(str(folder / "variables" / "variables")))
    assert sorted(written) == sorted(dict(tf.train.list_variables(str(index))))
    loaded = fvd.load_fvd_model(folder)
    clip = rng.uniform(-1, 1, (2, FRAMES, SIZE, SIZE, 3)).astype("float32")
    expected = source(clip).numpy()
    np.testing.assert_allclose(loaded(clip).numpy(), expected, rtol=1e-5, atol=1e-4)
    assert np.abs(expected).max() > 1.0
    assert deepmind.open_checkpoint(folder)[2] == str(folder / "variables" / "variables")
    assert deepmind.open_checkpoint(folder / "variables")[2] == str(
        folder / "variables" / "variables")


def test_load_fvd_model_bad_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        fvd.load_fvd_model(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        fvd.load_fvd_model(tmp_path)
    with pytest.raises(ValueError, match="precision"):
        fvd.load_fvd_model("random", precision="float64")
    with pytest.raises(ValueError, match="`weights` must be"):
        fvd.load_fvd_model(None)


# ----------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------

def test_video_features_forms_agree(i3d, clips, tmp_path):
    report = {}
    expected = fvd.video_features(clips, i3d, image_size=SIZE, batch_size=4, report=report)
    assert expected.shape == (6, 400) and expected.dtype == np.float32
    assert report["num_used"] == 6 and report["clip_length"] == FRAMES
    assert report["frame_sizes"] == {"24x40": 6} and report["precision"] == "float32"
    # The time-averaged logits of the model itself (DeepMind's Logits endpoint).
    direct = i3d(fvd.preprocess_videos(clips, image_size=SIZE)).numpy()
    np.testing.assert_allclose(expected, direct, rtol=1e-5, atol=1e-4)
    assert np.std(expected, axis=0).mean() > 1e-2
    options = dict(image_size=SIZE, batch_size=4, progress=False)
    floats = fvd.video_features(clips.astype("float32"), i3d, **options)
    np.testing.assert_allclose(floats, expected, rtol=1e-5, atol=1e-4)
    unit = fvd.video_features(clips / 127.5 - 1, i3d, value_range=(-1, 1), **options)
    np.testing.assert_allclose(unit, expected, rtol=1e-4, atol=1e-3)
    dataset = tf.data.Dataset.from_tensor_slices(clips)
    for ds in (dataset, dataset.batch(4), dataset.map(lambda v: (v, 0)).batch(5),
               dataset.filter(lambda v: True)):  # the last: unknown size
        np.testing.assert_allclose(fvd.video_features(ds, i3d, **options), expected,
                                   rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fvd.video_features(list(clips), i3d, **options), expected,
                               rtol=1e-5, atol=1e-4)
    longer = np.concatenate([clips, clips[:, :2]], axis=1)
    np.testing.assert_allclose(fvd.video_features(longer, i3d, frames=FRAMES, **options),
                               expected, rtol=1e-5, atol=1e-4)


def test_video_features_mixed_frame_sizes(i3d, clips, rng):
    other = rng.integers(0, 256, (FRAMES, 50, 30, 3), dtype=np.uint8)
    videos = [clips[0], other, clips[1]]
    report = {}
    out = fvd.video_features(videos, i3d, image_size=SIZE, batch_size=3, progress=False,
                             report=report)
    alone = fvd.video_features(other[np.newaxis], i3d, image_size=SIZE, progress=False)
    np.testing.assert_allclose(out[1], alone[0], rtol=1e-5, atol=1e-4)
    assert report["frame_sizes"] == {"24x40": 2, "50x30": 1}


def test_video_features_folder_skips_bad_videos(i3d, tmp_path, rng):
    frames = rng.integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    video.write_video(tmp_path / "a.mp4", frames)
    (tmp_path / "sub").mkdir()
    video.write_video(tmp_path / "sub" / "b.avi", frames[::-1].copy())
    video.write_video(tmp_path / "short.mp4", frames[:2])
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(500))
    report = {}
    out = fvd.video_features(tmp_path, i3d, frames=FRAMES, image_size=SIZE,
                             progress=False, report=report)
    assert out.shape == (2, 400)
    assert report["num_videos"] == 4 and report["num_used"] == 2
    assert [Path(name).name for name, _ in report["failed"]] == ["corrupt.mp4"]
    assert [Path(name).name for name, _ in report["too_short"]] == ["short.mp4"]
    assert "2 frames, shorter than the clip length 4" in report["too_short"][0][1]
    decoded = video.read_video(tmp_path / "a.mp4", fps=None, short_side=None)[:FRAMES]
    one = fvd.video_features(decoded[np.newaxis], i3d, image_size=SIZE, progress=False)
    np.testing.assert_allclose(out[0], one[0], rtol=1e-5, atol=1e-4)


def test_video_features_bad_inputs(i3d, clips, tmp_path):
    options = dict(image_size=SIZE, progress=False)
    with pytest.raises(ValueError, match=r"\[N, T, H, W, 3\]. Received: shape \(4, 24, 40, 3\)"):
        fvd.video_features(clips[0], i3d, **options)
    with pytest.raises(ValueError, match=r"value_range=\(0.0, 255.0\). Received: values in"):
        fvd.video_features(clips * 2.0, i3d, **options)
    with pytest.warns(UserWarning, match=r"value_range=\(0, 1\)"):
        fvd.video_features(clips / 255.0, i3d, **options)
    with pytest.raises(ValueError, match="clips of one length"):
        fvd.video_features([clips[0], clips[1, :3]], i3d, **options)
    with pytest.raises(ValueError, match="at least frames=8"):
        fvd.video_features(clips, i3d, frames=8, **options)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        fvd.video_features(tmp_path / "missing", i3d, **options)
    with pytest.raises(ValueError, match="Expected video files"):
        fvd.video_features(tmp_path, i3d, **options)
    with pytest.raises(ValueError, match="no usable|at least one usable"):
        (tmp_path / "x.mp4").write_bytes(b"")
        fvd.video_features(tmp_path, i3d, **options)
    with pytest.raises(ValueError, match="finite"):
        bad = clips.astype("float32")
        bad[0, 0, 0, 0, 0] = np.nan
        fvd.video_features(bad, i3d, **options)


# ----------------------------------------------------------------------------
# Keras metrics
# ----------------------------------------------------------------------------

def test_streaming_metrics_equal_one_shot(rng):
    d = 16
    real = rng.normal(size=(70, d)) * rng.uniform(0.5, 3, d) + 5
    fake = rng.normal(size=(55, d)) * 1.5 + 4.5
    fvd_metric = fvd.FrechetVideoDistance(feature_dim=d)
    kvd = fvd.KernelVideoDistance(feature_dim=d, max_videos=100)
    assert np.isnan(fvd_metric.result().numpy()) and np.isnan(kvd.result().numpy())
    cuts_real, cuts_fake = [0, 1, 9, 9, 40, 70], [0, 30, 31, 55, 55, 55]
    step = tf.function(lambda a, b: (fvd_metric.update_state(a, b), kvd.update_state(a, b)))
    for i in range(len(cuts_real) - 1):
        batch_real = real[cuts_real[i]:cuts_real[i + 1]]
        batch_fake = fake[cuts_fake[i]:cuts_fake[i + 1]]
        if i % 2:  # eager and graph updates alike
            step(tf.constant(batch_real), tf.constant(batch_fake))
        else:
            fvd_metric.update_state(batch_real, batch_fake)
            kvd.update_state(batch_real, batch_fake)
    expected_fvd = fvd.frechet_distance(real.mean(0), np.cov(real.T), fake.mean(0),
                                        np.cov(fake.T))
    assert fvd_metric.result().dtype == tf.float64
    assert float(fvd_metric.result()) == pytest.approx(expected_fvd, rel=1e-9)
    assert float(kvd.result()) == pytest.approx(fvd.kernel_distance(real, fake), rel=1e-9)
    stats = fvd_metric.statistics("real")
    np.testing.assert_allclose(stats.covariance, np.cov(real.T), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(kvd.features("generated"), fake)
    fvd_metric.reset_state()
    kvd.reset_state()
    assert np.isnan(fvd_metric.result().numpy()) and np.isnan(kvd.result().numpy())
    fvd_metric.update_state(None, fake)
    fvd_metric.set_statistics(fvd.FeatureStatistics.from_features(real), "real")
    assert float(fvd_metric.result()) == pytest.approx(expected_fvd, rel=1e-9)
    kvd.update_state(real, None)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_videos=100"):
        kvd.update_state(real, None)


def test_metric_on_videos_equals_video_features(i3d, clips, rng):
    more = rng.integers(0, 256, (5, FRAMES, 24, 40, 3), dtype=np.uint8) // 2
    fvd_metric = fvd.FrechetVideoDistance(i3d, image_size=SIZE)
    kvd = fvd.KernelVideoDistance(i3d, image_size=SIZE, max_videos=16)
    assert len(fvd_metric.variables) == 6 and len(kvd.variables) == 4  # not I3D's weights
    with pytest.warns(UserWarning, match="covariance is singular"):
        for start in (0, 3):
            fvd_metric.update_state(clips[start:start + 3], more[start:start + 3])
            kvd.update_state(clips[start:start + 3], more[start:start + 3])
        result = float(fvd_metric.result())
        real = fvd.video_features(clips, i3d, image_size=SIZE, progress=False)
        fake = fvd.video_features(more, i3d, image_size=SIZE, progress=False)
        expected = fvd.frechet_distance(
            *fvd.FeatureStatistics.from_features(real).gaussian,
            *fvd.FeatureStatistics.from_features(fake).gaussian)
    assert result > 1.0
    assert result == pytest.approx(expected, rel=1e-4)
    assert float(kvd.result()) == pytest.approx(fvd.kernel_distance(real, fake), rel=1e-3)
    with pytest.raises(ValueError, match="sample_weight"):
        fvd_metric.update_state(clips, clips, sample_weight=np.ones(6))
    with pytest.raises(ValueError, match="no model"):
        fvd.FrechetVideoDistance().update_state(clips, None)
    with pytest.raises(tf.errors.InvalidArgumentError, match="above value_range"):
        fvd_metric.update_state(clips.astype("float32") * 2, None)


def test_video_distances(i3d, clips, rng):
    other = rng.integers(0, 128, (6, FRAMES, 24, 40, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fvd.video_distances(clips, other, i3d, image_size=SIZE, progress=False)
        same = fvd.video_distances(clips, clips, i3d, image_size=SIZE, progress=False)
    assert result["fvd"] > 1.0 and result["kvd"] > 0
    assert result["real"]["count"] == result["generated"]["count"] == 6
    assert abs(same["fvd"]) <= 1e-6


# ----------------------------------------------------------------------------
# The tool, end to end on the shared videos
# ----------------------------------------------------------------------------

def _tool(*args, cwd):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_tool_end_to_end(shared_data, tfhub_module, tmp_path, rng):
    videos = shared_data / "videos"
    generated = tmp_path / "generated.npy"
    np.save(generated, rng.integers(0, 256, (3, 8, 48, 64, 3), dtype=np.uint8))
    weights = tfhub_module[0]
    common = [f"--weights={weights}", "--frames=8", f"--image_size={SIZE}", "--batch_size=2"]
    run = _tool(*common, f"--real={videos}", f"--generated={generated}",
                f"--json={tmp_path / 'out.json'}", f"--save_stats={tmp_path / 'real.npz'}",
                cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert "FVD: " in run.stdout and "KVD: " in run.stdout
    assert "N: real 4, generated 3; clip length: 8 frames" in run.stdout
    assert f"weights: {weights}; precision: float32" in run.stdout
    assert "covariance is singular" in run.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["real"]["count"] == 4 and result["real"]["frame_sizes"] == {
        "256x340": 2, "224x224": 2}
    assert result["generated"]["clip_length"] == 8
    stats = fvd.FeatureStatistics.load(tmp_path / "real.npz")
    assert stats.count == 4 and stats.metadata["clip_length"] == 8
    # The cached statistics give the same distances.
    again = _tool(*common, f"--real={tmp_path / 'real.npz'}", f"--generated={generated}",
                  f"--json={tmp_path / 'again.json'}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads((tmp_path / "again.json").read_text())
    assert second["fvd"] == pytest.approx(result["fvd"], rel=1e-6)
    assert second["kvd"] == pytest.approx(result["kvd"], rel=1e-5)
    # Two statistics files: their own protocol, no model; a set against itself is 0.
    both = _tool(f"--real={tmp_path / 'real.npz'}", f"--generated={tmp_path / 'real.npz'}",
                 f"--json={tmp_path / 'both.json'}", cwd=tmp_path)
    assert both.returncode == 0, both.stderr[-3000:]
    third = json.loads((tmp_path / "both.json").read_text())
    assert abs(third["fvd"]) <= 1e-6 and third["image_size"] == SIZE
    assert third["weights"] == str(weights)
    # A statistics file of another protocol is refused.
    other = _tool(f"--weights={weights}", "--frames=16", f"--image_size={SIZE}",
                  f"--real={tmp_path / 'real.npz'}", f"--generated={videos}", cwd=tmp_path)
    assert other.returncode == 2 and "clip_length: file 8, this run 16" in other.stderr


def test_tool_bad_inputs(shared_data, tmp_path, rng):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("arm_wrestling.mp4", "cleaning_pool.mp4"):
        os.symlink(shared_data / "videos" / name, folder / name)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(500))
    np.save(tmp_path / "short.npy", rng.integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8))
    np.save(tmp_path / "image.npy", np.zeros((2, 32, 32, 3), np.uint8))
    common = ["--weights=random", "--frames=4", f"--image_size={SIZE}"]
    # One unreadable video: reported, skipped, counted; exit status 1 with a result.
    run = _tool(*common, f"--real={folder}", f"--generated={tmp_path / 'short.npy'}",
                cwd=tmp_path)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "FVD: " in run.stdout and "N: real 2, generated 2" in run.stdout
    assert "skipped" in run.stderr and "broken.mp4" in run.stderr
    assert "skipped 1 input video (unreadable, or shorter than the clip length)" in run.stderr
    usage = [
        ([f"--real={tmp_path / 'nowhere'}", f"--generated={folder}"], "no such file or folder"),
        ([f"--real={tmp_path / 'image.npy'}", f"--generated={folder}"], "Received: shape"),
        ([f"--real={folder}"], "--generated is required"),
        ([f"--real={folder}", f"--generated={folder}", "--frames=0"],
         "--frames=0: 0 is not a positive integer"),
        ([f"--real={folder}", "--generated=notes.txt"], "no such file"),
        ([f"--real={folder}", f"--generated={folder}", "--resize=cubic"], "resize"),
        ([f"--real={folder}", f"--generated={folder}", "--weights=/no/weights"],
         "--weights"),
    ]
    for args, message in usage:
        out = _tool(*common, *args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert message in out.stderr, (args, out.stderr[-2000:])
        assert "Traceback" not in out.stderr
    # Arrays shorter than the clip length asked for: an input error, no traceback.
    short = _tool(*common, "--frames=8", f"--real={tmp_path / 'short.npy'}",
                  f"--generated={tmp_path / 'short.npy'}", cwd=tmp_path)
    assert short.returncode == 1 and "at least frames=8" in short.stderr
    assert "Traceback" not in short.stderr
