"""Issue 15's wiring: the catalog (prices from the server), autonomous payments, payment timeouts.

The functions themselves are the stack's (``FUNCTIONS``); this module gives them exactly what
they need and nothing else, so the stack only calls :func:`wire_catalog` / :func:`wire_payments`.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.event_bus import EventBus, Subscription
from cdk_app.constructs.event_store import EventStore
from cdk_app.constructs.function import CairnFunction
from cdk_app.constructs.projection import Projection
from cdk_app.constructs.queues import dead_letter_queue

__all__ = ["CATALOG_PREFIX", "ORDER_PREFIX", "PAYMENT_PREFIX", "payment_intents_key", "wire_catalog", "wire_payments"]

CATALOG_PREFIX = "product-"
ORDER_PREFIX = "order-"
PAYMENT_PREFIX = "payment-"


# An SQS event source's maximum concurrency: one busy consumer cannot take the account's
# concurrency from the stream consumers (issue 17, defect 7). The stack uses the same value.
SQS_MAX_CONCURRENCY = 5


def wire_catalog(
    scope: Construct,
    *,
    catalog: CairnFunction,
    projections: CairnFunction,
    orders_commands: CairnFunction,
    store: EventStore,
    table: dynamodb.ITable,
    alerts: Alerts,
) -> Projection:
    """Catalog commands append to ``product-*`` streams only; the projection writes the catalog
    table; the order service may read that table (its published read model) and nothing of the
    catalog's streams."""
    store.grant_append(catalog.role, stream_prefixes=[CATALOG_PREFIX])
    store.grant_write_markers(catalog.role)
    table.grant_read_data(catalog.role)
    table.grant_read_data(orders_commands.role)
    return Projection(
        scope,
        "CatalogProjection",
        function=projections,
        event_store=store,
        stream_prefixes=[CATALOG_PREFIX],
        read_models=[table],
        alerts=alerts,
    )


def payment_intents_key(scope: Construct) -> kms.Key:
    """The KMS key payment tokens are encrypted with (orders: encrypt; payments: decrypt)."""
    return kms.Key(
        scope,
        "PaymentIntentsKey",
        description="Cairn payment intents: encrypts payment tokens between the order and payment services",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.DESTROY,  # intents live an hour; nothing outlives the key
    )


def wire_payments(
    scope: Construct,
    *,
    fns: dict[str, CairnFunction],
    store: EventStore,
    bus: EventBus,
    intents: dynamodb.ITable,
    intents_key: kms.IKey,
    timeouts_table: dynamodb.ITable,
) -> list[Subscription]:
    """The payment service and the order side of its saga, each with exactly what it needs.

    - OrdersCommands: put payment intents, encrypt with the intents key (never decrypt).
    - Payments: append to ``payment-*`` streams only (LeadingKeys), read + delete intents, decrypt.
    - OrderPayments / PaymentTimeouts: the orders runtime (``order-*`` streams only); the timeouts
      table for the process manager; a schedule drives the sweep.
    """
    orders_commands, payments = fns["OrdersCommands"], fns["Payments"]
    intents.grant(orders_commands.role, "dynamodb:PutItem")
    intents_key.grant(orders_commands.role, "kms:Encrypt")  # not ReEncrypt*/GenerateDataKey*

    store.grant_append(payments.role, stream_prefixes=[PAYMENT_PREFIX])
    store.grant_write_markers(payments.role)
    intents.grant(payments.role, "dynamodb:GetItem", "dynamodb:DeleteItem")
    intents_key.grant_decrypt(payments.role)

    for name in ("OrderPayments", "PaymentTimeouts"):
        store.grant_append(fns[name].role, stream_prefixes=[ORDER_PREFIX])
        store.grant_write_markers(fns[name].role)
        store.grant_snapshot_read(fns[name].role)
    timeouts_table.grant(fns["PaymentTimeouts"].role, "dynamodb:PutItem", "dynamodb:Scan")

    missed = dead_letter_queue(
        scope, "PaymentTimeoutsScheduleDeadLetters", holds="ticks of the timeouts schedule that were missed",
        handled="a missed tick is harmless (the next sweep takes every overdue process), so it is only inspected",
        retention=Duration.days(1),
    )
    events.Rule(
        scope,
        "PaymentTimeoutsSchedule",
        description="Sweep payment timeouts: fail orders whose payment outcome never arrived",
        schedule=events.Schedule.rate(Duration.minutes(1)),
        targets=[
            targets.LambdaFunction(
                fns["PaymentTimeouts"].function, retry_attempts=2, max_event_age=Duration.minutes(5),
                dead_letter_queue=missed,
            )
        ],
    )
    return [
        bus.subscribe(
            "PaymentsSubscription",
            function=payments,
            detail_types=["OrderCreated", "OrderCancelled", "PaymentFailed", "PaymentProcessed"],
            max_concurrency=SQS_MAX_CONCURRENCY,
        ),
        bus.subscribe(
            "OrderPaymentsSubscription",
            function=fns["OrderPayments"],
            detail_types=["PaymentCaptured", "PaymentDeclined", "PaymentRefunded"],
            source="cairn.payments",
            max_concurrency=SQS_MAX_CONCURRENCY,
        ),
        bus.subscribe(
            "PaymentTimeoutsSubscription",
            function=fns["PaymentTimeouts"],
            detail_types=["OrderCreated", "PaymentProcessed", "PaymentFailed", "OrderCancelled"],
            max_concurrency=SQS_MAX_CONCURRENCY,
        ),
    ]
