"""``python -m local``: synthesize the CDK app and run it locally (what ``make dev`` does)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")),
                   help="HTTP API port (default $PORT or 3000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--stack", default="Cairn", help="stack to run (default Cairn)")
    p.add_argument("--template", type=Path, help="run this template instead of synthesizing the app")
    p.add_argument("--state-dir", type=Path, default=REPO / ".local",
                   help="outputs.json, signing key, function logs (default .local/)")
    p.add_argument("--cdk-out", type=Path, default=REPO / ".local" / "cdk.out",
                   help="where the local synth goes (default .local/cdk.out)")
    p.add_argument("--resynth", action="store_true", help="synthesize even if cdk_app is unchanged")
    p.add_argument("--quiet", action="store_true", help="function logs only to .local/logs/, not the console")
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument("--max-concurrency", type=int, default=8,
                   help="execution environments per function (default 8)")
    chaos = p.add_argument_group("chaos (also CAIRN_CHAOS_* env vars; POST /_local/chaos at run time)")
    chaos.add_argument("--chaos-shuffle", action="store_true",
                       help="deliver stream records over virtual shards: per-item order only")
    chaos.add_argument("--chaos-duplicate", type=float, help="probability a batch/record is delivered again")
    chaos.add_argument("--chaos-throttle", type=float, help="probability a function's DynamoDB call is throttled")
    chaos.add_argument("--chaos-lambda-throttle", type=float,
                       help="probability an event-source invocation is throttled")
    chaos.add_argument("--chaos-seed", type=int)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.chdir(REPO)
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(k, "testing")
    logging.basicConfig(level=logging.INFO, format="local: %(message)s", stream=sys.stderr)
    for noisy in ("botocore", "urllib3", "werkzeug", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from local.runtime import LocalRuntime, RuntimeOptions
    from local.synth import SynthError, synthesize
    from local.template import Template, TemplateError

    t0 = time.time()
    if args.template:
        template_path = args.template
    else:
        print("local: synthesizing the CDK app (cdk_app/) ...", file=sys.stderr, flush=True)
        try:
            template_path, fresh = synthesize(REPO, args.cdk_out, args.stack, force=args.resynth)
        except SynthError as exc:
            print(f"local: {exc}", file=sys.stderr)
            return 2
        print(f"local: template {template_path.relative_to(REPO) if template_path.is_relative_to(REPO) else template_path}"
              f" ({'synthesized' if fresh else 'unchanged, reused'} in {time.time() - t0:.1f} s)",
              file=sys.stderr, flush=True)
    overrides = {
        "host": args.host, "port": args.port, "state_dir": args.state_dir,
        "echo_function_logs": not args.quiet, "max_concurrency": args.max_concurrency,
        "access_log": not args.no_access_log,
    }
    opts = RuntimeOptions.from_env(**overrides)
    if args.chaos_shuffle:
        opts.shuffle = True
    for name in ("duplicate", "throttle", "lambda_throttle", "seed"):
        value = getattr(args, f"chaos_{name}")
        if value is not None:
            setattr(opts, name, value)
    try:
        template = Template.load(template_path, args.stack)
        runtime = LocalRuntime(template, opts).start(publish_outputs=False)
    except (TemplateError, OSError) as exc:
        print(f"local: cannot start: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("CAIRN_LOCAL_SEED_CATALOG", "1") != "0" and runtime.issuer is not None:
        from local.seed import seed_demo_catalog

        try:
            seeded = seed_demo_catalog(runtime.base_url, runtime.issuer.issue("local-seed", ["staff"]))
            runtime.warnings.append(f"demo catalog: {', '.join(seeded)}")
        except (RuntimeError, OSError) as exc:
            runtime.warnings.append(f"demo catalog not seeded: {exc}")
        if runtime.lambdas is not None:  # seeding's environments: the session starts as after a deploy
            closed = runtime.lambdas.close_idle()
            print(f"local: start-up done, its {closed} idle execution environments closed", file=sys.stderr, flush=True)
    runtime.publish_outputs()  # ready: suites and scripts wait for this file, so not before the catalog is
    _banner(runtime, time.time() - t0)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    wait_until_stopped(stop)
    print("local: stopping", file=sys.stderr, flush=True)
    runtime.stop()
    return 0


def wait_until_stopped(stop: threading.Event, poll: float = 0.5) -> None:
    """Block the main thread until a signal handler sets ``stop``.

    Not an untimed ``stop.wait()``: the kernel may deliver SIGINT/SIGTERM to any thread of the
    process (the runtime has dozens), and then only flags the main thread, which runs Python's
    handlers when it next executes bytecode — blocked in an untimed wait it never did, and a
    Ctrl-C of ``make dev`` (or the test suites' SIGTERM) was ignored: one stop in five hung here."""
    while not stop.wait(poll):
        pass


def _banner(runtime: object, seconds: float) -> None:
    from local.runtime import LocalRuntime

    assert isinstance(runtime, LocalRuntime)
    url = runtime.base_url
    st = runtime.status()
    n_fn = len(st["functions"])
    n_streams = sum(1 for m in st["mappings"] if m["kind"] in ("dynamodb", "kinesis"))
    n_queues = sum(1 for m in st["mappings"] if m["kind"] == "sqs")
    endpoint = st["outputs"].get("AwsEndpointUrl")
    chaos = runtime.chaos_state()
    chaos_on = [k for k in ("shuffle", "duplicate", "throttle", "lambda_throttle") if chaos[k]]
    body = ('{"items":[{"sku":"BOOK-1","quantity":2}],"currency":"USD"}')
    lines = [
        "",
        f"Cairn is running locally ({seconds:.1f} s): stack {runtime.template.stack_name}, "
        f"{n_fn} functions, {len(st['routes'])} routes, {n_streams} stream + {n_queues} queue mappings",
        f"  API       {url}        docs: {url}/docs",
        *([f"  WebSocket {st['outputs']['WsUrl']}?token=…   live updates: make watch USER=alice"]
          if st["outputs"].get("WsUrl") else []),
        f"  AWS       {endpoint}   e.g. aws --endpoint-url {endpoint} dynamodb list-tables",
        f"  outputs   {runtime.state_dir / 'outputs.json'}    logs: {runtime.state_dir / 'logs'}/",
    ]
    if chaos_on:
        lines.append(f"  chaos     {', '.join(f'{k}={chaos[k]}' for k in chaos_on)}")
    for w in runtime.warnings:
        lines.append(f"  note      {w}")
    lines += [
        "",
        "Try it (another terminal):",
        "  TOKEN=$(make -s token USER=alice GROUPS=staff)",
        f"  curl -s -X POST {url}/orders -H \"Authorization: Bearer $TOKEN\" "
        f"-H 'Content-Type: application/json' -d '{body}'",
        "",
        "Ctrl-C stops it.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
