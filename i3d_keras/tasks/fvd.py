"""Fréchet Video Distance (FVD) and Kernel Video Distance (KVD) with I3D.

Reference: Unterthiner, van Steenkiste, Kurach, Marinier, Michalski & Gelly,
"Towards Accurate Generative Models of Video: A New Metric & Challenges",
arXiv:1812.01717 (2018), and its reference implementation
(github.com/google-research/google-research, `frechet_video_distance`), which
embeds videos with the I3D Kinetics-400 module of TF-Hub
(`deepmind/i3d-kinetics-400/1`; Carreira & Zisserman, CVPR 2017). KVD is the
kernel MMD of Bińkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs",
ICLR 2018 (KID) on the same features.

The protocol, as the reference computes it (the defaults here):

1. Videos `[N, T, H, W, 3]`, RGB values in [0, 255] (uint8 or float); `T` is
   the clip length the caller gives (the paper: 16 frames). Frames are used
   as given: no frame-rate resampling, no cropping.
2. Every frame is resized to 224x224 bilinearly, without keeping the aspect
   ratio, with TF1's `tf.compat.v1.image.resize_bilinear` pixel convention
   (`align_corners=False`, `half_pixel_centers=False`): output pixel `i`
   samples the input at `i * in_size / out_size`, interpolating between
   `floor` of that and the next pixel (clamped to the last one).
3. Values `x -> 2 * x / 255 - 1` ([-1, 1]).
4. Features: I3D's `RGB/inception_i3d/Mean`, the 400 Kinetics logits averaged
   over time (before the softmax): the `Logits` endpoint of `InceptionI3D`.
5. FVD: the Fréchet distance between Gaussians fitted to the real and the
   generated features (mean, covariance with `N - 1`), in float64, as
   `tfgan.eval.frechet_classifier_distance_from_activations`:
   `|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`.
6. KVD: the unbiased estimate of the squared MMD with the polynomial kernel
   `k(x, y) = (x . y / d + 1)^3` (`d` = 400), KID's estimator.

Variants (`resize=`): later TF2 copies of the reference resize with
`tf.image.resize` (half-pixel centres, `"tf2"`; also what PyTorch's
`F.interpolate(mode="bilinear", align_corners=False)` computes without
antialiasing), and some ports align corners (`"align_corners"`, TF1's
`align_corners=True` and PyTorch's `align_corners=True`). They sample
different input positions, so their FVDs are not comparable with the
reference's.

Example:

>>> model = load_fvd_model("tfhub")  # doctest: +SKIP
>>> real = video_features(real_videos, model)  # [N, 400]  # doctest: +SKIP
>>> fake = video_features(generated_videos, model)  # doctest: +SKIP
>>> frechet_distance(*FeatureStatistics.from_features(real).gaussian,
...                  *FeatureStatistics.from_features(fake).gaussian)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from i3d_keras.data import parallel
from i3d_keras.utils import outputs

PathLike = Union[str, os.PathLike]

#: The reference's frame size and clip length (Unterthiner et al., 2018).
IMAGE_SIZE = 224
CLIP_LENGTH = 16
#: The usual size of an FVD set (the paper's evaluations use 2048 videos).
REFERENCE_SET_SIZE = 2048

#: Resize conventions: `(align_corners, half_pixel_centers)` of TensorFlow's
#: `ResizeBilinear`. "tf1" is the reference's `tf.image.resize_bilinear`;
#: "tf2" is `tf.image.resize(method="bilinear")`; "align_corners" is TF1's
#: `align_corners=True`.
RESIZE_METHODS = {
    "tf1": (False, False),
    "tf2": (False, True),
    "align_corners": (True, False),
}

#: The reference's I3D: TF-Hub's `deepmind/i3d-kinetics-400/1`, a TF1 Hub
#: module whose variables keep DeepMind's scope (`RGB/inception_i3d/...`).
#: tfhub.dev now redirects to Kaggle Models (deepmind/i3d-kinetics, TF1,
#: variation 400), which serves the same archive.
TFHUB_MODULE = "deepmind/i3d-kinetics-400/1"
TFHUB_URL = "https://tfhub.dev/deepmind/i3d-kinetics-400/1?tf-hub-format=compressed"
#: No checksum of the archive is published and this package was written
#: without network access to measure one, so none is checked.
TFHUB_FILE_HASH = None

#: What `load_fvd_model(weights=...)` accepts besides paths.
WEIGHTS_KEYWORDS = ("tfhub", "kinetics", "random")
PRECISIONS = ("float32", "auto", "float16", "bfloat16")

_FEATURES_KEY = "features"


# ----------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------

def _significant(values):
    """Eigenvalues of a PSD matrix with those within rounding of zero set to 0.

    The threshold is LAPACK's numerical-rank one, `d * eps * max |eigenvalue|`:
    a square root turns rounding noise of 1e-14 into 1e-7, which summed over
    the null space of a singular covariance (fewer videos than dimensions)
    would keep FVD of a set with itself from 0.
    """
    tolerance = len(values) * np.finfo(np.float64).eps * np.abs(values).max(initial=0.0)
    return np.where(values > tolerance, values, 0.0)


def _symmetric_sqrt(matrix):
    """The PSD square root of a symmetric matrix (rounding below zero clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(_significant(values))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """The Fréchet (2-Wasserstein) distance between two Gaussians, squared.

    `d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))` in float64
    (Dowson & Landau, 1982; FID: Heusel et al., NeurIPS 2017; FVD:
    Unterthiner et al., arXiv:1812.01717). The trace of `(S1 S2)^(1/2)` is
    computed as that of the symmetric `(S1^(1/2) S2 S1^(1/2))^(1/2)` (the same
    eigenvalues), both square roots by eigendecompositions whose eigenvalues
    within rounding of zero (below `d * eps * the largest`) count as 0: no
    complex residue, and a set's distance to itself is 0 to rounding also
    with singular covariances (fewer videos than dimensions).

    Args:
        mu1, mu2: means `[d]`.
        sigma1, sigma2: covariances `[d, d]` (symmetric positive semi-definite).

    Returns:
        The distance as a Python float (FVD when the inputs are I3D feature
        statistics). Rounding can leave it at about -1e-12 for identical inputs.

    Raises:
        ValueError: mismatched shapes or non-finite values.

    Example:

    >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
    4.0
    """
    mu1, mu2 = (np.asarray(m, np.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (np.asarray(s, np.float64) for s in (sigma1, sigma2))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"Expected two means of the same shape [d]. Received: shapes "
                         f"{mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (d, d):
            raise ValueError(f"Expected `{name}` of shape {(d, d)} (the means have d={d}). "
                             f"Received: shape {sigma.shape}")
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"Expected finite statistics. Received: non-finite values in "
                             f"`{name}`")
    root1 = _symmetric_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = np.sqrt(_significant(eigenvalues)).sum()
    diff = mu1 - mu2
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)
    # A distance: a set against itself gives rounding error around 0, not "-0.0000".
    return max(distance, 0.0)


def _polynomial_kernel(x, y, degree, gamma, coef0):
    return (gamma * (x @ y.T) + coef0) ** degree


def _unbiased_mmd2(x, y, degree, gamma, coef0):
    m, n = len(x), len(y)
    k_xx = _polynomial_kernel(x, x, degree, gamma, coef0)
    k_yy = _polynomial_kernel(y, y, degree, gamma, coef0)
    k_xy = _polynomial_kernel(x, y, degree, gamma, coef0)
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
                 + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
                 - 2 * k_xy.mean())


