"""``python -m local.watch --user alice``: print the real-time updates a user's socket receives.

Connects to ``WsUrl`` of the running ``make dev`` (``.local/outputs.json``) with a token signed by
the local issuer — what a browser would do with ``new WebSocket(url + "?token=" + jwt)``. Staff can
follow any stream: ``--subscribe order-…``. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from local.auth import JwtIssuer

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.watch", description=__doc__)
    p.add_argument("--user", default="alice")
    p.add_argument("--groups", default="", help="comma-separated, e.g. staff")
    p.add_argument("--subscribe", action="append", default=[], metavar="STREAM_ID",
                   help="also follow this stream (staff; repeatable)")
    p.add_argument("--count", type=int, default=0, help="stop after this many updates (0: never)")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local")
    args = p.parse_args(argv)
    outputs_file = args.state_dir / "outputs.json"
    if not outputs_file.exists() or not (args.state_dir / "auth.json").exists():
        print("no running local runtime in .local/: start it with `make dev`", file=sys.stderr)
        return 1
    url = next(iter(json.loads(outputs_file.read_text()).values()))["WsUrl"]
    groups = [g for g in args.groups.split(",") if g]
    token = JwtIssuer.from_state(args.state_dir).issue(args.user, groups)

    from websockets.sync.client import connect

    seen = 0
    try:
        with connect(f"{url}?token={token}", open_timeout=60) as sock:
            print(f"connected to {url} as {args.user}", file=sys.stderr, flush=True)
            for stream_id in args.subscribe:
                sock.send(json.dumps({"action": "subscribe", "stream_id": stream_id}))
            for message in sock:
                print(message, flush=True)
                if json.loads(message).get("type", "").endswith(".updated"):
                    seen += 1
                    if args.count and seen >= args.count:
                        return 0
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
