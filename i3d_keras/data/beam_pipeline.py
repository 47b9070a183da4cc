"""The dataset conversion of `datasets.prepare_dataset` as an Apache Beam pipeline.

For datasets too large for one machine (Kinetics has over 300k videos): the
same per-video work (decode at 25 fps / short side 256, optional flow, JPEG and
PNG encoding; Carreira & Zisserman, CVPR 2017) runs as a Beam `ParDo`, and
Beam writes the shards (`NAME_SPLIT-0000i-of-0000n.tfrecord`, the same
SequenceExample format) -- locally with the DirectRunner or on any Beam
runner (Dataflow, Flink, Spark) with the usual pipeline options.

Optional extra: `pip install apache-beam` (or `pip install i3d_keras[beam]`).
Apache Beam is imported only inside this module. Failed videos are written to
`NAME.beam_failures.jsonl` and listed in the returned report, as with
`prepare_dataset`. Unlike `prepare_dataset`, a rerun recomputes everything
(Beam runners provide their own retries).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import apache_beam as beam

from i3d_keras.data import datasets, records
from i3d_keras.data import flow as flow_lib

PathLike = Union[str, os.PathLike]


class _ConvertVideo(beam.DoFn):
    """Decodes and encodes one video; failures go to the "failed" output."""

    def __init__(self, opts: Dict[str, Any]):
        super().__init__()
        self._opts = opts

    def process(self, item):
        shard, entry = item
        try:
            encoded = datasets._convert_entry((entry, self._opts))
            example = datasets._entry_example(entry, encoded, self._opts)
        except Exception as e:  # one bad video never stops the pipeline
            yield beam.pvalue.TaggedOutput("failed", json.dumps(
                {"path": entry.path, "reason": f"{type(e).__name__}: {e}"}))
            return
        yield shard, example, json.dumps(
            {"split": datasets._split_key(entry.split), "label_name": entry.label_name,
             "video_id": entry.video_id, "shard": shard})


class _WriteShard(beam.DoFn):
    """Writes one shard's records (TensorFlow's writer: local paths or gs://)."""

    def __init__(self, output_dir: str):
        super().__init__()
        self._output_dir = output_dir

    def process(self, keyed):
        shard, examples = keyed
        n = records.write_records(os.path.join(self._output_dir, shard), examples)
        yield shard, n


def build_pipeline(pipeline: "beam.Pipeline", entries: Sequence[datasets.VideoEntry],
                   output_dir: PathLike, name: str, opts: Dict[str, Any],
                   videos_per_shard: int = 100) -> Dict[str, List[datasets.VideoEntry]]:
    """Adds the conversion to `pipeline` (does not run it).

    Shards are planned exactly as in `datasets.plan_shards`, so the file names
    match `prepare_dataset`'s. Returns the plan {shard name: entries}.
    """
    output_dir = str(output_dir)
    plan = datasets.plan_shards(entries, name, videos_per_shard)
    pairs = [(shard, e) for shard, items in plan.items() for e in items]
    results = (pipeline
               | "ListVideos" >> beam.Create(pairs)
               | "Reshuffle" >> beam.Reshuffle()
               | "Convert" >> beam.ParDo(_ConvertVideo(opts)).with_outputs("failed", main="ok"))
    (results.ok
     | "KeyByShard" >> beam.Map(lambda r: (r[0], r[1]))
     | "GroupShards" >> beam.GroupByKey()
     | "WriteShards" >> beam.ParDo(_WriteShard(output_dir)))
    (results.ok | "ConvertedInfo" >> beam.Map(lambda r: r[2])
     | "WriteConverted" >> beam.io.WriteToText(
         os.path.join(output_dir, f"{name}.beam_converted"), file_name_suffix=".jsonl",
         shard_name_template=""))
    (results.failed | "WriteFailures" >> beam.io.WriteToText(
        os.path.join(output_dir, f"{name}.beam_failures"), file_name_suffix=".jsonl",
        shard_name_template=""))
    return plan


