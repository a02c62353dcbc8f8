"""Chunk compression: the lz4 and zstd codecs and the per-file policy.

A chunk is compressed on its own, so a read decodes only the chunks it
touches.  lz4 chunks are raw LZ4 *blocks* (``lz4.block`` with
``store_size=False``: the record's logical length is the decompressed size);
zstd chunks are complete zstd frames (``zstandard``, content size in the
frame header).  A chunk whose compressed form does not pay for itself is
stored raw (codec 0): for ``"lz4"``/``"zstd"`` when compression saves nothing,
for ``"auto"`` (lz4) when it saves less than 10% of the chunk.
"""

from __future__ import annotations

import functools
from typing import Any

import lz4.block
import zstandard

from .errors import CorruptionError
from .layout import AUTO_MIN_SAVING, CODEC_LZ4, CODEC_NAMES, CODEC_NONE, CODEC_ZSTD, POLICY_AUTO

#: The value of ``compression=`` meaning "the container's default".
DEFAULT = "default"

_POLICIES = {None: CODEC_NONE, "none": CODEC_NONE, "lz4": CODEC_LZ4, "zstd": CODEC_ZSTD,
             "auto": POLICY_AUTO}


def parse_policy(compression: Any, level: Any, default: tuple[int, int]) -> tuple[int, int]:
    """``(policy code, level)`` for a ``compression=``/``level=`` pair.

    ``compression="default"`` takes the container's default (``default``).
    Raises ValueError/TypeError for unknown codecs or bad levels.
    """
    if isinstance(compression, str) and compression == DEFAULT:
        if level is None:
            return default
        compression = CODEC_NAMES[default[0]]
    if compression is not None and not isinstance(compression, str):
        raise TypeError(f"compression must be 'lz4', 'zstd', 'auto' or None, "
                        f"got {type(compression).__name__}")
    if compression not in _POLICIES:
        raise ValueError(f"compression must be 'lz4', 'zstd', 'auto' or None, got {compression!r}")
    policy = _POLICIES[compression]
    if level is None:
        return policy, 0
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be an int or None, got {type(level).__name__}")
    if policy == CODEC_ZSTD and not -7 <= level <= 22:
        raise ValueError(f"zstd level must be in -7..22, got {level}")
    if policy in (CODEC_LZ4, POLICY_AUTO) and not 0 <= level <= 16:
        raise ValueError(f"lz4 level must be in 0..16 (0 = fast mode), got {level}")
    if policy == CODEC_NONE and level:
        raise ValueError("level given without a compression codec")
    return policy, level


@functools.lru_cache(maxsize=32)
def _zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(level=level or 3)


_ZSTD_D = zstandard.ZstdDecompressor()


def compress(policy: int, level: int, data: Any) -> tuple[int, Any]:
    """Compress one chunk under ``policy``; return ``(codec, stored bytes)``.

    Returns ``(CODEC_NONE, data)`` unchanged when compression does not pay.
    """
    if policy == CODEC_NONE or len(data) == 0:
        return CODEC_NONE, data
    if policy == CODEC_ZSTD:
        out = _zstd_compressor(level).compress(data)
        codec = CODEC_ZSTD
    else:
        if level:
            out = lz4.block.compress(data, mode="high_compression", compression=level,
                                     store_size=False)
        else:
            out = lz4.block.compress(data, store_size=False)
        codec = CODEC_LZ4
    limit = len(data) * (1 - AUTO_MIN_SAVING) if policy == POLICY_AUTO else len(data) - 1
    if len(out) > limit:
        return CODEC_NONE, data
    return codec, out


def decompress(codec: int, stored: Any, length: int) -> bytes:
    """The ``length`` logical bytes of a chunk stored with ``codec``.

    Raises :class:`CorruptionError` when the stored bytes do not decode to
    exactly ``length`` bytes.
    """
    try:
        if codec == CODEC_LZ4:
            out = lz4.block.decompress(stored, uncompressed_size=length)
        elif codec == CODEC_ZSTD:
            out = _ZSTD_D.decompress(stored, max_output_size=length)
        elif codec == CODEC_NONE:
            return bytes(stored)
        else:
            raise CorruptionError(f"unknown chunk codec {codec}")
    except (lz4.block.LZ4BlockError, zstandard.ZstdError) as exc:
        raise CorruptionError(f"compressed chunk does not decode: {exc}") from None
    if len(out) != length:
        raise CorruptionError(f"compressed chunk decodes to {len(out)} bytes, expected {length}")
    return out