def _as_features(features, name):
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"Expected `{name}` of shape [num_videos, feature_dim]. Received: "
                         f"shape {features.shape}")
    if len(features) < 2:
        raise ValueError(f"Expected at least 2 videos in `{name}` (the unbiased estimates "
                         f"need pairs). Received: {len(features)}")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"Expected finite features. Received: non-finite values in `{name}`")
    return features


def kernel_distance(features1, features2, *, degree=3, gamma=None, coef0=1.0,
                    subset_size=None, num_subsets=100, seed=0):
    """KVD: the unbiased squared MMD with a polynomial kernel, in float64.

    `k(x, y) = (gamma * x . y + coef0)^degree`, by default `(x . y / d + 1)^3`
    (KID: Bińkowski et al., "Demystifying MMD GANs", ICLR 2018; KVD:
    Unterthiner et al., arXiv:1812.01717). The estimate is
    `mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)`;
    it is unbiased, so it can be slightly negative when both sets come from
    the same distribution.

    Args:
        features1, features2: `[m, d]` and `[n, d]` (e.g. `video_features`).
        degree, gamma, coef0: the kernel; `gamma=None` means `1 / d`.
        subset_size: None: one estimate over all pairs (the default). An int:
            KID's protocol, the mean of `num_subsets` estimates over random
            subsets of this many videos of each set (TF-GAN's
            `kernel_classifier_distance` averages disjoint blocks instead;
            all three are unbiased estimates of the same quantity).
        num_subsets: subsets drawn when `subset_size` is set.
        seed: seed of the subset draws.

    Returns:
        The estimate as a Python float.

    Raises:
        ValueError: shapes that differ, fewer than 2 videos, non-finite values.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    >>> abs(kernel_distance(a, b)) < 0.05
    True
    """
    x = _as_features(features1, "features1")
    y = _as_features(features2, "features2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Expected features of the same dimension. Received: "
                         f"{x.shape[1]} and {y.shape[1]}")
    if not (isinstance(degree, int) and degree >= 1):
        raise ValueError(f"`degree` must be a positive int. Received: degree={degree!r}")
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    if subset_size is None:
        return _unbiased_mmd2(x, y, degree, gamma, coef0)
    if not 2 <= subset_size <= min(len(x), len(y)):
        raise ValueError(f"`subset_size` must be in [2, {min(len(x), len(y))}] (the smaller "
                         f"set). Received: subset_size={subset_size}")
    if num_subsets < 1:
        raise ValueError(f"`num_subsets` must be >= 1. Received: num_subsets={num_subsets}")
    rng = np.random.default_rng(seed)
    estimates = [
        _unbiased_mmd2(x[rng.choice(len(x), subset_size, replace=False)],
                       y[rng.choice(len(y), subset_size, replace=False)], degree, gamma, coef0)
        for _ in range(num_subsets)
    ]
    return float(np.mean(estimates))


def _warn_few_videos(count, dim, stacklevel=3):
    if count <= dim:
        warnings.warn(
            f"FVD from {count} videos with {dim}-d features: with no more videos than feature "
            f"dimensions the covariance is singular (rank <= {count - 1}), and FVD is biased "
            f"upwards and noisy; the reference protocol uses {REFERENCE_SET_SIZE} videos per "
            "set, and only FVDs from sets of the same size are comparable.",
            stacklevel=stacklevel)


