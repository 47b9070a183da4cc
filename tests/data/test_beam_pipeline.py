"""Tests for i3d_keras.data.beam_pipeline: the dataset conversion on Apache Beam.

apache-beam pins an older protobuf than TensorFlow 2.21 installs, so it is not a
test dependency: `.ci/run` installs it into its own folder and runs this file
with that folder first on PYTHONPATH; elsewhere the test skips.
"""

import pytest

from i3d_keras.data import datasets, records
from i3d_keras.utils import outputs


def test_direct_runner_converts_good_videos_and_reports_bad_ones(tmp_path, bad_inputs_listing):
    pytest.importorskip("apache_beam", reason="apache-beam is an optional extra "
                        "(pip install apache-beam); not installed here")
    from i3d_keras.data import beam_pipeline  # noqa: PLC0415

    report = beam_pipeline.run(bad_inputs_listing, tmp_path / "beam", "bm", short_side=24,
                               videos_per_shard=5, pipeline_args=["--runner=DirectRunner"])
    assert report.converted == 6 and len(report.failed) == 4
    reasons = "\n".join(f"{path}: {reason}" for path, reason in report.failed)
    for expected in ("empty", "junk.mp4", "outside the video", "does not exist"):
        assert expected in reasons
    shards = sorted((tmp_path / "beam").glob("bm_all-*-of-00002.tfrecord"))
    assert len(shards) == 2
    assert len(records.read_examples(shards)) == 6
    assert records.read_metadata(tmp_path / "beam")["counts"] == {"all": 6}


def test_direct_runner_never_replaces_a_dataset_without_overwrite(tmp_path, bad_inputs_listing):
    pytest.importorskip("apache_beam", reason="apache-beam is an optional extra "
                        "(pip install apache-beam); not installed here")
    from i3d_keras.data import beam_pipeline  # noqa: PLC0415

    out = tmp_path / "out"
    datasets.prepare_dataset(bad_inputs_listing, out, "bm", short_side=24, videos_per_shard=3,
                             num_workers=1, progress=False)
    before = {p: p.read_bytes() for p in out.iterdir()}
    # A Beam run cannot resume: the same settings are refused as well as others.
    for per_shard in (3, 5):
        with pytest.raises(outputs.OutputError, match="pass --overwrite"):
            beam_pipeline.run(bad_inputs_listing, out, "bm", short_side=24,
                              videos_per_shard=per_shard)
    assert {p: p.read_bytes() for p in out.iterdir()} == before
    report = beam_pipeline.run(bad_inputs_listing, out, "bm", short_side=24, videos_per_shard=5,
                               overwrite=True)
    assert report.converted == 6
    # The local run's four shards and markers are gone; the record holds the new settings.
    assert sorted(p.name for p in out.glob("bm_all-*")) == [
        "bm_all-00000-of-00002.tfrecord", "bm_all-00001-of-00002.tfrecord"]
    with pytest.raises(outputs.OutputError, match="videos_per_shard 5 there, 3 now"):
        datasets.prepare_dataset(bad_inputs_listing, out, "bm", short_side=24,
                                 videos_per_shard=3, num_workers=1, progress=False)
