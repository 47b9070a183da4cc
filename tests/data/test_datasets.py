"""Tests for i3d_keras.data.datasets (layouts, prepare_dataset) and the data CLIs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i3d_keras.data import datasets, records
from i3d_keras.data.video import write_video
from i3d_keras.utils import outputs

REPO = Path(__file__).resolve().parents[2]


def _video(path, n=6, seed=0, fps=25):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, rng.integers(0, 255, (n, 24, 32, 3), dtype=np.uint8), fps=fps)
    return path


def _ucf(tmp_path):
    root = tmp_path / "UCF-101"
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n")
    _video(root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    _video(root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi", seed=1)
    # The real dataset's folder/file case mismatch.
    _video(root / "HandstandPushups" / "v_HandStandPushups_g08_c01.avi", seed=2)
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "HandstandPushups/v_HandstandPushups_g08_c01.avi 2\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi 1\n")  # missing on disk
    (lists / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    return root


def test_ucf101_listing(tmp_path):
    root = _ucf(tmp_path)
    listing = datasets.ucf101(root, split=1)
    assert listing.classes == ["ApplyEyeMakeup", "HandstandPushups"]
    assert listing.counts() == {"train": 3, "test": 1}
    hand = [e for e in listing.entries if e.label == 1][0]
    assert Path(hand.path).exists() and hand.label_name == "HandstandPushups"
    with pytest.raises(datasets.DatasetLayoutError, match="trainlist02.txt"):
        datasets.ucf101(root, split=2)
    with pytest.raises(ValueError, match="split"):
        datasets.ucf101(root, split=4)
    with pytest.raises(datasets.DatasetLayoutError, match="does not exist"):
        datasets.ucf101(tmp_path / "nope")


def test_hmdb51_listing(tmp_path):
    root = tmp_path / "hmdb51"
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    for cls in ("brush_hair", "cartwheel"):
        (splits / f"{cls}_test_split1.txt").write_text(
            f"{cls}_a.avi 1\n{cls}_b.avi 2\n{cls}_c.avi 0\n")
    listing = datasets.hmdb51(root if root.exists() else tmp_path, splits_dir=splits)
    assert listing.classes == ["brush_hair", "cartwheel"]
    assert listing.counts() == {"train": 2, "test": 2}
    assert not any(e.path.endswith("_c.avi") for e in listing.entries)  # 0 = unused
    (splits / "bad_test_split1.txt").write_text("x.avi 7\n")
    with pytest.raises(datasets.DatasetLayoutError, match="0|1|2"):
        datasets.hmdb51(tmp_path, splits_dir=splits)
    with pytest.raises(datasets.DatasetLayoutError, match="split3"):
        datasets.hmdb51(tmp_path, splits_dir=splits, split=3)


def test_kinetics_listing(tmp_path):
    root = tmp_path / "k400"
    _video(root / "abseiling" / "aaa_000010_000020.mp4")  # trimmed, in a class folder
    _video(root / "bbb.mp4", n=30)  # a full video: cut to [start, end)
    csv = tmp_path / "val.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "abseiling,aaa,10,20,val\n"
                   "air drumming,bbb,0,1,val\n"
                   "air drumming,ccc,5,15,val\n")
    listing = datasets.kinetics(root, csv)
    assert listing.classes == ["abseiling", "air drumming"]
    by_id = {e.video_id: e for e in listing.entries}
    assert by_id["aaa_000010_000020"].start is None
    assert (by_id["bbb_000000_000001"].start, by_id["bbb_000000_000001"].end) == (0.0, 1.0)
    assert not Path(by_id["ccc_000005_000015"].path).exists()  # reported at conversion
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(datasets.DatasetLayoutError, match="youtube_id"):
        datasets.kinetics(root, tmp_path / "bad.csv")


def test_folder_per_class_and_split_folders(tmp_path):
    _video(tmp_path / "flat" / "b" / "x.mp4")
    _video(tmp_path / "flat" / "a" / "sub" / "y.avi")
    listing = datasets.folder_per_class(tmp_path / "flat")
    assert listing.classes == ["a", "b"] and len(listing.entries) == 2
    _video(tmp_path / "split" / "train" / "a" / "x.mp4")
    _video(tmp_path / "split" / "val" / "b" / "y.mp4")
    listing = datasets.folder_per_class(tmp_path / "split")
    assert listing.counts() == {"train": 1, "val": 1}
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("no videos here")
    with pytest.raises(datasets.DatasetLayoutError, match="No videos found"):
        datasets.folder_per_class(tmp_path / "empty")


def test_csv_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("path,label,start,end\nv/a.mp4,run,1.0,2.5\n"
                                    "/abs/b.mp4,walk,,\n")
    listing = datasets.csv_manifest(tmp_path / "m.csv")
    assert listing.classes == ["run", "walk"]
    a, b = listing.entries
    assert a.path == str(tmp_path / "v" / "a.mp4") and (a.start, a.end) == (1.0, 2.5)
    assert b.path == "/abs/b.mp4" and b.start is None and b.label == 1
    (tmp_path / "n.csv").write_text("x.mp4,2\ny.mp4,0\n")  # no header, int labels
    assert [e.label for e in datasets.csv_manifest(tmp_path / "n.csv").entries] == [2, 0]
    (tmp_path / "e.csv").write_text("path,label\n")
    with pytest.raises(datasets.DatasetLayoutError, match="lists no videos"):
        datasets.csv_manifest(tmp_path / "e.csv")
    with pytest.raises(datasets.DatasetLayoutError, match="start/end"):
        (tmp_path / "s.csv").write_text("a.mp4,run,soon,later\n")
        datasets.csv_manifest(tmp_path / "s.csv")


def test_prepare_dataset_reports_bad_videos_and_resumes(tmp_path, bad_inputs_listing):
    listing = bad_inputs_listing
    out = tmp_path / "out"
    report = datasets.prepare_dataset(listing, out, "toy", flow_method="dis", short_side=24,
                                      videos_per_shard=3, num_workers=1, progress=False)
    assert report.total == 10 and report.converted == 6 and len(report.failed) == 4
    assert report.converted + len(report.failed) == report.total
    reasons = "\n".join(f"{p}: {r}" for p, r in report.failed)
    for expected in ("empty", "junk.mp4", "outside the video", "does not exist"):
        assert expected in reasons
    shards = sorted(out.glob("toy_all-*-of-00004.tfrecord"))
    assert len(shards) == 4
    got = records.read_examples(shards, with_rgb=True, with_flow=True)
    assert len(got) == 6 and all(g["flow"].shape[:3] == g["rgb"].shape[:3] for g in got)
    meta = records.read_metadata(out / "toy.metadata.json")
    assert meta["classes"] == ["a", "b"] and meta["counts"] == {"all": 6}
    assert meta["flow"]["method"] == "dis" and meta["preprocessing"]["short_side"] == 24
    assert meta["splits"]["all"]["videos_per_class"] == {"a": 3, "b": 3}
    saved = json.loads((out / "toy.report.json").read_text())
    assert saved["converted"] == 6 and len(saved["failed"]) == 4
    assert "4 failed" in report.summary()
    again = datasets.prepare_dataset(listing, out, "toy", flow_method="dis", short_side=24,
                                     videos_per_shard=3, num_workers=1, progress=False)
    assert again.shards_resumed == 4 and again.shards_written == 0
    assert again.converted == 6 and len(again.failed) == 4
    with pytest.raises(datasets.DatasetLayoutError, match="empty"):
        datasets.prepare_dataset([], out, "none")


def test_prepare_dataset_again_with_other_sharding_reads_no_old_shard(tmp_path,
                                                                      bad_inputs_listing):
    out = tmp_path / "out"
    options = dict(short_side=24, num_workers=1, progress=False)
    # Another dataset whose name starts with this one's, made first: neither
    # mistaken for this one nor touched.
    datasets.prepare_dataset(bad_inputs_listing, out, "toy_x", videos_per_shard=3, **options)
    datasets.prepare_dataset(bad_inputs_listing, out, "toy", videos_per_shard=3, **options)
    others = {p: p.read_bytes() for p in out.glob("toy_x*")}
    assert len(list(out.glob("toy_all-*-of-00004.tfrecord"))) == 4
    with pytest.raises(outputs.OutputError, match="videos_per_shard 3 there, 5 now"):
        datasets.prepare_dataset(bad_inputs_listing, out, "toy", videos_per_shard=5, **options)
    assert len(list(out.glob("toy_all-*-of-00004.tfrecord"))) == 4
    report = datasets.prepare_dataset(bad_inputs_listing, out, "toy", videos_per_shard=5,
                                      overwrite=True, **options)
    assert report.shards_written == 2
    # The old four shards and their markers are gone: the split's pattern
    # reads each video once.
    assert sorted(p.name for p in out.glob("toy_all-*")) == [
        f"toy_all-0000{i}-of-00002.tfrecord{end}" for i in range(2) for end in ("", ".done.json")]
    meta = records.read_metadata(out / "toy.metadata.json")
    assert len(records.read_examples(sorted(out.glob(meta["splits"]["all"]["file_pattern"])))
               ) == 6
    assert {p: p.read_bytes() for p in out.glob("toy_x*")} == others


def test_prepare_dataset_in_worker_processes(tmp_path, bad_inputs_listing):
    listing = bad_inputs_listing
    report = datasets.prepare_dataset(listing, tmp_path / "out", "par", short_side=24,
                                      videos_per_shard=5, num_workers=2, progress=False)
    assert report.converted == 6 and len(report.failed) == 4 and report.shards_written == 2
    assert not any("crashed" in r for _, r in report.failed)


def _run_tool(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=300)


def test_prepare_dataset_cli(tmp_path):
    missing = _run_tool("tools/prepare_dataset.py", "--layout", "folder", "--root",
                        str(tmp_path / "nope"), "--output_dir", str(tmp_path / "o"))
    assert missing.returncode == 2 and "--root: no such folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    _video(tmp_path / "src" / "a" / "x.avi")
    (tmp_path / "src" / "a" / "bad.mp4").write_bytes(b"bad" * 30)
    ok = _run_tool("tools/prepare_dataset.py", "--layout", "folder", "--root",
                   str(tmp_path / "src"), "--output_dir", str(tmp_path / "o"),
                   "--workers", "1", "--short_side", "24")
    assert ok.returncode == 1, ok.stderr  # some inputs failed (README, "Tools")
    assert "Converted 1 of 2 videos (1 failed)" in ok.stdout and "bad.mp4" in ok.stdout
    assert (tmp_path / "o" / "folder.metadata.json").is_file()


def test_extract_flow_cli_no_videos(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _run_tool("tools/extract_flow.py", "--input", str(tmp_path / "empty"),
                       "--output_dir", str(tmp_path / "f"))
    assert result.returncode != 0 and "no videos found" in result.stderr
    assert "Traceback" not in result.stderr