def run(listing: Union[datasets.Listing, Sequence[datasets.VideoEntry]], output_dir: PathLike,
        name: str, classes: Optional[Sequence[str]] = None, flow_method: Optional[str] = None,
        fps: Optional[float] = 25.0, short_side: Optional[int] = 256, jpeg_quality: int = 90,
        flow_format: str = "png", videos_per_shard: int = 100,
        max_frames: Optional[int] = None,
        pipeline_args: Optional[List[str]] = None,
        overwrite: bool = False) -> datasets.PrepareReport:
    """Runs the conversion with Beam and writes metadata like `prepare_dataset`.

    Args:
      listing: a `datasets.Listing` or a list of `VideoEntry`.
      output_dir: destination (a local folder for the DirectRunner; a shared
        file system path for distributed runners).
      name: as in `datasets.prepare_dataset`, and so are `classes`,
        `flow_method`, `fps`, `short_side`, `jpeg_quality`, `flow_format`,
        `videos_per_shard` and `max_frames`.
      pipeline_args: Beam options, e.g. ["--runner=DirectRunner"] (default).
      overwrite: convert again into a folder that holds dataset `name`. A
        Beam run cannot resume (it converts every video), so any earlier
        shards of `name` are refused without it
        (`datasets.claim_output_dir`).

    Returns:
      A `datasets.PrepareReport`.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    t0 = time.monotonic()
    entries, classes = datasets.entries_and_classes(listing, classes, flow_method)
    # The settings prepare_dataset records (seed 0: the same shards), so that
    # either path refuses the other's dataset made with other settings.
    settings = {"fps": fps, "short_side": short_side, "jpeg_quality": jpeg_quality,
                "flow_format": flow_format, "flow_method": flow_method,
                "max_frames": max_frames, "videos_per_shard": videos_per_shard, "seed": 0}
    planned = datasets.plan_shards(entries, name, videos_per_shard)
    output_dir, _ = datasets.claim_output_dir(output_dir, name, entries, classes, settings,
                                              planned, overwrite=overwrite, resumable=False)
    for shard in planned:  # a local run's resume markers: these shards are written anew
        (output_dir / (shard + ".done.json")).unlink(missing_ok=True)
    opts = {"fps": fps, "short_side": short_side, "jpeg_quality": jpeg_quality,
            "flow_format": flow_format, "flow_method": flow_method, "max_frames": max_frames,
            "cv2_threads": 1}
    options = PipelineOptions(pipeline_args or ["--runner=DirectRunner"])
    with beam.Pipeline(options=options) as p:
        plan = build_pipeline(p, entries, output_dir, name, opts, videos_per_shard)
    for shard in plan:  # shards whose videos all failed: write them empty
        if not (Path(output_dir) / shard).exists():
            records.write_records(Path(output_dir) / shard, [])

    def _read_jsonl(path: Path) -> List[Dict[str, Any]]:
        if not path.is_file():
            return []
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]

    converted = _read_jsonl(Path(output_dir) / f"{name}.beam_converted.jsonl")
    failed = _read_jsonl(Path(output_dir) / f"{name}.beam_failures.jsonl")
    report = datasets.PrepareReport(total=len(entries), converted=len(converted),
                                    failed=[(f["path"], f["reason"]) for f in failed])
    by_split = Counter(c["split"] for c in converted)
    per_class: Dict[str, Counter] = defaultdict(Counter)
    for c in converted:
        per_class[c["split"]][c["label_name"]] += 1
    report.counts = dict(by_split)
    splits_meta = {}
    for split in sorted(Counter(datasets._split_key(e.split) for e in entries)):
        shards = sorted(Path(output_dir).glob(records.shard_pattern(f"{name}_{split}")))
        report.shards_written += len(shards)
        splits_meta[split] = {
            "num_videos": by_split[split], "num_shards": len(shards),
            "file_pattern": records.shard_pattern(f"{name}_{split}"),
            "videos_per_class": dict(sorted(per_class[split].items())),
        }
    metadata = {
        "name": name, "classes": classes, "num_classes": len(classes),
        "counts": dict(by_split), "splits": splits_meta, "num_failed": len(failed),
        "preprocessing": {
            "decoder": "OpenCV (FFmpeg backend)", "fps": fps,
            "resampling": "nearest-frame timestamps", "short_side": short_side,
            "resize": "bilinear (cv2.INTER_LINEAR)", "rgb_encoding": f"JPEG quality {jpeg_quality}",
            "max_frames": max_frames, "pipeline": "Apache Beam",
        },
        "flow": None if flow_method is None else {
            "method": flow_method, "bound_pixels": flow_lib.FLOW_BOUND, "format": flow_format,
            "alignment": "flow[t] = motion frame t -> t+1; last field repeated",
            "quantization": records.FLOW_QUANTIZATION,
        },
        "record_format": "tf.train.SequenceExample, see i3d_keras.data.records",
    }
    report.metadata_path = str(records.write_metadata(output_dir, name, metadata))
    report.seconds = time.monotonic() - t0
    return report