@dataclasses.dataclass
class FeatureStatistics:
    """Mean and covariance (float64) of a set of video features, and the features.

    What FVD needs of a set; `features` are kept for KVD (2048 videos x 400
    float32 are 3.3 MB). `metadata` records how the features were computed
    (clip length, frame size, resize convention, weights, precision), so that
    a cached real set is not compared with generated videos preprocessed
    another way.

    Attributes:
        mean: `[d]` float64.
        covariance: `[d, d]` float64 (divided by `count - 1`).
        count: number of videos.
        features: `[count, d]` float32, or None.
        metadata: a JSON-serialisable dict.

    Example:

    >>> stats = FeatureStatistics.from_features(np.random.rand(500, 4))
    >>> stats.count, stats.mean.shape, stats.covariance.shape
    (500, (4,), (4, 4))
    """

    mean: np.ndarray
    covariance: np.ndarray
    count: int
    features: Optional[np.ndarray] = None
    metadata: Dict = dataclasses.field(default_factory=dict)

    @property
    def gaussian(self) -> Tuple[np.ndarray, np.ndarray]:
        """`(mean, covariance)`, the arguments of `frechet_distance`."""
        return self.mean, self.covariance

    @classmethod
    def from_features(cls, features, metadata=None, keep_features=True):
        """Statistics of `[N, d]` features; warns when `N <= d` (singular covariance)."""
        features = _as_features(features, "features")
        _warn_few_videos(len(features), features.shape[1])
        return cls(mean=features.mean(axis=0), covariance=np.cov(features, rowvar=False),
                   count=len(features),
                   features=features.astype(np.float32) if keep_features else None,
                   metadata=dict(metadata or {}))

    def save(self, path: PathLike) -> Path:
        """Writes an `.npz` (mean, covariance, count, features, metadata as JSON)."""
        path = Path(path)
        arrays = {"mean": self.mean, "covariance": self.covariance,
                  "count": np.asarray(self.count),
                  "metadata": np.asarray(json.dumps(self.metadata))}
        if self.features is not None:
            arrays[_FEATURES_KEY] = self.features
        with outputs.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)  # a file object: no ".npz" appended to the name
        return path

    @classmethod
    def load(cls, path: PathLike) -> "FeatureStatistics":
        """Reads a file written by `save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a statistics file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Expected a statistics file (.npz). Received: '{path}' "
                                    "(no such file)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            metadata = json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
        except (OSError, EOFError, ValueError, AttributeError) as error:
            # (np.load raises ValueError for pickles, AttributeError for non-archives)
            raise ValueError(f"Expected a readable .npz statistics file. Received: '{path}' "
                             f"({type(error).__name__}: {error})") from None
        if not {"mean", "covariance", "count"} <= set(arrays):
            raise ValueError(f"Expected an FVD statistics file with 'mean', 'covariance' and "
                             f"'count'. Received: '{path}' with arrays {sorted(arrays)}")
        mean = np.asarray(arrays["mean"], np.float64)
        covariance = np.asarray(arrays["covariance"], np.float64)
        count = int(arrays["count"])
        features = arrays.get(_FEATURES_KEY)
        if mean.ndim != 1 or covariance.shape != (len(mean), len(mean)):
            raise ValueError(f"Expected mean [d] and covariance [d, d]. Received: shapes "
                             f"{mean.shape} and {covariance.shape} in '{path}'")
        return cls(mean, covariance, count, features, metadata)


# ----------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------

def _size_pair(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if (len(image_size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1
                                        for s in image_size)):
        raise ValueError(f"`image_size` must be a positive int or (height, width). Received: "
                         f"image_size={image_size!r}")
    return tuple(int(s) for s in image_size)


def _check_resize(resize):
    if resize not in RESIZE_METHODS:
        raise ValueError(f"`resize` must be one of {sorted(RESIZE_METHODS)}. Received: "
                         f"resize={resize!r}")


def _check_value_range(value_range):
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"`value_range` must be (low, high). Received: "
                         f"value_range={value_range!r}") from None
    if not high > low:
        raise ValueError(f"`value_range` must have high > low. Received: "
                         f"value_range={value_range!r}")
    return low, high


def preprocess_videos(videos, *, image_size=IMAGE_SIZE, resize="tf1", value_range=(0, 255)):
    """FVD's preprocessing: frames resized without keeping the aspect ratio, [-1, 1].

    As the reference (Unterthiner et al., arXiv:1812.01717;
    google-research `frechet_video_distance.preprocess`): every frame is
    resized bilinearly to `image_size` with TF1's `resize_bilinear`
    convention by default (`align_corners=False`, `half_pixel_centers=False`;
    see `RESIZE_METHODS` for the variants), in float32, then mapped by
    `2 * x / 255 - 1`. Values in another `value_range` are first mapped
    linearly to [0, 255] (before the resize, which is linear).

    Args:
        videos: `[N, T, H, W, 3]` (array or tensor, any real dtype).
        image_size: output frame size, int or `(height, width)` (224).
        resize: `"tf1"` (the reference), `"tf2"` or `"align_corners"`.
        value_range: `(low, high)` of the input values; `(0, 255)` for uint8.

    Returns:
        float32 tensor `[N, T, height, width, 3]`.

    Example:

    >>> clips = np.zeros([2, 16, 128, 171, 3], "uint8")
    >>> preprocess_videos(clips).shape
    TensorShape([2, 16, 224, 224, 3])
    """
    _check_resize(resize)
    height, width = _size_pair(image_size)
    low, high = _check_value_range(value_range)
    videos = tf.convert_to_tensor(videos)
    if videos.shape.rank != 5 or videos.shape[-1] != 3:
        raise ValueError(f"Expected videos [N, T, H, W, 3]. Received: shape "
                         f"{tuple(videos.shape)}")
    videos = tf.cast(videos, tf.float32)
    if (low, high) != (0.0, 255.0):
        videos = (videos - low) * (255.0 / (high - low))
    shape = tf.shape(videos)
    frames = tf.reshape(videos, tf.concat([[-1], shape[2:]], axis=0))
    align_corners, half_pixel = RESIZE_METHODS[resize]
    frames = tf.raw_ops.ResizeBilinear(images=frames, size=[height, width],
                                       align_corners=align_corners,
                                       half_pixel_centers=half_pixel)
    frames = 2.0 * frames / 255.0 - 1.0
    return tf.reshape(frames, tf.stack([shape[0], shape[1], height, width, 3]))


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

def download_tfhub_module(cache_dir: Optional[PathLike] = None) -> str:
    """Downloads and unpacks TF-Hub's `deepmind/i3d-kinetics-400/1` (the reference's I3D).

    Reference: Unterthiner et al., arXiv:1812.01717 (the module their FVD
    uses); Carreira & Zisserman, CVPR 2017 (the network).

    Args:
        cache_dir: Keras cache folder (default `~/.keras`); the module goes to
            `{cache_dir}/i3d_keras/tfhub/i3d-kinetics-400_1/`.

    Returns:
        The module folder (`variables/variables.index` and data inside).

    Raises:
        OSError: the download failed (no network, moved URL).

    Example:

    >>> folder = download_tfhub_module()  # doctest: +SKIP
    """
    from i3d_keras.utils import downloads  # noqa: PLC0415

    return downloads.get_file(
        "i3d-kinetics-400_1", TFHUB_URL, what=f"the TF-Hub module {TFHUB_MODULE}",
        offline="download it elsewhere (also on Kaggle Models: deepmind/i3d-kinetics, TF1, "
                "400), unpack it and pass its folder as the weights",
        file_hash=TFHUB_FILE_HASH, extract=True, archive_format="tar",
        cache_subdir=os.path.join("i3d_keras", "tfhub"),
        cache_dir=None if cache_dir is None else os.fspath(cache_dir))


def _build_i3d(precision):
    from i3d_keras.runtime import precision as precisions  # noqa: PLC0415
    from i3d_keras.models.i3d import InceptionI3D  # noqa: PLC0415

    with precisions.policy_scope(precisions.resolve_precision(precision)):
        # Any clip length and frame size: the preprocessing decides (224 in
        # the protocol, where the adaptive head is exactly the paper's head).
        return InceptionI3D(400, "rgb", frames=None, image_size=None, name="fvd_i3d")


def load_fvd_model(weights="tfhub", *, precision="float32", cache_dir=None) -> keras.Model:
    """The I3D RGB model whose `Logits` are FVD's features, `[N, 400]`.

    Reference: Unterthiner et al., arXiv:1812.01717 (TF-Hub
    `deepmind/i3d-kinetics-400/1`, `RGB/inception_i3d/Mean`); Carreira &
    Zisserman, CVPR 2017.

    Args:
        weights: `"tfhub"` (the reference's module, downloaded and converted
            by `i3d_keras.weights.deepmind`), a TF-Hub module folder (its
            `variables/variables.*` hold DeepMind's `RGB/inception_i3d/...`
            variables), `"kinetics"` (DeepMind's `rgb_imagenet` checkpoint: the
            same network, other weights, so other FVDs), a DeepMind checkpoint,
            a `.keras` / `.weights.h5` file of an `InceptionI3D(400, "rgb")`,
            or `"random"` (random initialisation: for tests only, the values
            mean nothing).
        precision: `"float32"` (the default, comparable with the reference),
            or `"auto"` (mixed float16 with a GPU, else float32, as training),
            `"float16"`, `"bfloat16"` (mixed precision).
        cache_dir: Keras cache folder for downloads.

    Returns:
        A `keras.Model` from `[N, T, H, W, 3]` in [-1, 1] to the 400 logits
        averaged over time.

    Raises:
        FileNotFoundError: a path that does not exist or holds no checkpoint.
        ValueError: weights that are not I3D Kinetics-400 RGB weights.
        OSError: a download that failed.

    Example:

    >>> model = load_fvd_model("downloads/i3d-kinetics-400_1")  # doctest: +SKIP
    """
    from i3d_keras.weights import deepmind  # noqa: PLC0415
    from i3d_keras.weights import pretrained as i3d_weights  # noqa: PLC0415

    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: "
                         f"precision={precision!r}")
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"`weights` must be one of {WEIGHTS_KEYWORDS} or a path. Received: "
                         f"weights={weights!r}")
    if weights == "random":
        warnings.warn("FVD with randomly initialised I3D: the distances are not FVDs "
                      "(use weights='tfhub' or a module folder).", stacklevel=2)
        return _build_i3d(precision)
    if weights == "tfhub":
        weights = download_tfhub_module(cache_dir)
    path = os.fspath(weights)
    if weights != "kinetics" and not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"Expected one of {WEIGHTS_KEYWORDS} or an existing path. "
                                f"Received: weights={path!r} (no such file or folder)")
    model = _build_i3d(precision)
    if os.path.isdir(path) or weights == "kinetics" or not path.endswith(
            (".keras", ".h5")):
        report = (i3d_weights.load_pretrained(model, "kinetics", stream="rgb")
                  if weights == "kinetics" else
                  deepmind.load_deepmind_checkpoint(model, path))
    else:
        report = i3d_weights.load_pretrained(model, path, stream="rgb")
    if report.get("num_classes") not in (None, 400) or report.get("logits_reinitialized"):
        raise ValueError(f"FVD needs I3D's 400 Kinetics-400 logits. Received: weights {path!r} "
                         f"with {report.get('num_classes')} classes")
    return model


def _logits(model):
    from i3d_keras.models.i3d import logits_model  # noqa: PLC0415

    try:
        model.get_layer("Logits")
    except ValueError:
        return model  # a model of the caller's that outputs features already
    return logits_model(model)


def _model_precision(model):
    policy = getattr(model, "dtype_policy", None)
    names = {getattr(layer.dtype_policy, "name", "float32") for layer in model.layers
             if layer.weights}
    return sorted(names)[0] if len(names) == 1 else getattr(policy, "name", "mixed")


# ----------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------

class _Progress(parallel.Progress):
    """`Progress` that also runs open-ended (unknown total: no percentage or ETA)."""

    def line(self):
        if self.total != float("inf"):
            return super().line()
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        failed = f" ({self.failed} failed)" if self.failed else ""
        return (f"{self.desc} {self.done} {self.unit}{failed} | {rate:.2f} {self.unit}/s | "
                f"elapsed {parallel._format_seconds(elapsed)} | total unknown")


@dataclasses.dataclass
class _Video:
    name: str
    frames: Optional[np.ndarray]
    error: Optional[str] = None
    short: bool = False


def _check_video_values(video, value_range, name, warned):
    if video.dtype == np.uint8:
        if value_range != (0.0, 255.0):
            raise ValueError(f"uint8 videos hold values in [0, 255]. Received: "
                             f"value_range={value_range} for {name}")
        return
    if not np.issubdtype(video.dtype, np.number) or np.issubdtype(video.dtype, np.complexfloating):
        raise ValueError(f"Expected uint8 or float videos. Received: dtype {video.dtype} "
                         f"for {name}")
    low, high = value_range
    lo, hi = float(np.min(video)), float(np.max(video))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"Expected finite pixel values. Received: NaN or inf in {name}")
    tolerance = 1e-3 * (high - low)
    if lo < low - tolerance or hi > high + tolerance:
        raise ValueError(f"Expected values in value_range={value_range}. Received: values in "
                         f"[{lo:g}, {hi:g}] in {name}")
    if (low, high) == (0.0, 255.0) and hi <= 1.0 and not warned:
        warned.append(True)
        warnings.warn(f"Float videos with values in [{lo:g}, {hi:g}] while value_range=(0, 255):"
                      " if they are in [0, 1] or [-1, 1], pass value_range=(0, 1) or (-1, 1).",
                      stacklevel=4)


def _videos_from_files(paths, frames, fps):
    """The first `frames` frames of each file, one file at a time: decoding
    stops there (`max_frames`), so a long video costs one clip's memory."""
    from i3d_keras.data.video import read_video  # noqa: PLC0415

    for path in paths:
        try:
            video = read_video(path, fps=fps, short_side=None, max_frames=frames)
        except Exception as error:  # noqa: BLE001 (one bad video never stops the rest)
            yield _Video(str(path), None, f"{type(error).__name__}: {error}"
                         if not isinstance(error, ValueError) else str(error))
            continue
        if len(video) < frames:
            yield _Video(str(path), None, f"{len(video)} frames, shorter than the clip "
                                          f"length {frames}", short=True)
            continue
        yield _Video(str(path), video)


