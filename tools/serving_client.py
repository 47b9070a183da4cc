"""Sends a video to TF Serving (REST or gRPC) and prints the top classes.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.
The video is decoded with OpenCV at 25 fps (short side 256); the server's
`serving_default` signature (from tools/export.py) crops and scales in its graph.
For two-stream models, flow is computed here (--flow_method) and sent as well.

Usage:
  # Start TF Serving (see docs/guides/export.md), then:
  python tools/serving_client.py --model_name i3d clip.mp4                  # REST :8501
  python tools/serving_client.py --protocol grpc --port 8500 --model_name i3d clip.mp4
  python tools/serving_client.py --two_stream --flow_method dis clip.mp4
  # Write the request instead of sending it (e.g. for curl -d @request.json):
  python tools/serving_client.py --dry_run request.json clip.mp4
"""

import re

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_PROTOCOL = flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "Request protocol.")
_HOST = flags.DEFINE_string("host", "localhost", "TF Serving host.")
_PORT = flags.DEFINE_integer("port", None, "Port (default 8501 REST, 8500 gRPC).",
                             lower_bound=1, upper_bound=65535)
_NAME = flags.DEFINE_string("model_name", "i3d", "Served model name.")
_TWO_STREAM = flags.DEFINE_bool("two_stream", False, "Send flow as well (two-stream model).")
_FLOW = flags.DEFINE_enum("flow_method", "tvl1", ["tvl1", "dis", "farneback"], "Flow method.")
_FRAMES = flags.DEFINE_integer("max_frames", 250, "Send at most this many frames (10 s).",
                               lower_bound=1)
_DRY_RUN = flags.DEFINE_string("dry_run", None, "Write the REST JSON request here; send nothing.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --dry_run file.")
#: Flags of sending, which a --dry_run (a REST body written to a file) does not use.
_SENDING = ("protocol", "host", "port", "model_name")

flags.register_validator(
    "host", lambda host: bool(re.fullmatch(r"[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:.]+\]", host)),
    message="expected a host name or address (letters, digits, '.', '-'; an IPv6 address "
            "in [ ]), without a scheme, port or path: give the port with --port")


def _answer_error(error):
    """`(message, exit code)` for an exception while sending."""
    code = getattr(error, "code", None)
    status = code() if callable(code) else None  # a grpc.RpcError
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    where = f"{_HOST.value}:{_PORT.value or (8500 if _PROTOCOL.value == 'grpc' else 8501)}"
    if isinstance(error, OSError) or getattr(status, "name", "") in ("UNAVAILABLE",
                                                                     "DEADLINE_EXCEEDED"):
        return f"could not reach TF Serving at {where}: {details}"
    return f"TF Serving at {where} answered: {details}"


def main(argv):
    videos = argv[1:]
    if len(videos) != 1:
        console.fail("give exactly one video file. Received: "
                     f"{console.plural(len(videos), 'argument')}")
    outputs.check_input_path(videos[0], kind="file", what="the video")
    sending = [f"--{name}" for name in _SENDING if flags.FLAGS[name].present]
    if _DRY_RUN.value and sending:
        console.fail(f"--dry_run writes the REST request to a file and sends nothing, so "
                     f"{', '.join(sending)} would be ignored. Received: --dry_run "
                     f"{_DRY_RUN.value!r} with {', '.join(sending)}")
    if _DRY_RUN.value:
        outputs.check_output_file(_DRY_RUN.value, flag="dry_run", inputs=videos,
                                  overwrite=_OVERWRITE.value)
    from i3d_keras.data import flow as flow_lib  # noqa: PLC0415
    from i3d_keras.data import video  # noqa: PLC0415
    from i3d_keras.export import serving  # noqa: PLC0415

    try:
        frames = video.read_video(videos[0])[: _FRAMES.value]
    except video.VideoDecodeError as error:
        console.fail(f"{error}")
    flow = flow_lib.compute_flow(frames, method=_FLOW.value) if _TWO_STREAM.value else None
    inputs = serving.request_inputs(frames, flow)
    try:
        if _DRY_RUN.value:
            outputs.write_json(_DRY_RUN.value, serving.rest_payload(inputs), indent=None)
            print(f"wrote {_DRY_RUN.value}: inputs "
                  f"{ {k: list(v.shape) for k, v in inputs.items()} }")
            return
        if _PROTOCOL.value == "rest":
            answer = serving.send_rest(serving.rest_payload(inputs), _NAME.value, _HOST.value,
                                       _PORT.value or serving.REST_PORT)["outputs"]
        else:
            answer = serving.send_grpc(serving.grpc_request(inputs, _NAME.value), _HOST.value,
                                       _PORT.value or serving.GRPC_PORT)
    except Exception as error:  # noqa: BLE001 (grpc.RpcError, HTTP errors: the server's message)
        console.fail(_answer_error(error), console.EXIT_FAILED)
    names = answer["top_k_names"][0]
    probs = answer["top_k_probabilities"][0]
    for name, prob in zip(names, probs):
        name = name.decode() if isinstance(name, bytes) else name
        print(f"{float(prob):.4f}  {name}")


if __name__ == "__main__":
    console.run(main, arguments=True)
