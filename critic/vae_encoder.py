"""VAEEncoder: the StyleVAE's inference half (q(z|e)'s mean and the attribute heads) in plain numpy.

Serving encodes one query or a few written records at a time; torch would add about 300 MB to every API
worker for two matrix products. The weights are the StyleVAE's own state (critic/vae.py, the trained
model), read from the same safetensors file; tests check the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

#: The StyleVAE encoder's Linear layers by their state-dict prefix (nn.Sequential numbering: GELU and
#: Dropout sit between them).
_HIDDEN_LAYERS = ("encoder.0", "encoder.3")
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to within 1.5e-7 (Abramowitz & Stegun 7.1.26), below float32's resolution of 1.

    Example:
        >>> round(float(erf(np.array(0.5))), 6) == round(math.erf(0.5), 6)
        True
    """
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * a)
    poly = t * (_ERF_A[0] + t * (_ERF_A[1] + t * (_ERF_A[2] + t * (_ERF_A[3] + t * _ERF_A[4]))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU as torch's ``nn.GELU()`` computes it: x * Phi(x), with the exact normal CDF."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class VAEEncoder:
    """Posterior means and attribute-head logits of a trained StyleVAE, from its state dict as numpy arrays.

    ``state`` is the whole StyleVAE's state (what is saved and loaded as it is); the encoder reads its
    part. ``config`` is the StyleVAE's config as a dict (``dataclasses.asdict(VAEConfig)``).

    Example:
        >>> state = {"encoder.0.weight": np.eye(2, dtype=np.float32), "encoder.0.bias": np.zeros(2, np.float32),
        ...          "encoder.3.weight": np.eye(2, dtype=np.float32), "encoder.3.bias": np.zeros(2, np.float32),
        ...          "to_mu.weight": np.eye(2, dtype=np.float32), "to_mu.bias": np.zeros(2, np.float32),
        ...          "input_mean": np.zeros(2, np.float32), "principal_axes": np.zeros((2, 2), np.float32)}
        >>> mu = VAEEncoder(state, {"principal_shortcut": 0.0}).encode(np.array([[0.0, 1.0]]))
        >>> [round(float(v), 3) for v in mu[0]]  # two GELUs of 1.0
        [0.0, 0.673]
    """

    def __init__(self, state: Mapping[str, np.ndarray], config: Mapping):
        self.state = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in state.items()}
        self.config = dict(config)
        self._layers = [(self.state[f"{p}.weight"].T.copy(), self.state[f"{p}.bias"]) for p in _HIDDEN_LAYERS]
        self._mu = (self.state["to_mu.weight"].T.copy(), self.state["to_mu.bias"])
        self._shortcut = float(self.config.get("principal_shortcut", 0.0)) * self.state["principal_axes"]
        self._heads = {
            name.split(".")[1]: (self.state[name].T.copy(), self.state[name[: -len("weight")] + "bias"])
            for name in self.state
            if name.startswith("heads.") and name.endswith(".weight")
        }
        if "keyword_head.weight" in self.state:
            self._heads["keywords"] = (self.state["keyword_head.weight"].T.copy(), self.state["keyword_head.bias"])
        declared = (self.config.get("input_dim", self.input_dim), self.config.get("latent_dim", self.latent_dim))
        if declared != (self.input_dim, self.latent_dim):
            raise ValueError(f"the weights are {self.input_dim} -> {self.latent_dim}, the config says {declared}")
        self.attribute_logits(self.encode(np.zeros((1, self.input_dim))))  # weights that do not chain raise here

    @property
    def input_dim(self) -> int:
        return self.input_mean.shape[0]

    @property
    def latent_dim(self) -> int:
        return self._mu[1].shape[0]

    @property
    def input_mean(self) -> np.ndarray:
        return self.state["input_mean"]

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """mu(e) = MLP(e) + s * P^T (e - e_bar), as float32 (the StyleVAE's posterior mean)."""
        e = np.asarray(inputs, dtype=np.float32)
        h = e
        for weight, bias in self._layers:
            h = gelu(h @ weight + bias)
        weight, bias = self._mu
        return (h @ weight + bias + (e - self.input_mean) @ self._shortcut).astype(np.float32)

    def attribute_logits(self, latents: np.ndarray) -> dict[str, np.ndarray]:
        """Head name -> (n, classes) logits for each latent (``keywords`` too, when the model has that head)."""
        z = np.asarray(latents, dtype=np.float32)
        return {name: z @ weight + bias for name, (weight, bias) in self._heads.items()}

    def attribute_probabilities(self, latents: np.ndarray) -> dict[str, np.ndarray]:
        """Head name -> probabilities: a softmax per single-label head, a sigmoid per keyword (multi-label)."""
        out = {}
        for name, logits in self.attribute_logits(latents).items():
            if name == "keywords":
                out[name] = 1.0 / (1.0 + np.exp(-logits))
            else:
                shifted = np.exp(logits - logits.max(-1, keepdims=True))
                out[name] = shifted / shifted.sum(-1, keepdims=True)
        return out
