"""Cairn: the generic event-sourcing runtime (no domain knowledge).

Subpackages: ``events`` (envelope, registry, upcasters), ``store`` (EventStore + adapters),
``snapshots`` (SnapshotStore + adapters), ``commands`` (load -> decide -> append).
"""

__version__ = "0.1.0"
