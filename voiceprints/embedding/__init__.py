"""Speaker embedders: audio in, unit-length speaker vector out.

Importing this package does not import torch; the models load it when
constructed.
"""

from voiceprints.embedding.base import Embedder
from voiceprints.embedding.ecapa import EcapaDirectory, EcapaEmbedder, check_ecapa_dir, pull_ecapa
from voiceprints.embedding.ge2e import Ge2eEmbedder, ge2e_model_id
from voiceprints.embedding.select import ModelInfo, available_models, load_embedder

__all__ = [
    "EcapaDirectory",
    "EcapaEmbedder",
    "Embedder",
    "Ge2eEmbedder",
    "ModelInfo",
    "available_models",
    "check_ecapa_dir",
    "ge2e_model_id",
    "load_embedder",
    "pull_ecapa",
]
