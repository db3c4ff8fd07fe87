"""The understanding pipeline: one `Mention` flows through components that declare what they
need and what they assign (spaCy style), in batches (`Pipeline.pipe`).

`process_pending` is the resumable job: it takes stored mentions not yet processed, runs the
pipeline over them batch by batch and writes each batch back in one transaction, so a run that
is killed resumes with the first batch it had not written; a batch is never half-stored.

With an encoder backend (``hybrid`` | ``encoder``, setting ``classifier_backend``) the classifier
encodes each mention once, through the issue engine's vector cache (`nlp.embedding_cache`): give it
the store's `IssueStateDB` (`vector_db_for`) and the issue clustering later finds every vector there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langnghe.records import Mention, utcnow
from nlp.text import normalize
from storage.base import Store

if TYPE_CHECKING:
    from nlp.embedding_cache import IssueStateDB

log = logging.getLogger(__name__)

RAW_FIELDS = frozenset({"id", "source", "url", "title", "text", "published_at", "language", "author", "story_id"})


class Component(Protocol):
    """A pipeline step: reads `requires`, writes `assigns`, one batch at a time."""

    name: str
    requires: tuple[str, ...]
    assigns: tuple[str, ...]

    def __call__(self, batch: list[Mention]) -> list[Mention]: ...


class Normalizer:
    """NFC, one tone-mark convention, tidy whitespace in title and text."""

    name = "normalizer"
    requires: tuple[str, ...] = ("title", "text")
    assigns: tuple[str, ...] = ("title", "text")

    def __call__(self, batch: list[Mention]) -> list[Mention]:
        for mention in batch:
            mention.title = normalize(mention.title)
            mention.text = normalize(mention.text)
        return batch


class LocationTagger:
    """Finds place mentions and resolves them to areas at every level (city, former district, ward)."""

    name = "locations"
    requires: tuple[str, ...] = ("title", "text")
    assigns: tuple[str, ...] = ("locations", "areas")

    def __init__(self) -> None:
        from nlp.locations import get_resolver

        self.resolver = get_resolver()

    def __call__(self, batch: list[Mention]) -> list[Mention]:
        for mention in batch:
            mention.locations = self.resolver.resolve(mention.content)
            mention.areas = self.resolver.areas_for(mention.locations)
        return batch


def classifier_backend(backend: str | None = None) -> str:
    """`backend`, else the setting ``classifier_backend`` (``LANGNGHE_CLASSIFIER_BACKEND``)."""
    if backend is not None:
        return backend
    from langnghe.config import get_settings

    return get_settings().classifier_backend


def vector_db_for(store: object, backend: str | None = None) -> IssueStateDB | None:
    """Where the classifier keeps its vectors for the issue clustering: the store's side tables
    (`IssueStateDB.for_store`: its SQLite file, or the configured side file for a search-engine
    store) when the backend encodes, else None (``linear``)."""
    if classifier_backend(backend) == "linear":
        return None
    from nlp.embedding_cache import IssueStateDB

    return IssueStateDB.for_store(store)


def _discovery_encoder_key() -> tuple[str, int]:
    """The (spec, max tokens) of the encoder the issue clustering gets (`nlp.encoder.get_encoder()`)."""
    from nlp.encoder import DEFAULT_MAX_TOKENS, canonical_spec, default_spec

    spec = canonical_spec(default_spec())
    return spec, int(os.environ.get("LANGNGHE_ENCODER_MAX_TOKENS") or DEFAULT_MAX_TOKENS)


class Classifier:
    """Civic relevance, sentiment, topic and responsible department, batched.

    `backend` defaults to the setting ``classifier_backend``. With ``hybrid`` / ``encoder`` the batch
    is encoded once by the heads' encoder, in the issue clustering's text form (`mention_text`),
    through `cached_embeddings` and `vector_db`: `nlp.discovery.discover` then reads those vectors
    instead of encoding the mentions again. ``linear`` never imports the encoder.
    """

    name = "classifier"
    requires: tuple[str, ...] = ("title", "text")
    assigns: tuple[str, ...] = ("civic", "civic_score", "sentiment", "sentiment_score", "topic", "department",
                                "topic_score", "department_score")

    def __init__(self, models_dir: Path, batch_size: int = 256, backend: str | None = None,
                 vector_db: IssueStateDB | None = None) -> None:
        from nlp.classifiers import TextClassifiers

        self.backend = classifier_backend(backend)
        self.models = TextClassifiers.load(models_dir, backend=self.backend)
        self.batch_size = batch_size
        self.vector_db = vector_db
        self.encoder: Any = None
        if self.models.needs_embeddings:
            self.encoder = self.models.encoder  # fail now, not in the first batch
            info = self.models.meta.get("encoder") or {}
            from nlp.encoder import canonical_spec

            spec = self.models.encoder_spec
            heads = (canonical_spec(spec) if spec else None, info.get("max_tokens"))
            shared = _discovery_encoder_key()
            if heads[0] is not None and heads[1] is not None and (heads[0], int(heads[1])) != shared:
                log.warning("the classifier heads use encoder %s (%s tokens) but the issue clustering "
                            "is configured with %s (%d tokens): mentions will be encoded twice",
                            heads[0], heads[1], *shared)

    def __call__(self, batch: list[Mention]) -> list[Mention]:
        embeddings = None
        if self.encoder is not None and batch:
            from nlp.embedding_cache import cached_embeddings

            embeddings = cached_embeddings(self.encoder, batch, self.vector_db)
        predictions = self.models.predict([m.content for m in batch], batch_size=self.batch_size,
                                          embeddings=embeddings)
        for mention, pred in zip(batch, predictions, strict=True):
            mention.civic = pred.civic
            mention.civic_score = pred.civic_score
            mention.sentiment = pred.sentiment
            mention.sentiment_score = pred.sentiment_score
            mention.topic = pred.topic
            mention.department = pred.department
            mention.topic_score = pred.topic_score
            mention.department_score = pred.department_score
        return batch


class PipelineError(ValueError):
    """A pipeline whose components' needs are not met by the ones before them."""


