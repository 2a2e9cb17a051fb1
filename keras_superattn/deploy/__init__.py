"""Keras model -> int8 .tflite, run with LiteRT, checked for phones and Coral."""

from keras_superattn.deploy.cached import convert_generator
from keras_superattn.deploy.convert import convert
from keras_superattn.deploy.full_integer import check_full_integer
from keras_superattn.deploy.generate import TFLiteGenerator
from keras_superattn.deploy.generate import decode_greedy
from keras_superattn.deploy.generate import generate_greedy
from keras_superattn.deploy.inspection import format_report
from keras_superattn.deploy.inspection import inspect
from keras_superattn.deploy.options import QUANTIZATIONS
from keras_superattn.deploy.results import CachedConversion
from keras_superattn.deploy.results import Conversion
from keras_superattn.deploy.runtime import TFLiteModel

__all__ = [
    "QUANTIZATIONS",
    "CachedConversion",
    "Conversion",
    "TFLiteGenerator",
    "TFLiteModel",
    "check_full_integer",
    "convert",
    "convert_generator",
    "decode_greedy",
    "format_report",
    "generate_greedy",
    "inspect",
]
