"""StyleVAE: a variational autoencoder over sentence embeddings with attribute heads.

    q(z|e) = N(mu(e), diag(exp(logvar(e))))        encoder, mu(e) = MLP(e) + s * P^T (e - e_bar)
    p(e|z) = N(decode(z), sigma^2 I)                decoder (reconstructs the 384-d embedding)
    p(a|z) = softmax(W_a z)  for each label a       attribute heads (period, style, culture, ...)

Loss per artwork (Kingma & Welling 2014, eq. 3, plus supervised heads):
    ||e - decode(z)||^2 / (2 sigma^2) + sum_a w_a CE(a, W_a z) [masked] + beta * KL(q(z|e) || N(0, I))
with beta annealed from 0 and "free bits" (Kingma et al. 2016) so no latent dimension collapses to the prior.
The linear heads make labels linearly separable in z, which is what cosine search over mu rewards.
The fixed shortcut P (the training inputs' top principal directions, s = ``principal_shortcut``) keeps the
input's own geometry in mu: the heads alone pull an artwork whose culture never appears in the training
labels towards the nearest trained one (Maya objects towards Colima and Olmec), and the shortcut holds
such groups apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEConfig:
    input_dim: int = 692  # 384-d sentence embedding + 256-d LSA vector (critic/lexical.py) + 52-d date block
    hidden_dim: int = 512
    latent_dim: int = 64
    dropout: float = 0.1
    recon_sigma: float = 0.05  # std of the Gaussian decoder; unit embeddings differ by ~0.05 per dim
    beta: float = 1.0
    free_bits: float = 0.05  # nats per latent dimension that the KL term does not charge for
    attribute_weight: float = 20.0
    keyword_weight: float = 20.0
    principal_shortcut: float = 3.0  # s above; 0 = no shortcut
    #: label name -> number of classes for the single-label heads (period, style, culture, ...)
    heads: dict[str, int] = field(default_factory=dict)
    #: size of the multi-label keyword head (0 = none)
    keywords: int = 0


class StyleVAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = c = config
        self.encoder = nn.Sequential(
            nn.Linear(c.input_dim, c.hidden_dim),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.GELU(),
        )
        self.to_mu = nn.Linear(c.hidden_dim, c.latent_dim)
        self.to_logvar = nn.Linear(c.hidden_dim, c.latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(c.latent_dim, c.hidden_dim),
            nn.GELU(),
            nn.Linear(c.hidden_dim, c.hidden_dim),
            nn.GELU(),
            nn.Linear(c.hidden_dim, c.input_dim),
        )
        # Fitted to the training inputs by fit_shortcut; buffers, so they are saved with the weights.
        self.register_buffer("input_mean", torch.zeros(c.input_dim))
        self.register_buffer("principal_axes", torch.zeros(c.input_dim, c.latent_dim))
        self.heads = nn.ModuleDict({name: nn.Linear(c.latent_dim, n) for name, n in c.heads.items()})
        self.keyword_head = nn.Linear(c.latent_dim, c.keywords) if c.keywords else None

    @torch.no_grad()
    def fit_shortcut(self, e: torch.Tensor) -> None:
        """Set the shortcut to the top ``latent_dim`` principal directions of the training inputs ``e``."""
        self.input_mean.copy_(e.mean(0))
        _, _, vh = torch.linalg.svd(e - self.input_mean, full_matrices=False)
        axes = vh[: self.config.latent_dim].T
        self.principal_axes.zero_()
        self.principal_axes[:, : axes.shape[1]] = axes

    def encode(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(e)
        shortcut = self.config.principal_shortcut * (e - self.input_mean) @ self.principal_axes
        return self.to_mu(h) + shortcut, self.to_logvar(h).clamp(-10.0, 10.0)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        # z = mu + sigma * eps, eps ~ N(0, I): the sampling step made differentiable (eq. 10)
        if not self.training:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def attribute_logits(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = {name: head(z) for name, head in self.heads.items()}
        if self.keyword_head is not None:
            logits["keywords"] = self.keyword_head(z)
        return logits

    def forward(self, e: torch.Tensor):
        mu, logvar = self.encode(e)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar, self.attribute_logits(z)

    def loss(
        self,
        e: torch.Tensor,
        labels: dict[str, torch.Tensor],
        keyword_targets: torch.Tensor | None = None,
        beta: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-batch mean losses. ``labels[name]`` holds class indices, -1 where the label is missing."""
        c = self.config
        e_hat, mu, logvar, logits = self(e)
        recon = ((e - e_hat) ** 2).sum(-1).mean() / (2 * c.recon_sigma**2)
        # KL(N(mu, sigma^2) || N(0, 1)) per dimension, closed form (Kingma & Welling, appendix B)
        kl_dims = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)
        kl = kl_dims.sum(-1).mean()
        kl_charged = torch.clamp(kl_dims.mean(0), min=c.free_bits).sum()
        attributes = e.new_zeros(())
        for name, target in labels.items():
            if (target >= 0).any():
                attributes = attributes + F.cross_entropy(logits[name], target, ignore_index=-1)
        keywords = e.new_zeros(())
        if keyword_targets is not None and "keywords" in logits:
            keywords = F.binary_cross_entropy_with_logits(logits["keywords"], keyword_targets)
        weight = c.beta if beta is None else beta
        total = recon + weight * kl_charged + c.attribute_weight * attributes + c.keyword_weight * keywords
        return {"loss": total, "recon": recon, "kl": kl, "attributes": attributes, "keywords": keywords}