def _video_files(folder):
    from i3d_keras.data.video import VIDEO_EXTENSIONS  # noqa: PLC0415

    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def _dataset_videos(dataset):
    def pick(element):
        if isinstance(element, (tuple, list)):
            return element[0]
        if isinstance(element, dict):
            if len(element) != 1:
                raise ValueError(f"Expected dataset elements that are videos, (video, ...) "
                                 f"tuples or one-key dicts. Received: keys {sorted(element)}")
            return next(iter(element.values()))
        return element

    index = 0
    for element in dataset:
        x = np.asarray(pick(element))
        if x.ndim == 4:
            x = x[np.newaxis]
        if x.ndim != 5:
            raise ValueError(f"Expected dataset elements [T, H, W, 3] or [B, T, H, W, 3]. "
                             f"Received: shape {x.shape}")
        for video in x:
            yield _Video(f"dataset[{index}]", video)
            index += 1


def _dataset_total(dataset):
    cardinality = int(dataset.cardinality())
    if cardinality < 0:
        return float("inf")
    spec = dataset.element_spec
    if isinstance(spec, (tuple, list)):
        spec = spec[0]
    elif isinstance(spec, dict) and len(spec) == 1:
        spec = next(iter(spec.values()))
    shape = getattr(spec, "shape", None)
    if shape is None or shape.rank not in (4, 5):
        return float("inf")
    if shape.rank == 4:
        return cardinality
    return cardinality * shape[0] if shape[0] is not None else float("inf")


