"""DraftDecoder: the text decoder as a torch module, for training it and for sampling from it.

A word-level GRU conditioned on the VAE latent, the decoded attributes and the title (critic.writer.model
describes the architecture). Serving only scores sentences with it, which critic.writer.model does in numpy
from the same weights; this module is what the training and the sampling drafters import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from critic.writer.model import BOS, EOS, WriterConfig, conditioning_ids


def padded(rows: Sequence[Sequence[int]], width: int | None = None) -> torch.Tensor:
    width = width or max((len(r) for r in rows), default=1) or 1
    out = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row[:width])] = torch.tensor(row[:width], dtype=torch.long)
    return out


def conditioning_inputs(
    config: WriterConfig, latents: np.ndarray, attributes: Sequence[dict[str, str]], titles: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tensors for ``DraftDecoder.conditioning`` from latents, decoded attribute dicts and titles."""
    attribute_rows, title_rows = conditioning_ids(config, latents, attributes, titles)
    latent = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
    return latent, padded(attribute_rows), padded(title_rows)


class DraftDecoder(nn.Module):
    """GRU language model over delexicalised descriptions, conditioned per artwork."""

    def __init__(self, config: WriterConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        # Index 0 of the attribute table is padding, so an artwork with no attributes averages to zero.
        self.attribute_embedding = nn.Embedding(len(config.attribute_vocab) + 1, config.embed_dim, padding_idx=0)
        self.condition = nn.Linear(config.latent_dim + 2 * config.embed_dim, config.cond_dim)
        self.initial_state = nn.Linear(config.cond_dim, config.hidden_dim)
        self.gru = nn.GRU(config.embed_dim + config.cond_dim, config.hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.to_embedding = nn.Linear(config.hidden_dim, config.embed_dim)
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def conditioning(self, latent: torch.Tensor, attributes: torch.Tensor, title: torch.Tensor) -> torch.Tensor:
        """(batch, cond_dim) from latents (batch, latent_dim) and padded ids of attributes and title."""
        parts = [latent]
        for ids, table in ((attributes, self.attribute_embedding), (title, self.token_embedding)):
            mask = (ids > 0).unsqueeze(-1).float()
            parts.append((table(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        return torch.tanh(self.condition(torch.cat(parts, -1)))

    def logits(
        self,
        inputs: torch.Tensor,
        cond: torch.Tensor,
        state: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ):
        """Next-token logits for input ids (batch, steps); returns (logits, new GRU state).

        ``bias`` replaces the output bias (sampling passes one with banned tokens at -inf).
        """
        if state is None:
            state = torch.tanh(self.initial_state(cond)).unsqueeze(0)
        x = self.dropout(self.token_embedding(inputs))
        x = torch.cat([x, cond.unsqueeze(1).expand(-1, x.shape[1], -1)], -1)
        out, state = self.gru(x, state)
        projected = self.to_embedding(self.dropout(out))
        return projected @ self.token_embedding.weight.T + (self.output_bias if bias is None else bias), state

    @torch.inference_mode()
    def sample(
        self,
        cond: torch.Tensor,
        banned: torch.Tensor,
        generator: torch.Generator,
        temperature: float = 0.8,
        top_p: float = 0.9,
        max_tokens: int | None = None,
        prefix: Sequence[int] = (),
        top_k: int = 64,
    ) -> list[list[int]]:
        """Nucleus-sample one token sequence per row of ``cond``; ``banned`` is a (vocab,) bool mask.

        Sampling keeps the smallest set of tokens whose probability reaches ``top_p`` among the ``top_k``
        likeliest (a top-k cut first keeps each step cheap on a CPU). ``prefix`` (token ids) is read
        before sampling starts; the returned sequences continue it.
        """
        self.eval()
        batch = cond.shape[0]
        eos = self.config.vocab.index(EOS)
        start = [self.config.vocab.index(BOS), *prefix]
        tokens = torch.tensor([start] * batch, dtype=torch.long)
        bias = self.output_bias.masked_fill(banned, float("-inf"))
        state = None
        finished = [False] * batch
        sequences: list[list[int]] = [[] for _ in range(batch)]
        for _ in range(max(1, (max_tokens or self.config.max_tokens) - len(prefix))):
            logits, state = self.logits(tokens, cond, state, bias)
            top_logits, top_ids = (logits[:, -1] / max(temperature, 1e-3)).topk(min(top_k, logits.shape[-1]))
            probs = top_logits.softmax(-1)
            probs = probs.masked_fill(probs.cumsum(-1) - probs > top_p, 0.0)
            tokens = top_ids.gather(-1, torch.multinomial(probs, 1, generator=generator))
            for row, token in enumerate(tokens.squeeze(1).tolist()):
                if not finished[row]:
                    if token == eos:
                        finished[row] = True
                    else:
                        sequences[row].append(token)
            if all(finished):
                break
        return sequences


def to_decoder(config: WriterConfig, weights: Mapping[str, np.ndarray]) -> DraftDecoder:
    """A DraftDecoder (in eval mode) holding ``weights`` (a WriterModel's)."""
    decoder = DraftDecoder(config)
    decoder.load_state_dict({name: torch.from_numpy(np.array(array)) for name, array in weights.items()})
    return decoder.eval()


def decoder_weights(decoder: DraftDecoder) -> dict[str, np.ndarray]:
    """The decoder's state as numpy arrays (what a WriterModel holds and saves)."""
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in decoder.state_dict().items()}
