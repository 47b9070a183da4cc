"""Converts a DeepMind I3D Kinetics checkpoint to a Keras `.keras` file.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017; checkpoints from
github.com/deepmind/kinetics-i3d (`data/checkpoints/*/model.ckpt`). The
stream (rgb/flow) and the class count (400/600) are read from the checkpoint.

Usage:

    python tools/convert_checkpoint.py \
        --checkpoint=kinetics-i3d/data/checkpoints/rgb_imagenet/model.ckpt \
        --output=saved_models/i3d_rgb_imagenet.keras

    # Kinetics-600, a fixed clip length, overwrite an existing file:
    python tools/convert_checkpoint.py \
        --checkpoint=kinetics-i3d/data/checkpoints/rgb_scratch_kin600 \
        --output=/tmp/i3d_kin600.keras --frames=64 --overwrite

The `.keras` file loads with `keras.models.load_model(path)` after
`import i3d_keras` (which registers the custom layers).
"""

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "DeepMind checkpoint prefix "
                                  "(.../model.ckpt) or its directory.")
_OUTPUT = flags.DEFINE_string("output", None, "Output path, ending in .keras.")
_FRAMES = flags.DEFINE_integer("frames", None, "Static clip length of the model (default: "
                               "any).", lower_bound=1)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Frame size of the model (the paper: "
                                   "224).", lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing output file.")


def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments: {argv[1:]}")
    checkpoint, output = _CHECKPOINT.value, _OUTPUT.value
    if not checkpoint or not output:
        console.fail("both --checkpoint and --output are required. Received: "
                     f"checkpoint={checkpoint!r}, output={output!r}")
    if not output.endswith(".keras"):
        console.fail(f"--output must end in '.keras'. Received: output={output!r}")
    outputs.check_output_file(output, flag="output", overwrite=_OVERWRITE.value,
                              create_parent=True,
                              inputs=[checkpoint, checkpoint + ".index",
                                      checkpoint + ".data-00000-of-00001"])

    import i3d_keras  # noqa: F401, PLC0415 (sets TF options, registers layers)
    from i3d_keras.weights import deepmind  # noqa: PLC0415

    try:
        model = deepmind.from_deepmind_checkpoint(checkpoint, frames=_FRAMES.value,
                                                  image_size=_IMAGE_SIZE.value)
    except (FileNotFoundError, ValueError) as error:
        console.fail(str(error))
    with outputs.atomic_path(output) as tmp:
        model.save(tmp)
    print(f"Wrote {output}: {model.name}, input {tuple(model.inputs[0].shape)}, "
          f"output {tuple(model.outputs[0].shape)}, {model.count_params()} parameters")


if __name__ == "__main__":
    console.run(main)
