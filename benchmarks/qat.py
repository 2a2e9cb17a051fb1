"""Post-training against quantization-aware int8: how closely each file follows the float model.

The ViTs are those of `int8_fidelity.py` (`vit_classifier(variant, (28, 28,
1), patch_size=7, num_classes=10)`, `keras.utils.set_random_seed(0)`, Adam,
2 epochs, batch 64 on the first 12,000 MNIST training images). Each is
converted twice: post-training (`deploy.convert`, minmax ranges of 200
training images) and after a quantization-aware fine-tune
(`quantization.quantize_model`, ranges from the same 200 images, then
`--qat-epochs` epochs on the 12,000 images at Adam 1e-4, batch 64), converted
from its trained ranges without calibration data. Scored on the first 1,000
test images: accuracy, and top-1 agreement with the float model.

    KERAS_BACKEND=tensorflow python benchmarks/qat.py --data-dir ../shared/data
"""

import argparse
import json
import os
import tempfile

import keras
import numpy as np

from keras_superattn import datasets
from keras_superattn import deploy
from keras_superattn import layers
from keras_superattn import models
from keras_superattn import quantization
from keras_superattn.deploy.runtime import decisions

VARIANTS = tuple(layers.VARIANTS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    results = vits(args)
    print(table(results, args.qat_epochs), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


def vits(args):
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(args.data_dir)
    x_train, y_train = datasets.images_as_floats(x_train[:12000]), y_train[:12000]
    x_test, y_test = datasets.images_as_floats(x_test[:1000]), y_test[:1000]
    rows = {}
    for variant in args.variants.split(","):
        keras.utils.set_random_seed(0)
        model = models.vit_classifier(variant, (28, 28, 1), patch_size=7, num_classes=10)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
        float_outputs = model.predict(x_test, verbose=0)
        row = {"float": float(np.mean(decisions(float_outputs) == y_test))}
        quantized = quantization.quantize_model(model, x_train[:200])
        quantized.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
        quantized.fit(x_train, y_train, batch_size=64, epochs=args.qat_epochs, verbose=0)
        with tempfile.TemporaryDirectory() as folder:
            for name, source, options in (
                ("post-training", model, dict(representative_data=x_train[:200], num_calibration_samples=200)),
                ("quantization-aware", quantized, {}),
            ):
                path = os.path.join(folder, "model.tflite")
                deploy.convert(source, path, validation_data=x_test[:64], verbose=False, **options)
                got = decisions(deploy.TFLiteModel(path).predict(x_test))
                row[name] = {
                    "accuracy": float(np.mean(got == y_test)),
                    "agreement": float(np.mean(got == decisions(float_outputs))),
                }
        rows[variant] = row
        print(variant, json.dumps(row), flush=True)
    return rows


def table(rows, epochs):
    lines = [
        "Accuracy on 1,000 MNIST test images / top-1 agreement with the float model; post-training "
        f"int8 calibrated on 200 images; quantization-aware: {epochs} epoch(s) on 12,000 images.",
        "",
        "| variant | float | post-training int8 | quantization-aware int8 |",
        "|---|---|---|---|",
    ]
    for variant, row in rows.items():
        cells = [f"{100 * row[n]['accuracy']:.1f} / {100 * row[n]['agreement']:.1f}" for n in
                 ("post-training", "quantization-aware")]
        lines.append(f"| {variant} | {100 * row['float']:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
