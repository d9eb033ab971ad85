"""Cairn's CDK app (Python). ``cdk_app.app.build_app`` builds it; ``cdk synth`` runs ``app.py``.

Refers to the runtime code only by path (``functions/``, ``layers/``); never imports it.
"""
