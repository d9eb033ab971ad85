"""Stacks: thin compositions of cdk_app.constructs."""

from cdk_app.stacks.cairn_stack import FUNCTIONS, ROUTES, SNAPSHOT_EVERY, CairnStack, FunctionSpec

__all__ = ["CairnStack", "FUNCTIONS", "FunctionSpec", "ROUTES", "SNAPSHOT_EVERY"]