def _source(videos, frames, fps):
    """`(iterator of _Video, total)` for every accepted form of `videos`."""
    if isinstance(videos, tf.data.Dataset):
        return _dataset_videos(videos), _dataset_total(videos)
    if isinstance(videos, (str, os.PathLike)):
        folder = Path(videos)
        if not folder.is_dir():
            raise FileNotFoundError(f"Expected a folder of video files. Received: '{folder}' "
                                    "(no such folder)" if not folder.exists() else
                                    f"Expected a folder of video files. Received: '{folder}' "
                                    "(a file; pass arrays with np.load for .npy)")
        paths = _video_files(folder)
        if not paths:
            raise ValueError(f"Expected video files in '{folder}'. Received: none found")
        return _videos_from_files(paths, frames or CLIP_LENGTH, fps), len(paths)
    if isinstance(videos, np.ndarray) or tf.is_tensor(videos):
        array = videos if isinstance(videos, np.ndarray) else np.asarray(videos)
        if array.ndim != 5 or array.shape[-1] != 3:
            raise ValueError(f"Expected videos [N, T, H, W, 3]. Received: shape {array.shape}")
        return (_Video(f"videos[{i}]", array[i]) for i in range(len(array))), len(array)
    if isinstance(videos, (list, tuple)):
        if all(isinstance(v, (str, os.PathLike)) for v in videos):
            return (_videos_from_files(videos, frames or CLIP_LENGTH, fps),
                    len(videos))
        items = [np.asarray(v) for v in videos]
        bad = [i for i, v in enumerate(items) if v.ndim != 4 or v.shape[-1] != 3]
        if bad:
            raise ValueError(f"Expected a list of videos [T, H, W, 3]. Received: shape "
                             f"{items[bad[0]].shape} at index {bad[0]}")
        return (_Video(f"videos[{i}]", v) for i, v in enumerate(items)), len(items)
    raise ValueError(f"Expected videos as an array [N, T, H, W, 3], a list of videos or of "
                     f"paths, a tf.data.Dataset or a folder. Received: {type(videos).__name__}")


class _Extractor:
    """Preprocessing and the model, each traced once per input shape."""

    def __init__(self, model, image_size, resize):
        self.model = _logits(model)
        self.image_size = image_size
        self.resize = resize
        self.feature_dim = int(self.model.outputs[0].shape[-1])
        self._preprocess = tf.function(
            lambda x: preprocess_videos(x, image_size=image_size, resize=resize),
            input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.float32)],
            autograph=False)
        self._forward = tf.function(
            lambda x: tf.cast(self.model(x, training=False), tf.float32),
            input_signature=[tf.TensorSpec([None, None, *image_size, 3], tf.float32)],
            autograph=False)

    @classmethod
    def of(cls, model, image_size, resize):
        """The model's extractor, built (and traced) once per size and convention."""
        # A plain attribute, not tracked by Keras (a weak-key cache would be
        # kept alive by the extractor's own reference to the model).
        cache = model.__dict__.get("_i3d_keras_fvd_extractors")
        if cache is None:
            cache = {}
            object.__setattr__(model, "_i3d_keras_fvd_extractors", cache)
        key = (tuple(image_size), resize)
        if key not in cache:
            cache[key] = cls(model, tuple(image_size), resize)
        return cache[key]

    def __call__(self, clips: List[np.ndarray]) -> np.ndarray:
        # Videos of one frame size are resized together, others one by one.
        groups: Dict[tuple, List[int]] = {}
        for i, clip in enumerate(clips):
            groups.setdefault(clip.shape, []).append(i)
        prepared = [None] * len(clips)
        for indices in groups.values():
            batch = np.stack([clips[i] for i in indices]).astype(np.float32)
            out = self._preprocess(tf.constant(batch))
            for j, i in enumerate(indices):
                prepared[i] = out[j]
        return self._forward(tf.stack(prepared)).numpy()


def video_features(videos, model="tfhub", *, frames=None, batch_size=8,
                   image_size=IMAGE_SIZE, resize="tf1", value_range=(0, 255), fps=None,
                   precision="float32", progress=True, report=None) -> np.ndarray:
    """I3D features for FVD/KVD: the 400 logits averaged over time, `[N, 400]` float32.

    Preprocessing as the reference (see the module docstring and
    `preprocess_videos`): frames as given, resized to 224x224 without keeping
    the aspect ratio (TF1 bilinear convention), [0, 255] -> [-1, 1]; I3D's
    `Logits` endpoint (DeepMind's `RGB/inception_i3d/Mean`).

    Args:
        videos: one of
            * an array or tensor `[N, T, H, W, 3]`, uint8 or float in
              `value_range`;
            * a list of videos `[T, H, W, 3]` (frame sizes may differ: each is
              resized to `image_size`) or of video file paths;
            * a `tf.data.Dataset` of videos `[T, H, W, 3]` or batches
              `[B, T, H, W, 3]` (or `(video, ...)` tuples);
            * a folder, searched recursively for video files
              (`i3d_keras.data.video.VIDEO_EXTENSIONS`).
            Files are decoded by `i3d_keras.data.video.read_video` with the source
            frames as they are (no resampling to 25 fps, no short-side resize:
            FVD resizes whole frames to 224x224); the first `frames` frames
            are the clip. A file that cannot be read or is shorter than the
            clip is skipped and reported (`report`), the others go on.
        model: a `keras.Model` (an `InceptionI3D` RGB stream, or any model
            mapping `[N, T, h, w, 3]` in [-1, 1] to features), or anything
            `load_fvd_model` takes (default: the TF-Hub module, downloaded).
            Load it once and pass it when computing several sets.
        frames: clip length. Files: the first `frames` frames (default 16,
            the paper's). Arrays: None keeps all `T` frames; else the first
            `frames` (arrays with fewer frames raise).
        batch_size: clips per forward pass.
        image_size: the frame size fed to I3D (224 in the protocol).
        resize: `"tf1"` (the reference), `"tf2"` or `"align_corners"`.
        value_range: `(low, high)` of float input values.
        fps: decode files at this frame rate (None: as stored).
        precision: for models loaded here: `"float32"` (default, comparable)
            or a mixed precision (see `load_fvd_model`).
        progress: a progress line with ETA on stderr.
        report: an optional dict, filled with `num_videos`, `num_used`,
            `failed` (`[(name, reason)]`), `too_short` (`[(name, reason)]`),
            `frame_sizes` (`{"HxW": count}` of the inputs), `clip_length`,
            `precision`, `seconds`.

    Returns:
        float32 `[N, feature_dim]` for the videos used, in input order.

    Raises:
        ValueError: malformed videos (shape, value range, clip lengths that
            differ) or no usable video.
        FileNotFoundError: a missing folder or weights file.

    Example:

    >>> model = load_fvd_model("tfhub")  # doctest: +SKIP
    >>> video_features(np.zeros([4, 16, 64, 64, 3], "uint8"), model).shape  # doctest: +SKIP
    (4, 400)
    """
    _check_resize(resize)
    size = _size_pair(image_size)
    value_range = _check_value_range(value_range)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if frames is not None and (not isinstance(frames, (int, np.integer)) or frames < 1):
        raise ValueError(f"`frames` must be a positive int or None. Received: frames={frames!r}")
    report = {} if report is None else report
    source, total = _source(videos, frames, fps)
    if not isinstance(model, keras.Model):
        model = load_fvd_model(model, precision=precision)
    extractor = _Extractor.of(model, size, resize)
    report.update(num_videos=0, num_used=0, failed=[], too_short=[], frame_sizes={},
                  clip_length=frames, precision=_model_precision(extractor.model),
                  image_size=list(size), resize=resize)
    bar = _Progress(total, desc="I3D features", enabled=progress)
    start = time.monotonic()
    features, pending, warned = [], [], []

    def flush():
        if pending:
            features.append(extractor([v for _, v in pending]))
            bar.update(len(pending))
            pending.clear()

    try:
        for item in source:
            report["num_videos"] += 1
            if item.frames is None:
                report["too_short" if item.short else "failed"].append((item.name, item.error))
                bar.update(1, failed=1)
                continue
            video = item.frames
            if video.ndim != 4 or video.shape[-1] != 3:
                raise ValueError(f"Expected a video [T, H, W, 3]. Received: shape "
                                 f"{video.shape} for {item.name}")
            if frames is not None:
                if len(video) < frames:
                    raise ValueError(f"Expected at least frames={frames} frames. Received: "
                                     f"{len(video)} frames in {item.name}")
                video = video[:frames]
            if report["clip_length"] is None:
                report["clip_length"] = len(video)
            elif len(video) != report["clip_length"]:
                raise ValueError(f"Expected clips of one length ({report['clip_length']} "
                                 f"frames; FVD compares clips of the same length). Received: "
                                 f"{len(video)} frames in {item.name}")
            _check_video_values(video, value_range, item.name, warned)
            if value_range != (0.0, 255.0):
                video = (video.astype(np.float32) - value_range[0]) * (
                    255.0 / (value_range[1] - value_range[0]))
            key = f"{video.shape[1]}x{video.shape[2]}"
            report["frame_sizes"][key] = report["frame_sizes"].get(key, 0) + 1
            pending.append((item.name, video))
            report["num_used"] += 1
            if len(pending) == batch_size:
                flush()
        flush()
    finally:
        bar.close()
    report["seconds"] = time.monotonic() - start
    if not features:
        raise ValueError(f"Expected at least one usable video. Received: {report['num_videos']} "
                         f"videos, {len(report['failed'])} unreadable, "
                         f"{len(report['too_short'])} shorter than the clip length")
    out = np.concatenate(features)
    bad = ~np.all(np.isfinite(out), axis=1)
    if bad.any():
        raise ValueError(f"I3D gave non-finite features for {int(bad.sum())} of {len(out)} "
                         f"videos (precision {report['precision']}; float32 avoids overflow)")
    return out


