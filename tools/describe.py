"""Prints I3D's endpoints: output shapes, receptive fields, strides, parameters, MACs.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017,
Sec. 2.2 (spatial versus temporal receptive fields).

Usage:
  python tools/describe.py                              # RGB I3D, 64x224x224
  python tools/describe.py --stream flow --frames 250   # a whole 10 s flow clip
  python tools/describe.py --model runs/rgb/best.keras  # any saved model
  python tools/describe.py --model runs/rgb/best.keras --frames 250   # for 10 s clips
"""

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

_STREAM = flags.DEFINE_enum("stream", "rgb", ["rgb", "flow", "two_stream"], "Which network.")
_FRAMES = flags.DEFINE_integer("frames", 64, "Clip length in frames.", lower_bound=1)
_SIZE = flags.DEFINE_integer("image_size", 224, "Frame height and width in pixels.",
                             lower_bound=1)
_CLASSES = flags.DEFINE_integer("num_classes", 400, "Number of classes.", lower_bound=1)
_MODEL = flags.DEFINE_string("model", None, "A saved .keras model to describe instead "
                             "(its streams and classes; --frames and --image_size, when "
                             "given, set the clip).")
#: What a saved model fixes itself: given with --model, a usage error.
_BUILT_ONLY = ("stream", "num_classes")


def main(argv):
    del argv
    import i3d_keras  # noqa: PLC0415 (after the environment is set)
    from i3d_keras.models.receptive_field import format_table  # noqa: PLC0415

    if _MODEL.value:
        given = [f"--{name}" for name in _BUILT_ONLY if flags.FLAGS[name].present]
        if given:
            console.fail(f"{' and '.join(given)} only apply to a network built here; a saved "
                         "--model has its own (give --frames / --image_size to set its clip). "
                         f"Received: --model {_MODEL.value!r} with {', '.join(given)}")
        from i3d_keras.models.clip_shape import KEEP, with_clip_shape  # noqa: PLC0415
        from i3d_keras.weights import pretrained  # noqa: PLC0415

        try:
            model = pretrained.load_keras_model(_MODEL.value)
            if flags.FLAGS["frames"].present or flags.FLAGS["image_size"].present:
                model = with_clip_shape(
                    model, _FRAMES.value if flags.FLAGS["frames"].present else KEEP,
                    _SIZE.value if flags.FLAGS["image_size"].present else KEEP)
        except (FileNotFoundError, ValueError) as error:
            console.fail(f"--model: {error}")
        input_shape = None
    else:
        def build(stream):
            return i3d_keras.InceptionI3D(_CLASSES.value, stream, frames=_FRAMES.value,
                                          image_size=_SIZE.value)
        if _STREAM.value == "two_stream":
            model = i3d_keras.TwoStreamI3D(build("rgb"), build("flow"))
        else:
            model = build(_STREAM.value)
        input_shape = None
    try:
        rows = i3d_keras.receptive_fields(model, input_shape=input_shape)
    except ValueError as error:
        console.fail(f"{error}")
    print(f"{model.name}: input {[tuple(t.shape[1:]) for t in model.inputs]}")
    print(format_table(rows))


if __name__ == "__main__":
    console.run(main)
