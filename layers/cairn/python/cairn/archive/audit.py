"""``make verify`` over both tiers: archived prefixes joined to what DynamoDB still holds.

:func:`join_archived` prepends each archived stream's verified segments to its DynamoDB items
(as :func:`cairn.integrity.audit.scan_streams` returns them), so the whole-store verifier checks
one chain from version 1. A manifest that disagrees with its segments (missing, failing its
checksum, not chaining) or with DynamoDB (an item still there with another hash) is reported.
"""

from __future__ import annotations

from typing import Any

from cairn.archive.base import ArchiveError, ArchiveStore

__all__ = ["join_archived"]


def join_archived(archive: ArchiveStore, streams: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """Prepend archived items in place; (stream_id, problem) for every disagreement."""
    problems: list[tuple[str, str]] = []
    for stream_id in sorted(archive.streams()):
        try:
            manifest = archive.get_manifest(stream_id)
            if manifest is None or manifest.archived_through == 0:
                continue
            broken = manifest.problems()
            if broken:
                problems.append((stream_id, "manifest: " + "; ".join(broken)))
                continue
            archived = archive.read_items(stream_id, 1, manifest.archived_through, manifest)
        except ArchiveError as exc:
            problems.append((stream_id, str(exc)))
            continue
        stored = streams.get(stream_id, [])
        held = {int(i["version"]["N"]): i for i in archived}
        rest = []
        for item in stored:
            version = int(item["version"]["N"])
            twin = held.get(version)
            if twin is None:
                rest.append(item)
            elif twin.get("hash") != item.get("hash"):
                problems.append((stream_id, f"version {version} in DynamoDB differs from its archived copy"))
        streams[stream_id] = archived + rest
    return problems