@dataclass
class Pipeline:
    components: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        available = set(RAW_FIELDS)
        for component in self.components:
            missing = set(component.requires) - available
            if missing:
                raise PipelineError(f"component {component.name!r} needs {sorted(missing)}, "
                                    "which no earlier component assigns")
            available |= set(component.assigns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def __call__(self, batch: list[Mention]) -> list[Mention]:
        for component in self.components:
            batch = component(batch)
        stamp = utcnow()
        for mention in batch:
            mention.processed_at = stamp
        return batch

    def pipe(self, mentions: Iterable[Mention], batch_size: int = 256) -> Iterator[Mention]:
        """Process a stream of mentions in batches, yielding them in input order."""
        batch: list[Mention] = []
        for mention in mentions:
            batch.append(mention)
            if len(batch) >= batch_size:
                yield from self(batch)
                batch = []
        if batch:
            yield from self(batch)


def default_pipeline(models_dir: Path, batch_size: int = 256, backend: str | None = None,
                     vector_db: IssueStateDB | None = None) -> Pipeline:
    """Normaliser → locations → classifiers (see `Classifier` for `backend` and `vector_db`)."""
    return Pipeline([Normalizer(), LocationTagger(),
                     Classifier(models_dir, batch_size, backend=backend, vector_db=vector_db)])


def process_pending(store: Store, pipeline: Pipeline, *, batch_size: int = 256,
                    limit: int | None = None) -> int:
    """Enrich every stored mention not yet processed; returns how many were processed."""
    done = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        batch = store.unprocessed_mentions(limit=size)
        if not batch:
            break
        processed = pipeline(batch)
        store.update_enrichment(processed)
        done += len(processed)
        log.info("processed %d mentions (%d in all)", len(processed), done)
    return done

