"""``python -m cairn_tools.processes`` (``make processes``): the payment processes still open.

Lists the payment-timeouts process manager's OPEN processes (orders waiting for a payment
outcome), overdue first, with each order's current status from the event store — a process
overdue by more than a sweep interval is stuck (the schedule is not firing, or the order refuses).
``--all`` also shows CLOSED and TIMED_OUT ones. Tables from flags, env or ``.local/outputs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from cairn_tools import ROOT
from cairn_tools.config import ConfigError, _prepare_environment, load_outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn_tools.processes", description=__doc__)
    parser.add_argument("--all", action="store_true", help="closed and timed-out processes too")
    parser.add_argument("--table", help="PAYMENT_TIMEOUTS_TABLE (default: env or outputs file)")
    parser.add_argument("--events-table", help="EVENTS_TABLE (default: env or outputs file)")
    parser.add_argument("--endpoint-url", help="AWS endpoint (default: AWS_ENDPOINT_URL or outputs file)")
    parser.add_argument("--outputs", default=str(ROOT / ".local" / "outputs.json"))
    args = parser.parse_args(argv)
    outputs = load_outputs(args.outputs)
    table = args.table or os.environ.get("PAYMENT_TIMEOUTS_TABLE") or outputs.get("PaymentTimeoutsTableName")
    events = args.events_table or os.environ.get("EVENTS_TABLE") or outputs.get("EventsTableName")
    if not table or not events:
        raise ConfigError("no payment-timeouts / events table: pass --table/--events-table or run `make dev`")
    from cairn_tools.config import Settings

    _prepare_environment(Settings("processes", table, events,
                                  args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or outputs.get("AwsEndpointUrl"),
                                  None))
    from cairn.aws import client
    from cairn.store.dynamodb import DynamoDBEventStore
    from orders.app import registry

    dynamodb = client("dynamodb")
    store = DynamoDBEventStore(registry, dynamodb, events_table=events)
    now = int(time.time())
    rows = []
    kwargs: dict = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            state = item["state"]["S"]
            if state != "OPEN" and not args.all:
                continue
            order_id = item["order_id"]["S"]
            events = list(store.read(order_id))
            last = events[-1] if events else None
            due = int(item["due_at"]["N"]) if "due_at" in item else None
            rows.append({
                "order_id": order_id, "process": state, "due_at": due,
                "overdue_seconds": max(0, now - due) if due is not None and state == "OPEN" else 0,
                "order_version": last.version if last else 0, "order_last_event": last.type if last else None,
            })
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    rows.sort(key=lambda r: -r["overdue_seconds"])
    print(json.dumps({"processes": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