def video_distances(real, generated, model="tfhub", *, kvd=True, kvd_subset_size=None,
                    **feature_options) -> Dict:
    """FVD (and KVD) between two sets of videos, as the reference computes them.

    Reference: Unterthiner et al., arXiv:1812.01717.

    Args:
        real, generated: anything `video_features` takes, features `[N, d]`,
            or `FeatureStatistics` (a cached real set; KVD needs its features).
        model: see `video_features` (loaded once for both sets).
        kvd: also compute KVD.
        kvd_subset_size: see `kernel_distance(subset_size=...)`.
        **feature_options: passed to `video_features` (frames, batch_size,
            image_size, resize, value_range, fps, precision, progress).

    Returns:
        `{"fvd", "kvd", "real": {...}, "generated": {...}}`: per set its
        `count` and the `video_features` report.

    Example:

    >>> video_distances("real_videos/", "generated_videos/")  # doctest: +SKIP
    {'fvd': 212.3, 'kvd': 0.031, ...}
    """
    loaded = None
    sets = {}
    for name, data in (("real", real), ("generated", generated)):
        info = {}
        if isinstance(data, FeatureStatistics):
            stats = data
        elif isinstance(data, np.ndarray) and data.ndim == 2:
            stats = FeatureStatistics.from_features(data)
        else:
            if loaded is None and not isinstance(model, keras.Model):
                loaded = load_fvd_model(model, precision=feature_options.get("precision",
                                                                              "float32"))
            features = video_features(data, loaded if loaded is not None else model,
                                      report=info, **feature_options)
            stats = FeatureStatistics.from_features(features)
        info["count"] = stats.count
        sets[name] = (stats, info)
    (real_stats, real_info), (gen_stats, gen_info) = sets["real"], sets["generated"]
    result = {"fvd": frechet_distance(*real_stats.gaussian, *gen_stats.gaussian), "kvd": None,
              "real": real_info, "generated": gen_info}
    if kvd:
        if real_stats.features is None or gen_stats.features is None:
            raise ValueError("KVD needs the features of both sets. Received: statistics "
                             "without features (pass kvd=False)")
        result["kvd"] = kernel_distance(real_stats.features, gen_stats.features,
                                        subset_size=kvd_subset_size)
    return result


# ----------------------------------------------------------------------------
# Keras metrics
# ----------------------------------------------------------------------------

