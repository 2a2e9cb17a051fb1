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

import argparse
import json
import os
import tempfile

import keras

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import models

VARIANTS = tuple(layers.VARIANTS)
CONVERSIONS = {
    "int8, TensorFlow's ranges": dict(quantization="int8", calibration_statistic="tensorflow"),
    "int8, minmax (default)": dict(quantization="int8", calibration_statistic="minmax"),
    "int8, mean_minmax": dict(quantization="int8", calibration_statistic="mean_minmax"),
    "int16x8": dict(quantization="int16x8"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--calibration", type=int, default=200, help="calibration images (default 200)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = mnist(args.data_dir)
    results = {}
    for variant in args.variants.split(","):
        model = trained_vit(variant, x_train, y_train)
        row = {"float": float(model.evaluate(x_test, y_test, verbose=0)[1])}
        with tempfile.TemporaryDirectory() as folder:
            for name, options in CONVERSIONS.items():
                path = os.path.join(folder, "model.tflite")
                conversion = deploy.convert(
                    model, path, representative_data=x_train[: args.calibration],
                    num_calibration_samples=args.calibration, validation_data=x_test, verbose=False, **options,
                )
                accuracy = deploy.TFLiteModel(path).evaluate(x_test, y_test)
                row[name] = {"accuracy": accuracy, "agreement": conversion.agreement}
        results[variant] = row
        print(variant, json.dumps(row), flush=True)
    print(table(results, args.calibration))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


def mnist(data_dir):
    """The first 12,000 training and 1,000 test images, as floats, with labels."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir)
    train = datasets.images_as_floats(x_train[:12000]), y_train[:12000]
    return train, (datasets.images_as_floats(x_test[:1000]), y_test[:1000])


def trained_vit(variant, x_train, y_train):
    """The ViT of this setting, seeded, after 2 epochs."""
    keras.utils.set_random_seed(0)
    model = models.vit_classifier(variant, (28, 28, 1), patch_size=7, num_classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
    return model


def table(results, calibration):
    names = list(CONVERSIONS)
    lines = [
        "Accuracy on 1,000 MNIST test images / top-1 agreement with the Keras model; "
        f"{calibration} calibration images.",
        "",
        "| variant | float | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for variant, row in results.items():
        cells = [f"{100 * row[n]['accuracy']:.1f} / {100 * row[n]['agreement']:.1f}" for n in names]
        lines.append(f"| {variant} | {100 * row['float']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
