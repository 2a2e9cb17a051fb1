"""How closely int8 (and int16x8) files follow their Keras model, per calibration.

The setting of the int8-fidelity issue: a ViT per variant
(`vit_classifier(variant, (28, 28, 1), patch_size=7, num_classes=10)`),
`keras.utils.set_random_seed(0)`, Adam, 2 epochs, batch 64 on the first
12,000 MNIST training images; scored on the first 1,000 test images, which
are also the held-out samples the agreement is measured on. Calibration:
the first `--calibration` training images.

    KERAS_BACKEND=tensorflow python benchmarks/int8_fidelity.py --data-dir ../shared/data

Prints a markdown table: float accuracy, then per conversion the file's
accuracy and its top-1 agreement with the Keras model.
"""

import json
import os

import harness

from keras_superattn import deploy
from keras_superattn import layers

VARIANTS = tuple(layers.VARIANTS)
CONVERSIONS = {
    "int8, TensorFlow's ranges": dict(quantization="int8", calibration_statistic="tensorflow"),
    "int8, minmax (default)": dict(quantization="int8", calibration_statistic="minmax"),
    "int8, mean_minmax": dict(quantization="int8", calibration_statistic="mean_minmax"),
    "int16x8": dict(quantization="int16x8"),
}


def main():
    parser = harness.parser(__doc__)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--calibration", type=int, default=200, help="calibration images (default 200)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = harness.parse(parser)
    sizes = dict(train=256, test=64) if args.smoke else {}
    calibration = 16 if args.smoke else args.calibration
    (x_train, y_train), (x_test, y_test) = harness.mnist(args.data_dir, **sizes)
    results = {}
    for variant in args.variants.split(","):
        model = harness.trained_vit(variant, x_train, y_train, epochs=1 if args.smoke else 2)
        row = {"float": float(model.evaluate(x_test, y_test, verbose=0)[1])}
        with harness.scratch() as folder:
            for name, options in CONVERSIONS.items():
                path = os.path.join(folder, "model.tflite")
                conversion = deploy.convert(
                    model, path, representative_data=x_train[:calibration],
                    num_calibration_samples=calibration, validation_data=x_test, verbose=False, **options,
                )
                accuracy = deploy.TFLiteModel(path).evaluate(x_test, y_test)
                row[name] = {"accuracy": accuracy, "agreement": conversion.agreement}
        results[variant] = row
        print(variant, json.dumps(row), flush=True)
    print(table(results, calibration, len(x_test)))
    harness.write(args, results, calibration=calibration)


def table(results, calibration, test_images):
    names = list(CONVERSIONS)
    rows = [
        [variant, f"{100 * row['float']:.1f}"]
        + [f"{100 * row[n]['accuracy']:.1f} / {100 * row[n]['agreement']:.1f}" for n in names]
        for variant, row in results.items()
    ]
    return (
        f"Accuracy on {test_images:,} MNIST test images / top-1 agreement with the Keras model; "
        f"{calibration} calibration images.\n\n" + harness.table(["variant", "float", *names], rows)
    )


if __name__ == "__main__":
    main()
