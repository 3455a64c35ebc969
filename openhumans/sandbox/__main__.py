"""``python -m openhumans.sandbox``: serve the Open Humans sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence

from .runner import (
    DEFAULT_ACCESS_TOKEN_LIFETIME,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    Sandbox,
)

ENV_PREFIX = "OH_SANDBOX_"


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"), default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m openhumans.sandbox",
        description=(
            "Run a local stand-in for www.openhumans.org: the OAuth2 authorize page and token "
            "endpoint, the project API, file storage, and the deauthorization webhook. "
            "Every option can also be set with an environment variable OH_SANDBOX_<OPTION> "
            "(e.g. OH_SANDBOX_PORT=8001); command-line options win."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    opt = parser.add_argument
    opt("--host", default=_env("host", "127.0.0.1"), help="interface to bind (OH_SANDBOX_HOST)")
    opt(
        "--port",
        type=int,
        default=int(_env("port", "8001") or 8001),
        help="port to listen on; 0 picks a free one (OH_SANDBOX_PORT)",
    )
    opt(
        "--client-id",
        default=_env("client_id", DEFAULT_CLIENT_ID),
        help="the project's OAuth2 client ID (OH_SANDBOX_CLIENT_ID)",
    )
    opt(
        "--client-secret",
        default=_env("client_secret", DEFAULT_CLIENT_SECRET),
        help="the project's OAuth2 client secret (OH_SANDBOX_CLIENT_SECRET)",
    )
    opt(
        "--redirect-uri",
        default=_env("redirect_uri", DEFAULT_REDIRECT_URI),
        help="the project's registered redirect URL (OH_SANDBOX_REDIRECT_URI)",
    )
    opt(
        "--webhook-url",
        default=_env("webhook_url", None),
        help="the deauthorization webhook URL; unset sends none (OH_SANDBOX_WEBHOOK_URL)",
    )
    opt(
        "--webhook-secret",
        default=_env("webhook_secret", None),
        help="secret for X-OpenHumans-Webhooks-Signature; unset sends unsigned webhooks "
        "(OH_SANDBOX_WEBHOOK_SECRET)",
    )
    opt(
        "--state-file",
        default=_env("state_file", None),
        help="JSON file holding members, tokens and files across restarts; file bytes go "
        "to <state-file>.files/ (OH_SANDBOX_STATE_FILE)",
    )
    opt(
        "--access-token-lifetime",
        type=int,
        default=int(_env("access_token_lifetime", str(DEFAULT_ACCESS_TOKEN_LIFETIME)) or 0),
        help="seconds an access token lives (OH_SANDBOX_ACCESS_TOKEN_LIFETIME)",
    )
    opt(
        "--tls",
        action="store_true",
        default=(_env("tls", "") or "").lower() in ("1", "true", "yes"),
        help="serve HTTPS; without --tls-cert/--tls-key a self-signed pair is generated "
        "(needs the 'cryptography' package) (OH_SANDBOX_TLS)",
    )
    opt(
        "--tls-cert",
        default=_env("tls_cert", None),
        help="PEM certificate (chain) file for --tls (OH_SANDBOX_TLS_CERT)",
    )
    opt(
        "--tls-key",
        default=_env("tls_key", None),
        help="PEM private key file for --tls (OH_SANDBOX_TLS_KEY)",
    )
    opt(
        "--quiet",
        action="store_true",
        default=(_env("quiet", "") or "").lower() in ("1", "true", "yes"),
        help="do not log each request (OH_SANDBOX_QUIET)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    # "Serve until Ctrl-C", even when started from a parent that ignores SIGINT (a
    # background job, nohup): Python leaves SIGINT ignored then.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    sandbox = Sandbox(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uri=args.redirect_uri,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        host=args.host,
        port=args.port,
        state_file=args.state_file,
        access_token_lifetime=args.access_token_lifetime,
        verbose=not args.quiet,
        tls=args.tls,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    try:
        sandbox.start()
    except (ssl.SSLError, FileNotFoundError) as err:
        print(f"cannot use the TLS certificate and key: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # TLSUnavailable: no cryptography for a generated pair
        print(str(err), file=sys.stderr)
        return 1
    print(f"Open Humans sandbox running at {sandbox.base_url}/", flush=True)
    print(f"  client id:     {sandbox.client_id}")
    print(f"  client secret: {sandbox.client_secret}")
    print(f"  redirect URI:  {sandbox.redirect_uri}")
    print(f"  master token:  {sandbox.master_token}")
    print(
        f"  authorize URL: {sandbox.base_url}/direct-sharing/projects/oauth2/authorize/"
        f"?client_id={sandbox.client_id}&response_type=code"
    )
    if args.webhook_url:
        print(f"  webhook:       {args.webhook_url}")
    if args.state_file:
        print(f"  state file:    {args.state_file}")
    if sandbox.tls_ca_file:
        print(f"  TLS CA file:   {sandbox.tls_ca_file}  (trust it: SSL_CERT_FILE=...)")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