class _VideoDistanceMetric(keras.metrics.Metric):
    """Common part of the FVD/KVD metrics: videos or features -> float64 features."""

    def __init__(self, model=None, *, feature_dim=None, image_size=IMAGE_SIZE, resize="tf1",
                 value_range=(0, 255), name=None, dtype="float64"):
        super().__init__(name=name, dtype=dtype)
        _check_resize(resize)
        self.image_size = _size_pair(image_size)
        self.resize = resize
        self.value_range = _check_value_range(value_range)
        if model is not None and not isinstance(model, keras.Model):
            model = load_fvd_model(model)
        # Held in a list: the metric's variables are its state only, never I3D's.
        self._model = [None if model is None else _logits(model)]
        model_dim = None if model is None else int(self._model[0].outputs[0].shape[-1])
        if feature_dim is not None and model_dim is not None and feature_dim != model_dim:
            raise ValueError(f"Expected feature_dim={model_dim} (the model's output). "
                             f"Received: feature_dim={feature_dim}")
        self.feature_dim = int(feature_dim or model_dim or 400)

    @property
    def model(self):
        return self._model[0]

    def _features(self, x):
        x = tf.convert_to_tensor(x)
        if x.shape.rank == 2:
            if x.shape[-1] != self.feature_dim:
                raise ValueError(f"Expected features [B, {self.feature_dim}]. Received: shape "
                                 f"{tuple(x.shape)}")
            return tf.cast(x, tf.float64)
        if x.shape.rank != 5:
            raise ValueError(f"Expected videos [B, T, H, W, 3] or features [B, "
                             f"{self.feature_dim}]. Received: shape {tuple(x.shape)}")
        if self.model is None:
            raise ValueError("This metric has no model (model=None): pass features "
                             f"[B, {self.feature_dim}], or build it with an I3D model. "
                             f"Received: videos of shape {tuple(x.shape)}")
        low, high = self.value_range
        scaled = (tf.cast(x, tf.float32) - low) * (2.0 / (high - low)) - 1.0
        checks = [
            tf.debugging.assert_less_equal(tf.reduce_max(scaled), 1.001, message=(
                f"FVD videos have values above value_range={self.value_range}")),
            tf.debugging.assert_greater_equal(tf.reduce_min(scaled), -1.001, message=(
                f"FVD videos have values below value_range={self.value_range}")),
        ]
        with tf.control_dependencies(checks):
            clips = preprocess_videos(tf.identity(x), image_size=self.image_size,
                                      resize=self.resize, value_range=self.value_range)
        return tf.cast(self.model(clips, training=False), tf.float64)

    def update_state(self, real=None, generated=None, sample_weight=None):
        """Adds a batch of real and/or generated videos (or their features).

        Args:
            real: videos `[B, T, H, W, 3]` (values in `value_range`), features
                `[B, d]`, or None.
            generated: the same for generated videos.
            sample_weight: must be None (every video counts once).
        """
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} weighs every video equally. Received: a "
                             "sample_weight")
        if real is not None:
            self._add(self._features(real), 0)
        if generated is not None:
            self._add(self._features(generated), 1)

    def get_config(self):
        # The model is not serialised: pass it again to restore the metric.
        return {"name": self.name, "dtype": self.dtype, "image_size": self.image_size,
                "resize": self.resize, "value_range": self.value_range,
                "feature_dim": self.feature_dim}


def _tf_significant(values):
    """`_significant` in TensorFlow."""
    size = tf.cast(tf.shape(values)[0], values.dtype)
    tolerance = size * np.finfo(np.float64).eps * tf.reduce_max(tf.abs(values))
    return tf.where(values > tolerance, values, tf.zeros_like(values))


def _tf_sqrt_psd(matrix):
    values, vectors = tf.linalg.eigh((matrix + tf.transpose(matrix)) / 2)
    return (vectors * tf.sqrt(_tf_significant(values))) @ tf.transpose(vectors)


class FrechetVideoDistance(_VideoDistanceMetric):
    """FVD as a Keras metric: streaming, constant memory, float64 state.

    Reference: Unterthiner et al., "Towards Accurate Generative Models of
    Video: A New Metric & Challenges", arXiv:1812.01717. Per set it keeps the
    count, the mean and the sum of centred outer products (`[d, d]`),
    merged batch by batch with Chan et al.'s pairwise update, in float64; no
    features are held. `result()` is `frechet_distance` of the two Gaussians
    computed in TensorFlow (NaN until both sets have 2 videos), equal to the
    one-shot computation over the same videos.

    `update_state(real, generated)` takes videos (preprocessed as the
    reference, see `preprocess_videos`) or precomputed features `[B, d]`;
    either may be None (e.g. real statistics fed once, generated ones per
    evaluation). As a compiled metric (`model.compile(metrics=[fvd])`), `y_true`
    is the real batch and `y_pred` the generated one.

    Args:
        model: I3D: a `keras.Model`, anything `load_fvd_model` takes, or None
            (features only).
        feature_dim: the feature size (default: the model's, else 400).
        image_size, resize, value_range: see `preprocess_videos`.
        name: metric name.
        dtype: the result's dtype (float64).

    Example:

    >>> fvd = FrechetVideoDistance(load_fvd_model("tfhub"))  # doctest: +SKIP
    >>> for real, generated in batches:  # doctest: +SKIP
    ...     fvd.update_state(real, generated)
    >>> float(fvd.result())  # doctest: +SKIP
    """

    def __init__(self, model=None, *, name="fvd", **kwargs):
        super().__init__(model, name=name, **kwargs)
        d = self.feature_dim
        self._state = []
        for side in ("real", "generated"):
            self._state.append((
                self.add_variable((), "zeros", dtype="float64", name=f"{side}_count"),
                self.add_variable((d,), "zeros", dtype="float64", name=f"{side}_mean"),
                self.add_variable((d, d), "zeros", dtype="float64", name=f"{side}_scatter"),
            ))

    def _add(self, batch, side):
        count, mean, scatter = self._state[side]
        n_b = tf.cast(tf.shape(batch)[0], tf.float64)
        mean_b = tf.reduce_sum(batch, axis=0) / tf.maximum(n_b, 1.0)
        centred = batch - mean_b
        n = count + n_b
        delta = mean_b - mean
        weight = n_b / tf.maximum(n, 1.0)
        scatter.assign(scatter + tf.matmul(centred, centred, transpose_a=True)
                       + tf.tensordot(delta, delta, axes=0) * (count * weight))
        mean.assign(mean + delta * weight)
        count.assign(n)

    def statistics(self, side="real") -> FeatureStatistics:
        """The accumulated `FeatureStatistics` of `"real"` or `"generated"` (eager)."""
        count, mean, scatter = self._state[("real", "generated").index(side)]
        n = int(count.numpy())
        return FeatureStatistics(np.asarray(mean.numpy()),
                                 np.asarray(scatter.numpy()) / max(n - 1, 1), n)

    def set_statistics(self, stats: FeatureStatistics, side="real"):
        """Replaces a side's state with cached statistics (e.g. the real set's)."""
        if stats.mean.shape != (self.feature_dim,):
            raise ValueError(f"Expected statistics of {self.feature_dim}-d features. "
                             f"Received: mean of shape {stats.mean.shape}")
        count, mean, scatter = self._state[("real", "generated").index(side)]
        count.assign(float(stats.count))
        mean.assign(stats.mean)
        scatter.assign(stats.covariance * max(stats.count - 1, 1))

    def result(self):
        (n1, mu1, m1), (n2, mu2, m2) = self._state
        if tf.executing_eagerly():
            for n in (n1, n2):
                if int(n.numpy()) >= 2:
                    _warn_few_videos(int(n.numpy()), self.feature_dim)
        sigma1 = m1 / tf.maximum(n1 - 1.0, 1.0)
        sigma2 = m2 / tf.maximum(n2 - 1.0, 1.0)
        root1 = _tf_sqrt_psd(sigma1)
        inner = root1 @ sigma2 @ root1
        eigenvalues = tf.linalg.eigvalsh((inner + tf.transpose(inner)) / 2)
        trace_sqrt = tf.reduce_sum(tf.sqrt(_tf_significant(eigenvalues)))
        diff = mu1 - mu2
        distance = (tf.reduce_sum(diff * diff) + tf.linalg.trace(sigma1)
                    + tf.linalg.trace(sigma2) - 2.0 * trace_sqrt)
        defined = tf.logical_and(n1 >= 2.0, n2 >= 2.0)
        return tf.cast(tf.where(defined, distance, tf.constant(np.nan, tf.float64)), self.dtype)


