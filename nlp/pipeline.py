"""The understanding pipeline: one `Mention` flows through components that declare what they
need and what they assign (spaCy style), in batches (`Pipeline.pipe`).

`process_pending` is the resumable job: it takes stored mentions not yet processed, runs the
pipeline over them batch by batch and writes each batch back in one transaction, so a run that
is killed resumes with the first batch it had not written; a batch is never half-stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from langnghe.records import Mention, utcnow
from nlp.text import normalize
from storage.base import Store

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


class Classifier:
    """Civic relevance, sentiment, topic and responsible department, batched."""

    name = "classifier"
    requires: tuple[str, ...] = ("title", "text")
    assigns: tuple[str, ...] = ("civic", "civic_score", "sentiment", "sentiment_score", "topic", "department")

    def __init__(self, models_dir: Path, batch_size: int = 256) -> None:
        from nlp.classifiers import TextClassifiers

        self.models = TextClassifiers.load(models_dir)
        self.batch_size = batch_size

    def __call__(self, batch: list[Mention]) -> list[Mention]:
        predictions = self.models.predict([m.content for m in batch], batch_size=self.batch_size)
        for mention, pred in zip(batch, predictions, strict=True):
            mention.civic = pred.civic
            mention.civic_score = pred.civic_score
            mention.sentiment = pred.sentiment
            mention.sentiment_score = pred.sentiment_score
            mention.topic = pred.topic
            mention.department = pred.department
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


def default_pipeline(models_dir: Path, batch_size: int = 256) -> Pipeline:
    """Normaliser → locations → classifiers."""
    return Pipeline([Normalizer(), LocationTagger(), Classifier(models_dir, batch_size)])


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

