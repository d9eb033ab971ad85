"""Real-time updates over an API Gateway WebSocket API (docs/realtime.md).

``auth`` verifies the Cognito JWT of ``$connect``; ``connections`` (+ its ``dynamodb`` sibling)
keeps who is connected and who follows which stream; ``messages`` is the wire protocol (pure);
``handlers`` serves the three routes; ``pusher`` turns read-model commits into pushes.
"""
