"""``langnghe classify``: label a JSONL file of texts (the stable batch interface).

Input, one JSON object per line: ``id`` and ``text`` (strings), optional ``title``.
Output, one line per input line, same order: ``id``, ``civic``, ``sentiment``, ``topic``,
``department`` and ``locations`` — a list of ``{text, start, end, former_district, ward}``.

The classifiers read ``title + "\\n" + text`` when a title is given; locations are resolved on
``text`` alone and their ``start``/``end`` are character offsets into ``text`` (so
``text[start:end] == location["text"]``).

A text longer than ``MAX_TEXT_CHARS`` is read up to that length (a note on stderr names the line);
a line that is not UTF-8 is a malformed line.

The input is streamed in batches (bounded memory). The output is written to a temporary file
beside the target and moved into place only when every line was read and classified, so a
malformed line (reported with its line number as a ``ValueError``) never leaves a partial file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from langnghe.records import Location
from nlp.classifiers import TextClassifiers


class _Resolver(Protocol):
    def resolve(self, text: str) -> list[Location]: ...


# a longer text is no article or comment (the longest news article is a few 10,000 characters): only
# its start is classified and searched for places, so that one huge line cannot stall a batch
MAX_TEXT_CHARS = 100_000


class InputError(ValueError):
    """A malformed input line; the message names the line number."""


def _parse(line: str, lineno: int, path: Path) -> dict[str, Any] | None:
    """One input line as {id, text, title}; None for a blank line."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{lineno}: dòng không phải JSON hợp lệ / not valid JSON ({exc.msg})"
                         ) from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}:{lineno}: mỗi dòng phải là một đối tượng JSON / "
                         "each line must be a JSON object")
    missing = [k for k in ("id", "text") if k not in obj or obj[k] is None]
    if missing:
        raise InputError(f"{path}:{lineno}: thiếu trường {', '.join(missing)} / missing field(s) "
                         f"{', '.join(missing)}")
    if not isinstance(obj["text"], str) or not isinstance(obj["id"], str | int):
        raise InputError(f"{path}:{lineno}: `id` phải là chuỗi/số, `text` phải là chuỗi / "
                         "`id` must be a string or number and `text` a string")
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        raise InputError(f"{path}:{lineno}: `title` phải là chuỗi / `title` must be a string")
    text = obj["text"]
    if len(text) > MAX_TEXT_CHARS:
        print(f"{path}:{lineno}: văn bản dài {len(text):,} ký tự, chỉ đọc {MAX_TEXT_CHARS:,} ký tự đầu / "
              f"text of {len(text):,} characters: only the first {MAX_TEXT_CHARS:,} are read", file=sys.stderr)
        text = text[:MAX_TEXT_CHARS]
    return {"id": obj["id"], "text": text, "title": (title or "")[:MAX_TEXT_CHARS]}


def _batches(path: Path, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{lineno}: dòng không phải UTF-8 / not UTF-8 (byte {exc.start + 1})"
                                 ) from None
            item = _parse(line, lineno, path)
            if item is None:
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _location_dict(loc: Location) -> dict[str, Any]:
    return {"text": loc.text, "start": loc.start, "end": loc.end,
            "former_district": loc.former_district, "ward": loc.ward}


def _default_resolver() -> _Resolver:
    from nlp.locations import get_resolver

    return get_resolver()


def classify_file(input_path: Path, output_path: Path, models_dir: Path | None = None,
                  batch_size: int = 256, resolver: _Resolver | None = None,
                  backend: str | None = None) -> int:
    """Classify every line of `input_path` into `output_path`; returns the number of lines written.

    `backend`: ``linear`` (n-gram heads), ``hybrid`` (+ sentence-encoder heads) or ``encoder``;
    default ``$LANGNGHE_CLASSIFIER_BACKEND``, else the artifacts' default (see docs/models.md).

    Raises ``ValueError`` (``InputError``) naming the line of a malformed input line, and
    ``FileNotFoundError`` when the input or the trained models are missing.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"không tìm thấy tệp đầu vào / input file not found: {input_path}")
    if models_dir is None:
        from langnghe.config import get_settings

        models_dir = get_settings().models_dir
    models = TextClassifiers.load(models_dir, backend=backend)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent)
    written = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for batch in _batches(input_path, max(1, batch_size)):
                if resolver is None:
                    resolver = _default_resolver()
                contents = [f"{b['title']}\n{b['text']}" if b["title"] else b["text"] for b in batch]
                preds = models.predict(contents, batch_size=batch_size)
                for item, pred in zip(batch, preds, strict=True):
                    row = {
                        "id": item["id"], "civic": pred.civic, "sentiment": pred.sentiment,
                        "topic": pred.topic, "department": pred.department,
                        "scores": {"civic": pred.civic_score, "sentiment": pred.sentiment_score,
                                   "topic": pred.topic_score, "department": pred.department_score},
                        "locations": [_location_dict(loc) for loc in resolver.resolve(item["text"])],
                    }
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    written += 1
        os.replace(tmp_name, output_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if written == 0:
        print(f"Tệp đầu vào không có dòng nào / the input file has no items: {input_path}", file=sys.stderr)
    return written
