"""Converts a video dataset to I3D TFRecord shards (RGB JPEG frames, optional flow).

Decodes at 25 fps with short side 256 (Carreira & Zisserman, CVPR 2017),
optionally computes flow, and writes `NAME_SPLIT-0000i-of-0000n.tfrecord`
shards plus `NAME.metadata.json` and `NAME.report.json` into --output_dir, in
parallel (one process per core), with a progress line and ETA. Rerunning the
same command resumes (finished shards are skipped). Videos that fail (missing,
unreadable, zero frames, clip outside the video, ...) are listed in the final
report with their reason and skipped.

Usage:
  # UCF101, official split 1 (ucfTrainTestlist/ in or beside the root):
  python tools/prepare_dataset.py --layout ucf101 --root data/UCF-101 \
      --split 1 --output_dir data/ucf101_s1 --flow tvl1
  # HMDB51, split 2:
  python tools/prepare_dataset.py --layout hmdb51 --root data/hmdb51 \
      --splits_dir data/testTrainMulti_7030_splits --split 2 --output_dir data/hmdb_s2
  # Kinetics-400 validation from the official CSV:
  python tools/prepare_dataset.py --layout kinetics --root data/k400/val \
      --csv data/k400/validate.csv --output_dir data/k400_val
  # A folder per class, or a CSV manifest (path,label[,start,end][,split]):
  python tools/prepare_dataset.py --layout folder --root my_videos --output_dir out
  python tools/prepare_dataset.py --layout csv --csv manifest.csv --output_dir out
  # The same conversion as an Apache Beam pipeline (pip install apache-beam):
  python tools/prepare_dataset.py --layout folder --root my_videos --output_dir out \
      --beam -- --runner=DirectRunner
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

_LAYOUT = flags.DEFINE_enum("layout", None, ["ucf101", "hmdb51", "kinetics", "folder", "csv"],
                            "Dataset layout.")
_ROOT = flags.DEFINE_string("root", None, "Dataset root folder.")
_SPLITS_DIR = flags.DEFINE_string("splits_dir", None, "UCF101/HMDB51 split files folder.")
_SPLIT = flags.DEFINE_integer("split", 1, "UCF101/HMDB51 official split (1, 2 or 3).")
_CSV = flags.DEFINE_string("csv", None, "Kinetics CSV or CSV manifest.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where shards and metadata go.")
_NAME = flags.DEFINE_string("name", None, "Dataset name (default: layout, plus split).")
_FLOW = flags.DEFINE_enum("flow", "none", ["none", "tvl1", "dis", "farneback"],
                          "Also compute and store optical flow with this method.")
_FLOW_FORMAT = flags.DEFINE_enum("flow_format", "png", ["png", "jpeg"],
                                 "Flow image format (png is lossless).")
_FPS = flags.DEFINE_float("fps", 25.0, "Decode frame rate.")
_SHORT_SIDE = flags.DEFINE_integer("short_side", 256, "Resize the short side to this.")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "RGB JPEG quality.")
_PER_SHARD = flags.DEFINE_integer("videos_per_shard", 100, "Videos per shard.")
_WORKERS = flags.DEFINE_integer("workers", 0, "Worker processes (0: one per core).")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "Keep at most this many frames.")
_BEAM = flags.DEFINE_bool("beam", False, "Run as an Apache Beam pipeline; arguments after "
                          "`--` go to Beam (e.g. --runner=DirectRunner).")


def main(argv):
    if not _LAYOUT.value or not _OUTPUT.value:
        sys.exit("error: --layout and --output_dir are required (see --help)")
    from i3d_keras import datasets  # noqa: PLC0415

    layout = _LAYOUT.value
    if layout in ("kinetics", "csv") and not _CSV.value:
        sys.exit(f"error: --layout {layout} needs --csv")
    if layout != "csv" and not _ROOT.value:
        sys.exit(f"error: --layout {layout} needs --root")
    try:
        listing = datasets.list_dataset(layout, _ROOT.value, splits_dir=_SPLITS_DIR.value,
                                        split=_SPLIT.value, csv_path=_CSV.value)
    except (datasets.DatasetLayoutError, ValueError, OSError) as error:
        sys.exit(f"error: {error}")
    name = _NAME.value or (f"{layout}_split{_SPLIT.value}" if layout in ("ucf101", "hmdb51")
                           else layout)
    flow = None if _FLOW.value == "none" else _FLOW.value
    print(f"{len(listing.entries)} videos, {len(listing.classes)} classes, "
          f"splits {listing.counts()}", file=sys.stderr)
    common = dict(name=name, flow_method=flow, fps=_FPS.value, short_side=_SHORT_SIDE.value,
                  jpeg_quality=_JPEG_QUALITY.value, flow_format=_FLOW_FORMAT.value,
                  videos_per_shard=_PER_SHARD.value, max_frames=_MAX_FRAMES.value)
    if _BEAM.value:
        try:
            from i3d_keras import beam_pipeline  # noqa: PLC0415
            report = beam_pipeline.run(listing, _OUTPUT.value, pipeline_args=argv[1:], **common)
        except ImportError as error:
            sys.exit(f"error: --beam needs Apache Beam ({error}); pip install apache-beam")
    else:
        if len(argv) > 1:
            sys.exit(f"error: unexpected arguments {argv[1:]}")
        report = datasets.prepare_dataset(listing, _OUTPUT.value, num_workers=_WORKERS.value,
                                          **common)
    print(report.summary())
    if report.converted == 0:
        sys.exit("error: no video could be converted (see the reasons above)")


if __name__ == "__main__":
    app.run(main)
