"""The click-through-rate model: data (Open Bandit Dataset), features, training, evaluation,
ONNX export and publication to the model registry."""
