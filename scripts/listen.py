#!/usr/bin/env python3
"""`make listen`: forwards the local worker's merchant events to a URL of yours, signed.

What `stripe listen --forward-to` does for Stripe, for the worker `make dev` runs: it reads the
event feed (`GET /v1/events`, with `MERCHANT_API_KEY` from `.dev.vars`) and POSTs every new
event to `--forward-to`, signed exactly as the worker signs its own deliveries (Standard
Webhooks: `webhook-id` is the event id, `webhook-timestamp` Unix seconds, `webhook-signature:
v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">` keyed with the bytes of the secret
after `whsec_`). The body is the event exactly as the feed holds it, which is what the worker
itself would deliver.

- Only new events are forwarded: at start it skips to the end of the feed, then polls it about
  twice a second.
- The signing secret is made once (`whsec_` + base64 of 32 random bytes) and kept in
  `--secret-file` (mode 0600), so the endpoint's configuration keeps working across runs. The
  first line printed says where events go and which secret verifies them; then one line per
  event: `--> charge.succeeded evt_... <-- 200`.
- A forward that fails (no connection, a timeout, a status other than 2xx) is tried again up
  to 3 times, a little later each time, then given up (said so) and the next event goes.
- A worker that is not running is waited for. Ctrl-C or SIGTERM stops it (exit status 0).
- It never prints the merchant key.

Python 3 standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.5
# Waits before the retries of a failed forward: three retries, then the next event.
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
FORWARD_TIMEOUT_S = 10
WORKER_TIMEOUT_S = 30
PAGE = 100


class Stop(Exception):
    """SIGTERM: stop quietly, as for Ctrl-C."""


class Fatal(Exception):
    """A problem waiting cannot fix: said once, exit status 1."""


def say(line):
    print(line, flush=True)


def warn(line):
    print(f"listen: {line}", file=sys.stderr, flush=True)


# --- settings --------------------------------------------------------------------------------


def http_url(text, what):
    url = urllib.parse.urlsplit(text or "")
    if url.scheme not in ("http", "https") or not url.netloc:
        raise Fatal(f"{what} must be an http:// or https:// URL, not {text!r}")
    return text


def dev_var(path, name):
    """The value of `NAME=` in a .dev.vars file (dotenv: optional quotes, `export`, comments)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise Fatal(f"cannot read {path} ({e.strerror}): run `make dev` once, it creates it")
    for line in lines:
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if value:
                return value
    raise Fatal(f"{path} sets no {name}")


def decode_secret(secret):
    try:
        key = base64.b64decode(secret.strip().removeprefix("whsec_"), validate=True)
    except ValueError:
        return None
    return key if len(key) >= 16 else None


def load_or_make_secret(path):
    """The secret kept in `path`, made (and written with mode 0600) the first time."""
    path = Path(path)
    if path.exists():
        secret = path.read_text(encoding="utf-8").strip()
        if not secret.startswith("whsec_") or decode_secret(secret) is None:
            raise Fatal(
                f"{path} does not hold a signing secret (whsec_ + base64 of at least 16 bytes); "
                "delete it to have a new one made"
            )
        return secret
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secret + "\n")
    return secret


# --- the feed --------------------------------------------------------------------------------


class Unreachable(Exception):
    pass


def describe(error):
    """A network error in a few words: `connection refused`, not `[Errno 111] ...`."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


class BadCursor(Exception):
    pass


def raw_events(text, count):
    """The events of a feed page as the worker wrote them (the page is put together around the
    events' own JSON text), or None when the page is not laid out that way."""
    decoder = json.JSONDecoder()
    start = text.find("[")
    if not text.startswith('{"data":[') or start < 0:
        return None
    out, i = [], start + 1
    while len(out) < count:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        try:
            _, end = decoder.raw_decode(text, i)
        except ValueError:
            return None
        out.append(text[i:end])
        i = end
    return out


class Feed:
    def __init__(self, worker, key):
        self.worker = worker.rstrip("/")
        self.key = key

    def page(self, after):
        query = {"limit": str(PAGE)}
        if after:
            query["startingAfter"] = after
        url = f"{self.worker}/v1/events?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.key}"})
        try:
            with urllib.request.urlopen(request, timeout=WORKER_TIMEOUT_S) as r:
                text = r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            if e.code == 400 and after and "startingAfter" in detail:
                raise BadCursor() from None
            if e.code in (401, 403):
                raise Fatal(
                    f"the worker at {self.worker} refused the merchant key ({e.code}): is it "
                    "running with the .dev.vars given (--dev-vars)?"
                ) from None
            if e.code == 404:
                raise Fatal(f"{self.worker} has no /v1/events: is it this project's worker?")
            raise Unreachable(f"the worker answered {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise Unreachable(describe(e)) from None
        page = json.loads(text)
        events = page.get("data") or []
        raws = raw_events(text, len(events))
        bodies = []
        for i, event in enumerate(events):
            raw = raws[i] if raws else None
            if raw is None or json.loads(raw) != event:
                raw = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            bodies.append((event, raw))
        return bodies, bool(page.get("hasMore")), page.get("nextCursor")

    def after(self, cursor):
        """Every event after `cursor` (the whole feed when None), oldest first, and the cursor
        to read on from: the feed's own when it gives one (a sharded ledger's gives it on every
        page, holding each shard's place), else the last event's id."""
        out = []
        while True:
            bodies, more, next_cursor = self.page(cursor)
            out.extend(bodies)
            if next_cursor:
                cursor = next_cursor
            elif bodies:
                cursor = bodies[-1][0]["id"]
            if not (more and bodies):
                return out, cursor


def wait_for_worker(feed, action):
    """Runs `action` until the worker answers; says once that it is waiting, and when it is back."""
    waiting = False
    while True:
        try:
            result = action()
            if waiting:
                say(f"The worker at {feed.worker} answers again.")
            return result
        except Unreachable as e:
            if not waiting:
                say(
                    f"Cannot reach the worker at {feed.worker} ({e}); is `make dev` running? "
                    "Retrying every 2 s..."
                )
                waiting = True
            time.sleep(2)


# --- forwarding ------------------------------------------------------------------------------


def sign(key, event_id, timestamp, body):
    mac = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def post(url, key, event_id, body):
    """One signed attempt: (True, status) on a 2xx, (False, what happened) otherwise."""
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "recurring-edge-listen",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, event_id, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_S) as r:
            r.read()
            return 200 <= r.status < 300, str(r.status)
    except urllib.error.HTTPError as e:
        return False, str(e.code)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return False, f"no answer within {FORWARD_TIMEOUT_S} s"
        return False, describe(e)


