"""Platform functions shared by every context: snapshotter, publisher, ops/health/openapi.

Named ``cairn_platform``, not ``platform``, which would shadow the standard library module.
"""
