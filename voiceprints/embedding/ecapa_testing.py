"""A small, randomly initialised ECAPA-TDNN in the hub's directory layout, for tests.

Tests load it through :class:`EcapaEmbedder` exactly as a downloaded
``speechbrain/spkrec-ecapa-voxceleb`` would be loaded, so the offline loading
path, the directory checks and model_id are exercised without the 80 MB
download. Its embeddings carry no speaker information: it checks mechanics,
never accuracy.
"""

from __future__ import annotations

from pathlib import Path

# Same structure as the hub's hyperparams.yaml, including a hub-style
# ``pretrained_path``: if the loader ever stopped pinning files to the local
# directory, loading this model would try the (non-existent) hub repository
# and fail offline. Channels are cut from [1024 x4, 3072] / 192 to keep the
# model a few hundred KB; kernel sizes and dilations are the hub's.
HYPERPARAMS_TEMPLATE = """\
# ############################################################################
# Model: small ECAPA-TDNN for tests (random weights, seed {seed})
# Layout and keys follow speechbrain/spkrec-ecapa-voxceleb.
# ############################################################################

n_mels: 80
pretrained_path: voiceauth/{name}
out_n_neurons: {n_speakers}

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: {channels}
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    lin_neurons: {lin_neurons}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {lin_neurons}
    out_neurons: !ref <out_n_neurons>
{norm_module}
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
{norm_ref}    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
{norm_loadable}        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
{norm_path}        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

NORM_MODULE = """
mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False
"""

CHANNELS = [64, 64, 64, 64, 192]
LIN_NEURONS = 32
SPEAKERS = ("alice", "bob", "carol", "dave", "erin", "frank")


def build_small_ecapa(directory: Path | str, seed: int = 0, name: str = "small-ecapa-test",
                      embedding_norm: bool = True) -> Path:
    """Write hyperparams.yaml, embedding_model.ckpt, classifier.ckpt, label_encoder.txt and (with
    ``embedding_norm``) mean_var_norm_emb.ckpt into ``directory``; returns it.

    Checkpoints are plain ``torch.save(state_dict)`` files, as on the hub.
    Different seeds give different weights (and so a different model_id).
    """
    import torch
    from speechbrain.dataio.encoder import CategoricalEncoder
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN, Classifier
    from speechbrain.processing.features import InputNormalization

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # fork_rng: seeding must not disturb the random state of whoever calls this.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embedding_model = ECAPA_TDNN(
            input_size=80, channels=CHANNELS, kernel_sizes=[5, 3, 3, 3, 1], dilations=[1, 2, 3, 4, 1],
            attention_channels=16, lin_neurons=LIN_NEURONS,
        )
        classifier = Classifier(input_size=LIN_NEURONS, out_neurons=len(SPEAKERS))
        if embedding_norm:
            # Global statistics of (random) embeddings, saved the way SpeechBrain saves them.
            norm = InputNormalization(norm_type="global", std_norm=False)
            norm.train()
            norm(torch.randn(16, 1, LIN_NEURONS), torch.ones(16))
            norm._save(directory / "mean_var_norm_emb.ckpt")
    torch.save(embedding_model.state_dict(), directory / "embedding_model.ckpt")
    torch.save(classifier.state_dict(), directory / "classifier.ckpt")
    encoder = CategoricalEncoder()
    encoder.update_from_iterable(SPEAKERS)
    encoder.save(directory / "label_encoder.txt")
    norm_lines = {
        "norm_module": NORM_MODULE,
        "norm_ref": "    mean_var_norm_emb: !ref <mean_var_norm_emb>\n",
        "norm_loadable": "        mean_var_norm_emb: !ref <mean_var_norm_emb>\n",
        "norm_path": "        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt\n",
    }
    if not embedding_norm:
        norm_lines = dict.fromkeys(norm_lines, "")
    (directory / "hyperparams.yaml").write_text(
        HYPERPARAMS_TEMPLATE.format(seed=seed, name=name, n_speakers=len(SPEAKERS), channels=CHANNELS,
                                    lin_neurons=LIN_NEURONS, **norm_lines),
        encoding="utf-8",
    )
    return directory
