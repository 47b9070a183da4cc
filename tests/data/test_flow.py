"""Tests for i3d_keras.data.flow (TV-L1 / DIS / Farneback, batch extraction)."""

import numpy as np
import pytest

from i3d_keras.data import flow as flow_lib
from i3d_keras.data.video import read_video, write_video


def _translating(n=4, size=48, dx=2, seed=0):
    """A smooth random texture shifted right by dx pixels per frame."""
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.uniform(0, 255, (size, size + n * dx)).astype(np.float32),
                           (0, 0), 2.0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = [big[:, (n - t) * dx:(n - t) * dx + size] for t in range(n)]
    return np.repeat(np.stack(frames)[..., None], 3, -1)


@pytest.mark.parametrize("method", ["tvl1", "dis", "farneback"])
def test_translation_is_recovered(method):
    frames = _translating(n=3, dx=2)
    flow = flow_lib.compute_flow(frames, method)
    assert flow.shape == (3, 48, 48, 2) and flow.dtype == np.float32
    inner = flow[:2, 8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(2 / 20, abs=0.02)  # 2 px right
    assert np.median(np.abs(inner[..., 1])) < 0.02
    np.testing.assert_array_equal(flow[2], flow[1])  # last field repeated (alignment)


def test_clipping_and_single_frame():
    frames = _translating(n=2, dx=2)
    flow = flow_lib.compute_flow(frames, "dis", bound=1.0)  # 2 px clipped to 1 px
    assert flow.max() <= 1.0 and flow.min() >= -1.0
    assert np.median(flow[0, 8:-8, 8:-8, 0]) == pytest.approx(1.0)
    np.testing.assert_array_equal(flow_lib.compute_flow(frames[:1], "dis"),
                                  np.zeros((1, 48, 48, 2), np.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        flow_lib.create_flow_estimator("lucas")
    with pytest.raises(ValueError, match="uint8"):
        flow_lib.compute_flow(np.zeros((2, 8, 8, 3), np.float32))


def test_save_load_roundtrip_within_quantisation(tmp_path):
    flow = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 2)).astype(np.float32)
    path = flow_lib.save_flow(tmp_path / "a" / "x.flow.npz", flow, method="dis")
    assert np.abs(flow_lib.load_flow(path) - flow).max() <= flow_lib.FLOW_QUANT_MAX_ERROR + 1e-6
    assert not list(tmp_path.rglob("*.tmp*"))


def test_extract_flow_reports_failures_and_resumes(tmp_path):
    root = tmp_path / "videos"
    (root / "a").mkdir(parents=True)
    write_video(root / "a" / "one.avi", _translating(n=4, size=32), fps=25)
    write_video(root / "two.avi", _translating(n=3, size=32, seed=1), fps=25)
    (root / "a" / "bad.mp4").write_bytes(b"garbage" * 20)
    videos = [root / "a" / "one.avi", root / "two.avi", root / "a" / "bad.mp4"]
    out = tmp_path / "flow"
    report = flow_lib.extract_flow(videos, out, method="dis", root=root, num_workers=1,
                                   short_side=None, progress=False)
    assert len(report["converted"]) == 2 and not report["skipped"]
    assert len(report["failed"]) == 1 and "bad.mp4" in report["failed"][0][0]
    assert "could not open" in report["failed"][0][1]
    flow = flow_lib.load_flow(out / "a" / "one.avi.flow.npz")
    assert flow.shape == (4, 32, 32, 2)
    again = flow_lib.extract_flow(videos, out, method="dis", root=root, num_workers=1,
                                  short_side=None, progress=False)
    assert len(again["skipped"]) == 2 and not again["converted"] and len(again["failed"]) == 1


def test_progress_line_has_eta():
    import io

    from i3d_keras.data.parallel import Progress

    stream = io.StringIO()
    bar = Progress(4, desc="flow", stream=stream, interval=0)
    bar.update(1)
    bar.update(1, failed=1)
    line = stream.getvalue().splitlines()[-1]
    assert "2/4" in line and "ETA" in line and "1 failed" in line


def test_tvl1_matches_deepmind_reference_flow(shared_data):
    """Our TV-L1 on the official cricket clip vs. the flow DeepMind released."""
    videos = shared_data / "videos"
    rgb = read_video(videos / "v_CricketShot_g04_c01_rgb.gif", short_side=None, max_frames=32)
    ref = read_video(videos / "v_CricketShot_g04_c01_flow.gif", short_side=None, max_frames=32)
    ref = ref[30, ..., :2].astype(np.float32) / 255 - 0.5  # R, G = flow + 0.5
    ours = flow_lib.compute_flow(rgb[30:32], "tvl1")[0]
    corr_x = np.corrcoef(ours[..., 0].ravel(), ref[..., 0].ravel())[0, 1]
    corr_y = np.corrcoef(ours[..., 1].ravel(), ref[..., 1].ravel())[0, 1]
    assert corr_x > 0.85 and corr_y > 0.6, (corr_x, corr_y)
