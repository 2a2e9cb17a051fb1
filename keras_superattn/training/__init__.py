"""The training harness of the tutorials and benchmarks.

- `runs`: a `TrainingConfig`, one fit that keeps its best checkpoint and
  resumes, and the record of finished runs;
- `comparisons`: every variant side by side (`compare_variants`,
  `compare_generators`) with one report each;
- `int8_reports`: the int8 files of the best models and their scores;
- `scaling`: the report of a study over model sizes;
- `callbacks`, `reporting`, `timing`: their parts.
"""

from keras_superattn.training.comparisons import batch_latency
from keras_superattn.training.comparisons import compare_generators
from keras_superattn.training.comparisons import compare_variants
from keras_superattn.training.comparisons import train_one
from keras_superattn.training.int8_reports import convert_best_models
from keras_superattn.training.int8_reports import fine_tune_quantized
from keras_superattn.training.runs import TrainingConfig
from keras_superattn.training.runs import adam
from keras_superattn.training.runs import attention_params

__all__ = [
    "TrainingConfig",
    "adam",
    "attention_params",
    "batch_latency",
    "compare_generators",
    "compare_variants",
    "convert_best_models",
    "fine_tune_quantized",
    "train_one",
]
