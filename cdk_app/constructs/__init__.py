"""Reusable constructs, one per runtime component of Cairn (usable from any CDK app)."""

from cdk_app.constructs.alerts import Alerts
from cdk_app.constructs.dashboard import Dashboard
from cdk_app.constructs.event_bus import EventBus, Subscription
from cdk_app.constructs.event_store import EVENT_MUTATIONS, EventStore
from cdk_app.constructs.function import METRICS_NAMESPACE, RUNTIME, CairnFunction
from cdk_app.constructs.http_service import HttpService, Route
from cdk_app.constructs.integrity import Integrity
from cdk_app.constructs.layer import PythonLayer
from cdk_app.constructs.ops_alarms import OpsAlarms
from cdk_app.constructs.privacy import PersonalDataKeys
from cdk_app.constructs.projection import Projection, stream_filters
from cdk_app.constructs.realtime import Realtime
from cdk_app.constructs.snapshot_schedule import SnapshotSchedule
from cdk_app.constructs.tables import ReadModelTable

__all__ = [
    "Alerts",
    "CairnFunction",
    "Dashboard",
    "EVENT_MUTATIONS",
    "EventBus",
    "EventStore",
    "HttpService",
    "Integrity",
    "METRICS_NAMESPACE",
    "OpsAlarms",
    "PersonalDataKeys",
    "Projection",
    "PythonLayer",
    "RUNTIME",
    "ReadModelTable",
    "Realtime",
    "Route",
    "SnapshotSchedule",
    "Subscription",
    "stream_filters",
]
