"""Next-token models: generation (cached or full-sequence), loss, perplexity, bits per character, BLEU."""

from keras_superattn.generation.generator import Generator
from keras_superattn.generation.metrics import bits_per_character
from keras_superattn.generation.metrics import corpus_bleu
from keras_superattn.generation.metrics import mean_token_loss
from keras_superattn.generation.metrics import perplexity
from keras_superattn.generation.metrics import sequence_agreement
from keras_superattn.generation.metrics import token_crossentropy
from keras_superattn.generation.samplers import GreedySampler
from keras_superattn.generation.samplers import RandomSampler
from keras_superattn.generation.samplers import Sampler
from keras_superattn.generation.samplers import TopKSampler
from keras_superattn.generation.samplers import TopPSampler
from keras_superattn.generation.samplers import batched_predict
from keras_superattn.generation.samplers import decode
from keras_superattn.generation.samplers import full_sequence_next

__all__ = [
    "Generator",
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "TopKSampler",
    "TopPSampler",
    "batched_predict",
    "bits_per_character",
    "corpus_bleu",
    "decode",
    "full_sequence_next",
    "mean_token_loss",
    "perplexity",
    "sequence_agreement",
    "token_crossentropy",
]