class KernelVideoDistance(_VideoDistanceMetric):
    """KVD as a Keras metric: the unbiased polynomial-kernel MMD^2, float64.

    Reference: Unterthiner et al., arXiv:1812.01717 (KVD); Bińkowski et al.,
    ICLR 2018 (the KID estimator). The kernel `(x . y / d + 1)^3` needs every
    pair of videos, so unlike `FrechetVideoDistance` this metric keeps the
    features: float64 buffers of `max_videos` rows per set (3.2 KB per video
    at d = 400; 26 MB for the default 4096 per set), filled by
    `update_state`. Exceeding them raises. `result()` equals
    `kernel_distance` over the same features (NaN until both sets have 2).

    Args:
        model: see `FrechetVideoDistance`.
        max_videos: capacity per set.
        degree, gamma, coef0: the kernel (`gamma=None`: `1 / d`).
        **kwargs: `feature_dim`, `image_size`, `resize`, `value_range`, `dtype`.

    Example:

    >>> kvd = KernelVideoDistance(feature_dim=400)
    >>> kvd.update_state(np.random.rand(8, 400), np.random.rand(8, 400))
    >>> kvd.result().shape
    TensorShape([])
    """

    def __init__(self, model=None, *, max_videos=4096, degree=3, gamma=None, coef0=1.0,
                 name="kvd", **kwargs):
        super().__init__(model, name=name, **kwargs)
        if not (isinstance(max_videos, int) and max_videos >= 2):
            raise ValueError(f"`max_videos` must be an int >= 2. Received: "
                             f"max_videos={max_videos!r}")
        self.max_videos = max_videos
        self.degree, self.coef0 = int(degree), float(coef0)
        self.gamma = 1.0 / self.feature_dim if gamma is None else float(gamma)
        self._state = []
        for side in ("real", "generated"):
            self._state.append((
                self.add_variable((), "zeros", dtype="float64", name=f"{side}_count"),
                self.add_variable((max_videos, self.feature_dim), "zeros", dtype="float64",
                                  name=f"{side}_features"),
            ))

    def _add(self, batch, side):
        count, buffer = self._state[side]
        start = tf.cast(count, tf.int32)
        n_b = tf.shape(batch)[0]
        check = tf.debugging.assert_less_equal(
            start + n_b, self.max_videos,
            message=f"{self.name}: more videos than max_videos={self.max_videos} in one set; "
                    "build the metric with a larger max_videos")
        with tf.control_dependencies([check]):
            rows = tf.range(start, start + n_b)[:, tf.newaxis]
        buffer.assign(tf.tensor_scatter_nd_update(buffer.value, rows, batch))
        count.assign(count + tf.cast(n_b, tf.float64))

    def features(self, side="real") -> np.ndarray:
        """The features held for `"real"` or `"generated"` (eager)."""
        count, buffer = self._state[("real", "generated").index(side)]
        return buffer.numpy()[: int(count.numpy())]

    def _mean_kernel(self, x, y, same):
        k = (self.gamma * tf.matmul(x, y, transpose_b=True) + self.coef0) ** self.degree
        m = tf.cast(tf.shape(x)[0], tf.float64)
        if same:
            return (tf.reduce_sum(k) - tf.linalg.trace(k)) / tf.maximum(m * (m - 1.0), 1.0)
        n = tf.cast(tf.shape(y)[0], tf.float64)
        return tf.reduce_sum(k) / tf.maximum(m * n, 1.0)

    def result(self):
        (n1, b1), (n2, b2) = self._state
        x = b1[: tf.cast(n1, tf.int32)]
        y = b2[: tf.cast(n2, tf.int32)]
        mmd2 = (self._mean_kernel(x, x, True) + self._mean_kernel(y, y, True)
                - 2.0 * self._mean_kernel(x, y, False))
        defined = tf.logical_and(n1 >= 2.0, n2 >= 2.0)
        return tf.cast(tf.where(defined, mmd2, tf.constant(np.nan, tf.float64)), self.dtype)

    def get_config(self):
        return {**super().get_config(), "max_videos": self.max_videos, "degree": self.degree,
                "gamma": self.gamma, "coef0": self.coef0}


# ----------------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------------

def benchmark_video_features(model=None, *, clips=4, frames=CLIP_LENGTH, input_size=IMAGE_SIZE,
                             batch_size=1, repeats=3, precision="float32",
                             set_size=REFERENCE_SET_SIZE, seed=0) -> Dict:
    """Seconds per clip of FVD's features (preprocessing + I3D), and a set's time.

    Times `video_features` on random uint8 clips `[frames, input_size,
    input_size, 3]` after a warm-up batch (tracing): `repeats` runs over
    `clips` clips, the median per-clip time, extrapolated to `set_size` clips.

    Args:
        model: a model (default: I3D with random weights: the same cost as
            the TF-Hub weights).
        clips: clips per timed run.
        frames, input_size: clip shape before preprocessing (resized to 224).
        batch_size: clips per forward pass.
        repeats: timed runs.
        precision: for the default model (see `load_fvd_model`).
        set_size: clips of the extrapolated set (2048, the usual FVD set).
        seed: seed of the random clips.

    Returns:
        A dict: `seconds_per_clip` (median), `runs` (per-clip seconds of each
        run), `set_seconds` (`set_size` x median), and the settings.

    Example:

    >>> benchmark_video_features(clips=2, repeats=2)["seconds_per_clip"]  # doctest: +SKIP
    0.5
    """
    if model is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_fvd_model("random", precision=precision)
    videos = np.random.default_rng(seed).integers(
        0, 256, (clips, frames, input_size, input_size, 3), dtype=np.uint8)
    extractor = _Extractor.of(model, _size_pair(IMAGE_SIZE), "tf1")
    warm = [videos[i] for i in range(min(batch_size, clips))]
    extractor(warm)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in range(0, clips, batch_size):
            extractor([videos[i] for i in range(b, min(b + batch_size, clips))])
        runs.append((time.perf_counter() - start) / clips)
    median = statistics.median(runs)
    return {"seconds_per_clip": median, "runs": runs, "set_size": set_size,
            "set_seconds": median * set_size, "clips": clips, "frames": frames,
            "input_size": input_size, "image_size": IMAGE_SIZE, "batch_size": batch_size,
            "repeats": repeats, "precision": _model_precision(_logits(model))}
