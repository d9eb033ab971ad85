"""The connections table (PK ``connection_id``, SK ``sk``; GSIs ``by_user`` and ``by_stream``).

==========================  ======================  ==========================================
connection_id               sk                      attributes
==========================  ======================  ==========================================
``<connection id>``         ``conn``                ``user`` (GSI by_user), ``staff``,
                                                    ``connected_at``, ``expires_at`` (TTL)
``<connection id>``         ``sub#<stream_id>``     ``stream`` (GSI by_stream), ``expires_at``
``stream#<stream_id>``      ``pushed``              ``version``: the newest version pushed
==========================  ======================  ==========================================
"""

from __future__ import annotations

import time
from typing import Any

from realtime.connections import CONNECTION_LIFETIME, PUSHED_TTL, Connection, Connections

__all__ = ["BY_STREAM", "BY_USER", "DynamoDBConnections", "create_connections_table"]

BY_USER = "by_user"
BY_STREAM = "by_stream"
_CONN = "conn"


def _conflict(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDBConnections(Connections):
    def __init__(self, client: Any, table_name: str, *, clock: Any = time.time):
        self.client = client
        self.table = table_name
        self.clock = clock

    def add(self, connection: Connection) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "connection_id": {"S": connection.connection_id},
                "sk": {"S": _CONN},
                "user": {"S": connection.user},
                "staff": {"BOOL": connection.staff},
                "connected_at": {"N": str(connection.connected_at)},
                "expires_at": {"N": str(connection.connected_at + CONNECTION_LIFETIME)},
            },
        )

    def get(self, connection_id: str) -> Connection | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"connection_id": {"S": connection_id}, "sk": {"S": _CONN}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return Connection(
            connection_id=connection_id,
            user=item["user"]["S"],
            staff=bool(item.get("staff", {}).get("BOOL", False)),
            connected_at=int(item["connected_at"]["N"]),
        )

    def remove(self, connection_id: str) -> None:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "connection_id = :c",
            "ExpressionAttributeValues": {":c": {"S": connection_id}},
            "ProjectionExpression": "sk",
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            for item in page.get("Items", ()):
                self.client.delete_item(
                    TableName=self.table,
                    Key={"connection_id": {"S": connection_id}, "sk": item["sk"]},
                )
            if not page.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def subscribe(self, connection: Connection, stream_id: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "connection_id": {"S": connection.connection_id},
                "sk": {"S": f"sub#{stream_id}"},
                "stream": {"S": stream_id},
                "expires_at": {"N": str(connection.connected_at + CONNECTION_LIFETIME)},
            },
        )

    def _index(self, index: str, attribute: str, value: str) -> set[str]:
        found: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": "#a = :v",
            "ExpressionAttributeNames": {"#a": attribute},
            "ExpressionAttributeValues": {":v": {"S": value}},
        }
        while True:
            page = self.client.query(**request)
            found.update(item["connection_id"]["S"] for item in page.get("Items", ()))
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def targets(self, owner: str | None, stream_id: str) -> set[str]:
        found = self._index(BY_STREAM, "stream", stream_id)
        if owner:
            found |= self._index(BY_USER, "user", owner)
        return found

    def claim(self, stream_id: str, version: int) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"connection_id": {"S": f"stream#{stream_id}"}, "sk": {"S": "pushed"}},
                UpdateExpression="SET #v = :v, expires_at = :e",
                ConditionExpression="attribute_not_exists(#v) OR #v < :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={
                    ":v": {"N": str(int(version))},
                    ":e": {"N": str(int(self.clock()) + PUSHED_TTL)},
                },
            )
        except Exception as exc:
            if _conflict(exc):
                return False
            raise
        return True


def create_connections_table(client: Any, table_name: str) -> None:
    """The table as CDK declares it (cdk_app/constructs/realtime.py), for tests and tools."""
    keys = [("connection_id", "S"), ("sk", "S"), ("user", "S"), ("stream", "S")]
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "connection_id", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in keys],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"},
                              {"AttributeName": "connection_id", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            for index, attribute in ((BY_USER, "user"), (BY_STREAM, "stream"))
        ],
    )