def forward(url, key, event, body):
    event_id, kind = event.get("id", "?"), event.get("type", "?")
    data = body.encode("utf-8")
    attempts = len(RETRY_DELAYS_S) + 1
    for attempt in range(1, attempts + 1):
        ok, outcome = post(url, key, event_id, data)
        if ok:
            say(f"--> {kind} {event_id} <-- {outcome}")
            return True
        if attempt < attempts:
            delay = RETRY_DELAYS_S[attempt - 1]
            say(f"--> {kind} {event_id} <-- {outcome} (attempt {attempt} of {attempts}; again in {delay:g} s)")
            time.sleep(delay)
        else:
            say(f"--> {kind} {event_id} <-- {outcome}; gave up after {attempts} attempts, moving on")
    return False


# --- main ------------------------------------------------------------------------------------


def arguments(argv):
    port = os.environ.get("WORKER_PORT") or "8787"
    p = argparse.ArgumentParser(
        prog="listen.py",
        description="Forward the local worker's events to a URL, signed as the worker signs them "
        "(Standard Webhooks). Only events made after it starts are forwarded.",
    )
    p.add_argument(
        "--forward-to", required=True, metavar="URL", help="where to POST each event (http or https)"
    )
    p.add_argument(
        "--worker",
        default=f"http://127.0.0.1:{port}",
        metavar="URL",
        help="the local worker (default http://127.0.0.1:$WORKER_PORT, 8787)",
    )
    p.add_argument(
        "--dev-vars",
        default=str(ROOT / ".dev.vars"),
        metavar="PATH",
        help="where MERCHANT_API_KEY is read (default .dev.vars at the repository's root)",
    )
    p.add_argument(
        "--secret-file",
        default=str(ROOT / ".wrangler" / "listen-secret"),
        metavar="PATH",
        help="where the signing secret is kept (default .wrangler/listen-secret; made if missing)",
    )
    p.add_argument(
        "--events",
        default="",
        metavar="TYPE,TYPE",
        help="forward only these event types (default: every type)",
    )
    return p.parse_args(argv)


def run(args):
    url = http_url(args.forward_to, "--forward-to")
    worker = http_url(args.worker, "--worker")
    only = {t.strip() for t in args.events.split(",") if t.strip()}
    key = dev_var(args.dev_vars, "MERCHANT_API_KEY")
    secret = load_or_make_secret(args.secret_file)
    signing_key = decode_secret(secret)
    feed = Feed(worker, key)

    # Skip to the end of the feed: what happened before listen started is not forwarded.
    def skip():
        events, end = feed.after(None)
        return [e["id"] for e, _ in events], end

    seen, cursor = wait_for_worker(feed, skip)
    known = set(seen)
    kinds = f" ({', '.join(sorted(only))} only)" if only else ""
    say(f"Ready. Forwarding events{kinds} to {url}; verify them with the secret {secret}")

    while True:
        try:
            events, cursor = wait_for_worker(feed, lambda: feed.after(cursor))
        except BadCursor:
            # The event the feed was read after is gone (a test clock deleted with its
            # customers' events): read the whole feed again and send what was never seen.
            everything, cursor = wait_for_worker(feed, lambda: feed.after(None))
            events = [(e, b) for e, b in everything if e["id"] not in known]
        for event, body in events:
            event_id = event.get("id")
            if event_id in known:
                continue
            known.add(event_id)
            if only and event.get("type") not in only:
                continue
            forward(url, signing_key, event, body)
        time.sleep(POLL_S)


def main(argv=None):
    args = arguments(argv)

    def on_term(_signum, _frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_term)
    try:
        run(args)
    except (KeyboardInterrupt, Stop):
        return 0
    except BrokenPipeError:
        # Whoever read our output went away: nothing left to say it to.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Fatal as e:
        warn(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
