"""Key layout of a read-model table (PK ``pk`` S, SK ``sk`` S).

One table per read model holds the model's items *and* its projection's bookkeeping, so a
read-model write and its checkpoint advance fit in one TransactWriteItems:

=======================================  ===============  =========================================
pk                                       sk               item
=======================================  ===============  =========================================
``_meta``                                ``generation``   active / building generation
``g<gen>#s#<stream_id>``                 ``cp``           checkpoint of a stream: ``version`` and
                                                          the projection's per-stream ``state``
                                                          (for a view, the view itself)
``g<gen>#stats#<shard>``                 ``stats``        ``streams``, ``events_applied`` (sharded
                                                          counters, written with checkpoints)
``g<gen>#<model key>``                   model-defined    read-model items (e.g. a user's orders)
``_parked``                              ``<stream_id>``  a parked stream (poison event)
``_attempts#<stream_id>``                ``<version>``    failed attempts at one event
=======================================  ===============  =========================================

Every generation-scoped key starts with ``g<gen>#``: a rebuild writes generation g+1 next to g
and dropping g is a prefix scan.
"""

from __future__ import annotations

import zlib

__all__ = [
    "ATTEMPTS_PREFIX",
    "CHECKPOINT_SK",
    "META_KEY",
    "PARKED_PK",
    "STATS_SHARDS",
    "STATS_SK",
    "attempts_key",
    "checkpoint_key",
    "gen_pk",
    "generation_prefix",
    "key",
    "parked_key",
    "shard_of",
    "stats_key",
]

META_KEY = {"pk": {"S": "_meta"}, "sk": {"S": "generation"}}
CHECKPOINT_SK = "cp"
STATS_SK = "stats"
PARKED_PK = "_parked"
ATTEMPTS_PREFIX = "_attempts#"
STATS_SHARDS = 16  # write-sharding of the per-generation counters (fewer transaction conflicts)


def key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def generation_prefix(generation: int) -> str:
    return f"g{generation}#"


def gen_pk(generation: int, pk: str) -> str:
    """A read-model partition key scoped to ``generation``."""
    return f"g{generation}#{pk}"


def checkpoint_key(generation: int, stream_id: str) -> dict[str, dict[str, str]]:
    return key(gen_pk(generation, f"s#{stream_id}"), CHECKPOINT_SK)


def shard_of(stream_id: str, shards: int) -> int:
    """A stable shard of a stream (crc32: the same in every process, unlike ``hash``)."""
    return zlib.crc32(stream_id.encode()) % shards


def stats_key(generation: int, shard: int) -> dict[str, dict[str, str]]:
    return key(gen_pk(generation, f"stats#{shard:02d}"), STATS_SK)


def parked_key(stream_id: str) -> dict[str, dict[str, str]]:
    return key(PARKED_PK, stream_id)


def attempts_key(stream_id: str, version: int) -> dict[str, dict[str, str]]:
    return key(ATTEMPTS_PREFIX + stream_id, f"{version:012d}")
