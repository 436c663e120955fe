"""Models for the experiments: logistic regression, FNN-3, LeNet-5, ResNet-20, VGG-16, LSTM LM.

    spec = ModelSpec.of(bundle)                       # or ModelSpec(input_shape=..., ...)
    model = build_model("resnet20", spec, seed=0)     # same seed -> same parameters

Classifiers map ``(B, *input_shape)`` to logits ``(B, num_classes)``; the language model maps
``tokens (T, B)`` and a hidden state to ``(logits (T, B, V), hidden)``.
"""

from sparsgd.models.lstm import LSTMLanguageModel
from sparsgd.models.registry import LANGUAGE_MODELS, MODELS, build_model, count_parameters
from sparsgd.models.spec import DataShape, ModelSpec

__all__ = [
    "LANGUAGE_MODELS",
    "MODELS",
    "DataShape",
    "LSTMLanguageModel",
    "ModelSpec",
    "build_model",
    "count_parameters",
]
