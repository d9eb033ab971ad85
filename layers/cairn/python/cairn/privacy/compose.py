"""The personal-data codec a function builds from its environment: one way for every context.

``PERSONAL_DATA_KEYS_TABLE`` (per-subject X25519 key pairs), ``PERSONAL_DATA_KEY`` (the KMS key
that wraps the private keys) and ``PERSONAL_DATA_KEY_CACHE_SECONDS`` (how long a warm instance
keeps a key: the bound on how long an erasure takes to reach it; 60 s deployed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cairn.privacy.codec import PersonalDataCodec, key_cache_seconds

__all__ = ["codec_from_env"]


def codec_from_env(environ: Mapping[str, str] = os.environ) -> PersonalDataCodec:
    """Writers seal with a subject's public key (a keys-table GetItem, no KMS call); readers open
    with the private key (GetItem + KMS Decrypt); both cached per warm instance."""
    from cairn.aws import client
    from cairn.privacy.dynamodb import DynamoDBKeyStore
    from cairn.privacy.kms import KmsKeyWrapper

    return PersonalDataCodec(
        DynamoDBKeyStore(client("dynamodb"), environ["PERSONAL_DATA_KEYS_TABLE"]),
        KmsKeyWrapper(client("kms"), environ["PERSONAL_DATA_KEY"]),
        ttl=key_cache_seconds(environ),
    )
