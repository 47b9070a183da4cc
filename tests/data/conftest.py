"""Fixtures shared by the data tests: small real videos written with OpenCV."""

import numpy as np
import pytest

from i3d_keras.data import datasets
from i3d_keras.data.video import write_video


def write_test_video(path, n=6, seed=0, fps=25):
    """A random 24x32 video of `n` frames at `path` (folders created)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, rng.integers(0, 255, (n, 24, 32, 3), dtype=np.uint8), fps=fps)
    return path


@pytest.fixture
def bad_inputs_listing(tmp_path):
    """Ten entries in two classes: six good videos and four bad inputs (an empty
    file, a junk file, a time window outside its video, a missing file)."""
    root = tmp_path / "src"
    for i in range(3):
        write_test_video(root / "a" / f"a{i}.avi", seed=i)
        write_test_video(root / "b" / f"b{i}.avi", seed=10 + i)
    (root / "b" / "empty.mp4").write_bytes(b"")
    (root / "b" / "junk.mp4").write_bytes(b"junk" * 64)
    listing = datasets.folder_per_class(root)
    extra = [datasets.VideoEntry(str(root / "a" / "a0.avi"), 0, "a", "", 10.0, 12.0),
             datasets.VideoEntry(str(root / "a" / "missing.avi"), 0, "a")]
    return datasets.Listing(listing.entries + extra, listing.classes)
