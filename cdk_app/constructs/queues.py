"""Dead-letter queues: where what could not be delivered waits for a person.

One shape for every one of them (SSE, TLS only, a retention, and the two cdk-nag findings a
dead-letter queue raises, answered with what it holds and who reads it)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.constructs.nag import acknowledge

__all__ = ["dead_letter_queue"]


def dead_letter_queue(
    scope: Construct,
    id: str,
    *,
    holds: str,
    handled: str,
    retention: Duration = Duration.days(14),
    of_a_queue: bool = False,
) -> sqs.Queue:
    """``holds``: what lands here; ``handled``: who reads or drains it. ``of_a_queue``: it is the
    redrive target of another SQS queue, which cdk-nag recognises (no SQS3 finding to answer)."""
    queue = sqs.Queue(
        scope, id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=retention
    )
    findings = {
        "Serverless-SQSRedrivePolicy": (
            f"A dead-letter queue ({holds}): no function consumes it, so it has no receive count to "
            f"redrive on; {handled}."
        ),
    }
    if not of_a_queue:
        findings["AwsSolutions-SQS3"] = (
            f"This queue is itself a dead-letter destination ({holds}), which cdk-nag does not "
            f"recognise as a dead-letter queue use; {handled}."
        )
    acknowledge(queue, findings)
    return queue
