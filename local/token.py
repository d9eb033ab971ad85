"""``python -m local.token --user alice --groups staff``: print a token for the local runtime.

Signs with the key the local runtime keeps in ``.local/`` (created on its first start), with
the issuer and audience of the template's JWT authorizer — the same token ``POST /_local/token``
returns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local.auth import JwtIssuer

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.token", description=__doc__)
    p.add_argument("--user", default="alice", help="the token's sub (default alice)")
    p.add_argument("--groups", default="", help="comma-separated Cognito groups, e.g. staff")
    p.add_argument("--scopes", default="", help="space- or comma-separated scopes")
    p.add_argument("--expires-in", type=int, default=3600, help="seconds (default 3600)")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local")
    args = p.parse_args(argv)
    if not (args.state_dir / "auth.json").exists():
        print("no local runtime state in .local/: start it once with `make dev`", file=sys.stderr)
        return 1
    issuer = JwtIssuer.from_state(args.state_dir)
    groups = [g.strip() for g in args.groups.replace(" ", ",").split(",") if g.strip()]
    scopes = [s for s in args.scopes.replace(",", " ").split() if s]
    print(issuer.issue(args.user, groups, scopes=scopes, expires_in=args.expires_in))
    return 0


if __name__ == "__main__":
    sys.exit(main())
