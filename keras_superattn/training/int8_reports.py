"""int8 files of a comparison's best models, post-training and quantization-aware, and their scores."""

import os

import keras
import numpy as np

from keras_superattn.training.runs import LOSSES


def convert_best_models(best_runs, out_dir, data, calibration_samples=300, qat=None):
    """Converts each variant's best checkpoint to int8 `tflite/<variant>_int8.tflite`
    and, with `qat=(config, epochs)`, after a quantization-aware fine-tune to
    `tflite/<variant>_qat_int8.tflite` (`fine_tune_quantized`).

    Returns `{variant: {"int8": (test accuracy, share of the checked samples
    on which the file decides as the Keras model), "qat_int8": (test
    accuracy, share of the test samples on which the file decides as the
    float Keras model)}}`; empty, with a message, where the `tflite` extra
    (TensorFlow and ai-edge-litert) is not installed.
    """
    try:
        from keras_superattn import deploy
        from keras_superattn.deploy.runtime import classification_accuracy
        from keras_superattn.deploy.runtime import decisions
    except ImportError as error:
        print(f"Skipping the int8 conversion ({error}); pip install 'keras-superattn[tflite]'", flush=True)
        return {}
    (x_train, _), (x_test, y_test) = data
    scores = {}
    for variant, run in best_runs.items():
        checkpoint = os.path.join(out_dir, run["checkpoint"])
        path = os.path.join(out_dir, "tflite", f"{variant}_int8.tflite")
        conversion = deploy.convert(
            checkpoint, path, representative_data=x_train[:calibration_samples], verbose=False
        )
        scores[variant] = {"int8": (deploy.TFLiteModel(path).evaluate(x_test, y_test), conversion.agreement)}
        if qat:
            from keras_superattn.quantization import NoQuantizationAwareForm

            config, epochs = qat
            try:
                quantized = fine_tune_quantized(checkpoint, data, config, epochs, calibration_samples)
            except NoQuantizationAwareForm as error:  # Keras' MultiHeadAttention, the tutorials' "mha"
                print(f"--- {variant}: no quantization-aware fine-tune: {error}", flush=True)
                continue
            path = os.path.join(out_dir, "tflite", f"{variant}_qat_int8.tflite")
            deploy.convert(quantized, path, validation_data=x_test[: config.batch_size], verbose=False)
            got = deploy.TFLiteModel(path).predict(x_test)
            want = keras.saving.load_model(checkpoint).predict(x_test, verbose=0, batch_size=config.batch_size)
            agreement = float(np.mean(decisions(got) == decisions(want)))
            scores[variant]["qat_int8"] = (classification_accuracy(got, y_test), agreement)
    return scores


def fine_tune_quantized(checkpoint, data, config, epochs, calibration_samples=300):
    """The model of `checkpoint` made quantization-aware
    (`quantization.quantize_model`, ranges from the first training samples)
    and fine-tuned for `epochs` on the training data at a tenth of
    `config`'s learning rate, constant. `data` is `((x_train, y_train), ...)`,
    the inputs an array or a dict of arrays."""
    from keras_superattn import quantization

    (x_train, y_train), _ = data
    first = keras.tree.map_structure(lambda x: x[:calibration_samples], x_train)
    quantized = quantization.quantize_model(keras.saving.load_model(checkpoint, compile=False), first)
    quantized.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate / 10), loss=LOSSES.get(config.loss, config.loss)
    )
    quantized.fit(x_train, y_train, batch_size=config.batch_size, epochs=epochs, verbose=config.verbose)
    return quantized


def cached_int8_scores(out_dir, variant, checkpoint, representative_data, validation_data, file_scores=None):
    """A generative tutorial's best model as an int8 file with a cached
    decoding step (`deploy.convert_generator`, `tflite/<variant>_cached_int8.tflite`):
    its greedy agreement with the Keras model on `validation_data`'s prompts
    (continued to the full length), cache bytes per token and milliseconds
    per generated token; `file_scores(path) -> dict`, when given, scores the
    file as the tutorial scores its uncached files and overrides those."""
    from keras_superattn import deploy

    path = os.path.join(out_dir, "tflite", f"{variant}_cached_int8.tflite")
    cached = deploy.convert_generator(
        checkpoint, path, representative_data=representative_data, validation_data=validation_data, verbose=False
    )
    scores = {
        "greedy_agreement": cached.greedy_agreement,
        "cache_bytes_per_token": cached.cache_bytes_per_token,
        "ms_per_token": 1e3 * cached.decode_seconds,
    }
    if file_scores is not None:
        scores = {**scores, "greedy_agreement_full_length": cached.greedy_agreement, **file_scores(path)}
    return scores


def post_training_int8_scores(
    out_dir, variant, quantization, checkpoint, representative_data, calibration_samples, validation_data, file_scores
):
    """A generative tutorial's best model as `tflite/<variant>_<quantization>.tflite`
    by post-training quantization (`deploy.convert`: `"int8"`, full integer, or
    `"int8_xnnpack"`, the file for phone CPUs), scored by `file_scores(path) -> dict`,
    with the next-token agreement of the conversion's check."""
    from keras_superattn import deploy

    path = os.path.join(out_dir, "tflite", f"{variant}_{quantization}.tflite")
    conversion = deploy.convert(
        checkpoint, path, quantization=quantization, representative_data=representative_data,
        num_calibration_samples=calibration_samples, validation_data=validation_data, verbose=False,
    )
    return {**file_scores(path), "token_agreement": conversion.agreement}


def quantization_aware_int8_scores(out_dir, variant, checkpoint, data, config, epochs, validation_inputs, file_scores):
    """A generative tutorial's best model fine-tuned `epochs` with
    quantization-aware training (`fine_tune_quantized`) and
    converted to `tflite/<variant>_qat_int8.tflite` from its trained ranges;
    `file_scores(path) -> dict` scores the file as the post-training one."""
    from keras_superattn import deploy

    quantized = fine_tune_quantized(checkpoint, data, config, epochs)
    path = os.path.join(out_dir, "tflite", f"{variant}_qat_int8.tflite")
    deploy.convert(quantized, path, validation_data=validation_inputs, verbose=False)
    return {"epochs": epochs, **file_scores(path)}
