#!/usr/bin/env python3
"""`make trigger EVENT=<type>`: makes the local worker write one event of a type, for real.

What `stripe trigger` does for Stripe, for the worker and PSP sandbox `make dev` runs: each type
is produced by the flow that produces it in production, through the worker's API and the
sandbox (no SQL, no made-up rows): a customer session and a checkout paid on the sandbox's
hosted page with one of its test cards, charges, refunds, cancels, pauses, a test clock of the
customer's own moved to a renewal, the cron run after the sandbox's settlement calendar moved.
It prints what it did, waits until the event is in the feed (`GET /v1/events?type=`), and
prints its id; exit status 1 when it never comes.

Every run uses a new customer (`trigger_<type>_<random>`); a type that needs time to pass puts
that customer on a test clock of their own (`POST /v1/test-clocks`), so nobody else's time
moves. Two types script the sandbox's provider for one call (its fault rules, put back as they
were afterwards): `charge.pending` (a payment request answered 500, so the charge is fenced) and
`refund.failed` (a return order refused). `charge.settled`, `refund.failed` (and
`refund.succeeded`, when the day's batch already took the payment) move the sandbox's clock, its
settlement calendar, forward until the payment settles; that clock is the sandbox's own and only
goes forward.

usage: trigger.py EVENT [--worker URL] [--sandbox URL] [--dev-vars PATH] [--timeout S]
       trigger.py --list

Python 3 standard library only. It never prints the merchant key, a session or a card token.
"""

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# The settings are read as listen.py reads them (no __pycache__ left in scripts/ for it).
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
from listen import Fatal, describe, dev_var, http_url  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# The sandbox's test cards (sandbox/README.md).
APPROVE = "4111111111111111"
SOFT_DECLINE_LATER = "4000000000009995"
HARD_DECLINE_LATER = "4000000000000119"
DECLINE_NOW = "4000000000000002"

CARD_SAYS = {
    APPROVE: "approved, and so are its later charges",
    SOFT_DECLINE_LATER: "approved now, its later charges declined softly (DENIED_NO_FUNDS)",
    HARD_DECLINE_LATER: "approved now, its later charges declined for good (DENIED_DO_NOT_TRY_AGAIN)",
    DECLINE_NOW: "declined",
}

DAY = dt.timedelta(days=1)


class Unreachable(Exception):
    pass


def iso(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def spaced(card):
    return " ".join(card[i : i + 4] for i in range(0, len(card), 4))


def call(method, url, body=None, headers=None, timeout=120):
    """(status, JSON answer or text). Raises Unreachable when nothing answers."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    h = {"Accept": "application/json"}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise Unreachable(describe(e)) from None
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def problem(status, answer):
    """What an answer says, for an error message: problems only (a success may hold a session)."""
    if status >= 400 and isinstance(answer, dict):
        detail = answer.get("detail") or answer.get("error") or ""
        return f"{status} {answer.get('title') or ''}: {detail}".strip()
    return str(status)


# --- the flows' vocabulary -------------------------------------------------------------------


class Trigger:
    def __init__(self, args, kind):
        self.kind = kind
        self.worker = args.worker.rstrip("/")
        self.sandbox = args.sandbox.rstrip("/")
        self.key = dev_var(args.dev_vars, "MERCHANT_API_KEY")
        self.timeout = args.timeout
        self.ref = f"trigger_{kind.replace('.', '_')}_{secrets.token_hex(4)}"
        self.session = None
        self.clock = None
        self.nudge = None
        self.feed_end = None
        self.known_charges = set()
        self.charges_read_at = 0.0

    # Output.
    def did(self, line):
        print(f"  - {line}", flush=True)

    # Calls.
    def to_worker(self, method, path, body=None, headers=None, timeout=120):
        try:
            return call(method, self.worker + path, body, headers, timeout)
        except Unreachable as e:
            raise Fatal(f"cannot reach the worker at {self.worker} ({e}): is `make dev` running?")

    def merchant(self, method, path, body=None, ok=(200, 201, 202, 204), what=None, headers=None):
        h = {"Authorization": f"Bearer {self.key}"}
        h.update(headers or {})
        status, answer = self.to_worker(method, path, body, h)
        if status == 401:
            raise Fatal(f"the worker at {self.worker} refused the merchant key from the .dev.vars given")
        if status not in ok:
            raise Fatal(f"{what or method + ' ' + path}: {problem(status, answer)}")
        return status, answer

    def customer(self, method, path, body=None, ok=(200, 201, 202), what=None):
        h = {"Authorization": f"Bearer {self.session}"}
        status, answer = self.to_worker(method, path, body, h)
        if status not in ok:
            raise Fatal(f"{what or method + ' ' + path} (as the customer): {problem(status, answer)}")
        return status, answer

    def to_sandbox(self, method, path, body=None, ok=(200, 201, 204), what=None):
        try:
            status, answer = call(method, self.sandbox + path, body)
        except Unreachable as e:
            raise Fatal(f"cannot reach the PSP sandbox at {self.sandbox} ({e}): is `make dev` running?")
        if status not in ok:
            raise Fatal(f"{what or method + ' ' + path} (sandbox): {problem(status, answer)}")
        return answer

    # Time.
    def global_now(self):
        status, answer = self.to_worker(
            "GET", "/v1/test-clock", headers={"Authorization": f"Bearer {self.key}"}
        )
        if status == 404:
            raise Fatal(f"{self.kind} needs time to pass: run the worker with TEST_CLOCK=on (make dev does)")
        if status != 200:
            raise Fatal(f"GET /v1/test-clock: {problem(status, answer)}")
        return parse_time(answer["now"]).replace(microsecond=0)

    def own_clock(self, starts_at, why):
        """A test clock for this customer alone, and a session that puts them on it."""
        status, answer = self.to_worker(
            "POST",
            "/v1/test-clocks",
            {"name": f"trigger {self.ref}", "startsAt": iso(starts_at)},
            {"Authorization": f"Bearer {self.key}"},
        )
        if status == 404:
            raise Fatal(f"{self.kind} needs a test clock: run the worker with TEST_CLOCK=on (make dev does)")
        if status != 201:
            raise Fatal(f"POST /v1/test-clocks: {problem(status, answer)}")
        self.clock = answer["id"]
        self.did(f"test clock {self.clock} for this customer alone, at {iso(starts_at)} ({why})")
        self.mint(testClock=self.clock)

    def advance(self, to, why):
        _, answer = self.merchant(
            "POST",
            f"/v1/test-clocks/{self.clock}/advance",
            {"to": iso(to)},
            ok=(200,),
            what="advancing the customer's test clock",
        )
        self.did(f"test clock moved to {iso(to)} ({why})")
        return answer

    def cron(self):
        status, answer = self.to_worker("GET", "/__scheduled?cron=*+*+*+*+*", timeout=300)
        if status == 404:
            raise Fatal("the worker has no /__scheduled: run it with --test-scheduled (make dev does)")
        if status >= 400:
            raise Fatal(f"running the cron: {problem(status, answer)}")

    def settle_at_provider(self, order_id):
        """Moves the sandbox's clock (its settlement calendar) forward until the order's payment
        is settled: to its batch cutoff, then to its settlement date."""
        started = None
        for _ in range(24 * 12):
            ledger = self.to_sandbox("GET", f"/_sandbox/ledger?orderId={urllib.parse.quote(order_id)}")
            done = [
                p
                for p in ledger.get("payments", [])
                if p.get("orderId") == order_id and p.get("status") == "PAYMENT_COMPLETED"
            ]
            if not done:
                time.sleep(0.2)
                continue
            payment = done[-1]
            if payment.get("voided"):
                raise Fatal(f"the payment on order {order_id} was voided: it never settles")
            settlement = payment.get("settlement") or {}
            now = parse_time(self.to_sandbox("GET", "/_sandbox/clock")["now"])
            if started is None:
                started = now
            if settlement.get("status") == "SETTLED":
                if now > started:
                    self.did(
                        f"the sandbox's clock moved from {iso(started)} to {iso(now)}: the "
                        f"provider batched and settled the payment on {settlement.get('settlementDate')}"
                    )
                return payment
            target = now + dt.timedelta(hours=1)
            if settlement.get("settlementDate"):
                date = parse_time(settlement["settlementDate"] + "T00:00:01+00:00")
                target = max(target, date) if date > now else target
            self.to_sandbox(
                "PUT", "/_sandbox/clock", {"now": iso(target)}, ok=(200,), what="moving the sandbox's clock"
            )
        raise Fatal(f"the payment on order {order_id} did not settle at the sandbox")

    @contextlib.contextmanager
    def provider_fault(self, rule, says):
        """The sandbox's provider meets `rule` (one call): added to the fault rules in force, and
        taken out again afterwards."""
        before = self.to_sandbox("GET", "/_sandbox/faults")
        rules = list(before.get("rules") or [])
        config = {"rules": rules + [rule]}
        if before.get("seed") is not None:
            config["seed"] = before["seed"]
        self.to_sandbox("PUT", "/_sandbox/faults", config, what="setting a sandbox fault")
        self.did(f"the sandbox's provider will {says} (one call)")
        try:
            yield
        finally:
            now = self.to_sandbox("GET", "/_sandbox/faults")
            rest = list(now.get("rules") or [])[:-1]
            if any(r.get("times") != 0 for r in rest):
                config = {"rules": rest}
                if now.get("seed") is not None:
                    config["seed"] = now["seed"]
                self.to_sandbox("PUT", "/_sandbox/faults", config)
            else:
                self.to_sandbox("DELETE", "/_sandbox/faults")

    # Customers.
    def mint(self, **extra):
        body = {"customerRef": self.ref, "email": "ada@example.com", "name": "Ada Lovelace", **extra}
        _, answer = self.merchant("POST", "/v1/customer-sessions", body, ok=(201,), what="minting a session")
        self.session = answer["clientSecret"]

    def checkout(self, plan, **extra):
        if self.session is None:
            self.mint()
        body = {"planId": plan, "returnUrl": f"{self.worker}/", **extra}
        _, answer = self.customer("POST", "/v1/checkout", body, ok=(201,), what=f"a checkout of {plan}")
        return answer

    def pay(self, order_id, card):
        answer = self.to_sandbox(
            "POST",
            f"/_sandbox/orders/{order_id}/pay",
            {"cardNumber": card, "expiryMonth": 12, "expiryYear": 2031, "cardholderName": "Ada Lovelace"},
            ok=(200, 201),
            what="paying on the hosted page",
        )
        return answer

    def wait_checkout(self, checkout_id):
        deadline = time.monotonic() + 60
        while True:
            _, state = self.customer("GET", f"/v1/checkout/{checkout_id}", ok=(200,))
            if state.get("status") != "pending":
                return state
            if time.monotonic() > deadline:
                raise Fatal(f"checkout {checkout_id} is still pending after a minute")
            time.sleep(0.3)

    def subscribe(self, plan, card=APPROVE, **extra):
        created = self.checkout(plan, **extra)
        self.pay(created["orderId"], card)
        state = self.wait_checkout(created["checkoutId"])
        what = f"{plan}" + (f" in {extra['installments']} installments" if "installments" in extra else "")
        if state.get("status") != "paid":
            raise Fatal(f"the checkout of {what} ended {state.get('status')}: {state.get('failureReason')}")
        self.did(
            f"checkout {created['checkoutId']} of {what} paid on the sandbox's hosted page with "
            f"{spaced(card)} ({CARD_SAYS[card]}): subscription {state['subscriptionId']}"
        )
        return state["subscriptionId"], created["orderId"]

    def subscription(self, sub_id):
        return self.merchant("GET", f"/v1/subscriptions/{sub_id}", ok=(200,))[1]

    def act(self, sub_id, action, body=None, says=None):
        _, answer = self.merchant("POST", f"/v1/subscriptions/{sub_id}/{action}", body or {}, ok=(200,))
        self.did(says or f"subscription {sub_id}: {action}")
        return answer

    def charge(self, amount=14900):
        n = len(self.known_charges) + 1
        body = {
            "customerRef": self.ref,
            "amount": amount,
            "currency": "752",
            "description": f"Trigger {self.kind}",
        }
        status, answer = self.merchant(
            "POST", "/v1/charges", body, ok=(201, 202), headers={"Idempotency-Key": f"{self.ref}-charge-{n}"}
        )
        self.known_charges.add(answer["id"])
        self.did(f"charge {answer['id']} of {amount / 100:.2f} SEK: {answer['status']} ({status})")
        return answer

    def refund(self, charge, body):
        status, answer = self.merchant(
            "POST",
            f"/v1/charges/{charge['id']}/refunds",
            body,
            ok=(201, 202),
            headers={"Idempotency-Key": f"{self.ref}-refund-{secrets.token_hex(4)}"},
        )
        how = f"{body['amount'] / 100:.2f} SEK" if "amount" in body else "in full"
        self.did(
            f"refund {answer['id']} of charge {charge['id']} {how}: {answer['status']}"
            + (f" ({answer['method']})" if answer.get("method") else "")
        )
        return status, answer

    def charges(self):
        _, answer = self.merchant("GET", f"/v1/customers/{self.ref}/charges?limit=100", ok=(200,))
        return answer.get("data", [])

    def wait_for(self, what, check, secs=120):
        deadline = time.monotonic() + secs
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise Fatal(f"timed out waiting for {what}")
            time.sleep(0.3)

    # The feed.
    def feed(self, after, kind=None):
        out = []
        while True:
            query = {"limit": "100"}
            if after:
                query["startingAfter"] = after
            if kind:
                query["type"] = kind
            _, page = self.merchant("GET", f"/v1/events?{urllib.parse.urlencode(query)}", ok=(200,))
            data = page.get("data") or []
            out.extend(data)
            # A sharded ledger's feed gives every page a cursor holding each shard's place.
            if page.get("nextCursor"):
                after = page["nextCursor"]
            elif data:
                after = data[-1]["id"]
            if not (page.get("hasMore") and data):
                return out, after

    def mark_feed_end(self):
        _, self.feed_end = self.feed(None)

    def ours(self, event):
        data = event.get("data") or {}
        if data.get("customerRef") == self.ref:
            return True
        charge = data.get("chargeId")
        if charge:
            # A refund names its charge: this customer's charges, read again at most once a second.
            if charge not in self.known_charges and time.monotonic() - self.charges_read_at > 1:
                self.known_charges.update(c["id"] for c in self.charges())
                self.charges_read_at = time.monotonic()
            return charge in self.known_charges
        return False

    def wait_event(self):
        print(f"Waiting for {self.kind} (up to {self.timeout:g} s)...", flush=True)
        deadline = time.monotonic() + self.timeout
        last_nudge = 0.0
        while True:
            found = [e for e in self.feed(self.feed_end, self.kind)[0] if self.ours(e)]
            if found:
                return found
            if time.monotonic() > deadline:
                raise Fatal(f"no {self.kind} event for {self.ref} within {self.timeout:g} s")
            if self.nudge and time.monotonic() - last_nudge > 2:
                self.nudge()
                last_nudge = time.monotonic()
            time.sleep(0.5)


# --- one flow per type -----------------------------------------------------------------------


def checkout_completed(t):
    t.subscribe("basic-monthly")


def checkout_failed(t):
    created = t.checkout("basic-monthly")
    t.pay(created["orderId"], DECLINE_NOW)
    state = t.wait_checkout(created["checkoutId"])
    t.did(
        f"checkout {created['checkoutId']} of basic-monthly paid on the sandbox's hosted page with "
        f"{spaced(DECLINE_NOW)} ({CARD_SAYS[DECLINE_NOW]}): {state.get('status')}"
    )


def payment_method_updated(t):
    t.subscribe("basic-monthly")


def payment_method_removed(t):
    t.subscribe("basic-monthly")
    t.merchant("DELETE", f"/v1/customers/{t.ref}/payment-method", ok=(204,))
    t.did("the customer's card forgotten (DELETE /v1/customers/:ref/payment-method)")


def charge_succeeded(t):
    t.subscribe("basic-monthly")
    t.charge()


def charge_failed(t):
    t.subscribe("basic-monthly", SOFT_DECLINE_LATER)
    t.charge()


def charge_pending(t):
    t.subscribe("basic-monthly")
    rule = {"endpoint": "initiate_payment", "fault": "error", "times": 1}
    with t.provider_fault(rule, "answer the next payment request with a 500 (its outcome unknown)"):
        t.charge()


def charge_settled(t):
    # The worker reads a settlement when the provider's calendar says it is due, in business
    # time: a customer whose clock stands a week back has a payment that is due now.
    t.own_clock(t.global_now() - 7 * DAY, "a week back, so that its payment is due to settle now")
    _, order_id = t.subscribe("basic-monthly")
    t.settle_at_provider(order_id)
    t.did("the cron runs (GET /__scheduled): the worker reads the settlement")
    t.nudge = t.cron


def refund_succeeded(t):
    t.subscribe("basic-monthly")
    charge = t.charge()
    _, refund = t.refund(charge, {})
    if refund["status"] == "pending":
        # The day's batch took the payment before the refund: a return once it settled.
        t.settle_at_provider(charge["providerOrderId"])
        t.did("the cron runs (GET /__scheduled): the return order goes out")
        t.nudge = t.cron


def refund_failed(t):
    t.subscribe("basic-monthly")
    charge = t.charge(10000)
    t.settle_at_provider(charge["providerOrderId"])
    rule = {"endpoint": "refund", "fault": "business_error", "times": 1}
    with t.provider_fault(rule, "refuse the next return order (OR_0001)"):
        t.refund(charge, {"amount": 1000})


def subscription_created(t):
    t.subscribe("basic-monthly")


def renewal(t, card, plan="basic-monthly"):
    t.own_clock(t.global_now(), "so that only this customer's time moves")
    sub_id, _ = t.subscribe(plan, card)
    end = parse_time(t.subscription(sub_id)["currentPeriodEnd"])
    t.advance(end, "the first period ends: the renewal is charged")
    return sub_id


def subscription_renewed(t):
    renewal(t, APPROVE)


def subscription_past_due(t):
    renewal(t, SOFT_DECLINE_LATER)


def subscription_unpaid(t):
    renewal(t, HARD_DECLINE_LATER)


def subscription_recovered(t):
    sub_id = renewal(t, SOFT_DECLINE_LATER)
    t.wait_for(
        "the subscription to be past due",
        lambda: t.subscription(sub_id)["status"] == "past_due",
        t.timeout,
    )
    t.did("the renewal was declined: the subscription is past due")
    _, created = t.customer(
        "POST", "/v1/portal/payment-method", {"returnUrl": f"{t.worker}/"}, ok=(201,), what="replacing the card"
    )
    t.pay(created["orderId"], APPROVE)
    state = t.wait_checkout(created["checkoutId"])
    t.did(
        f"a new card through the portal (checkout {created['checkoutId']}, paying the declined "
        f"charge {created.get('settlesChargeId')}) with {spaced(APPROVE)}: {state.get('status')}"
    )


def subscription_canceled(t):
    sub_id, _ = t.subscribe("basic-monthly")
    t.act(sub_id, "cancel", says=f"subscription {sub_id} canceled now")


def subscription_paused(t):
    sub_id, _ = t.subscribe("basic-monthly")
    t.act(sub_id, "pause", says=f"subscription {sub_id} paused")


def subscription_updated(t):
    sub_id, _ = t.subscribe("basic-monthly")
    t.act(sub_id, "cancel", {"atPeriodEnd": True}, says=f"subscription {sub_id} set to cancel at period end")


def subscription_trial_will_end(t):
    start = t.global_now()
    t.own_clock(start, "so that only this customer's time moves")
    sub_id, _ = t.subscribe("team-trial")
    trial_end = parse_time(t.subscription(sub_id)["trialEnd"])
    t.advance(max(start, trial_end - 3 * DAY), f"three days before the trial ends at {iso(trial_end)}")


def subscription_resumed(t):
    sub_id, _ = t.subscribe("basic-monthly")
    t.act(sub_id, "pause", says=f"subscription {sub_id} paused")
    t.act(sub_id, "resume", says=f"subscription {sub_id} resumed")


def subscription_completed(t):
    installments = 3
    t.own_clock(t.global_now(), "so that only this customer's time moves")
    sub_id, _ = t.subscribe("course", installments=installments)
    for period in range(1, installments):
        end = parse_time(t.subscription(sub_id)["currentPeriodEnd"])
        t.advance(end, f"installment {period + 1} of {installments} is due")

        def paid(period=period):
            return any(
                c.get("periodIndex") == period and c.get("status") == "succeeded" for c in t.charges()
            )

        t.wait_for(f"installment {period + 1} to be paid", paid, t.timeout)


FLOWS = {
    "checkout.completed": checkout_completed,
    "checkout.failed": checkout_failed,
    "payment_method.updated": payment_method_updated,
    "payment_method.removed": payment_method_removed,
    "charge.succeeded": charge_succeeded,
    "charge.failed": charge_failed,
    "charge.pending": charge_pending,
    "charge.settled": charge_settled,
    "refund.succeeded": refund_succeeded,
    "refund.failed": refund_failed,
    "subscription.created": subscription_created,
    "subscription.renewed": subscription_renewed,
    "subscription.recovered": subscription_recovered,
    "subscription.past_due": subscription_past_due,
    "subscription.unpaid": subscription_unpaid,
    "subscription.canceled": subscription_canceled,
    "subscription.paused": subscription_paused,
    "subscription.updated": subscription_updated,
    "subscription.trial_will_end": subscription_trial_will_end,
    "subscription.resumed": subscription_resumed,
    "subscription.completed": subscription_completed,
}


def arguments(argv):
    worker_port = os.environ.get("WORKER_PORT") or "8787"
    sandbox_port = os.environ.get("SANDBOX_PORT") or "8790"
    p = argparse.ArgumentParser(
        prog="trigger.py",
        description="Make the local worker write an event of a type, through the flow that "
        "produces it (the worker's API and the PSP sandbox), and print its id.",
    )
    p.add_argument("event", nargs="?", metavar="EVENT", help="an event type (--list shows them)")
    p.add_argument("--list", action="store_true", help="print the supported event types")
    p.add_argument(
        "--worker",
        default=f"http://127.0.0.1:{worker_port}",
        metavar="URL",
        help="the local worker (default http://127.0.0.1:$WORKER_PORT, 8787)",
    )
    p.add_argument(
        "--sandbox",
        default=f"http://127.0.0.1:{sandbox_port}",
        metavar="URL",
        help="its PSP sandbox (default http://127.0.0.1:$SANDBOX_PORT, 8790)",
    )
    p.add_argument(
        "--dev-vars",
        default=str(ROOT / ".dev.vars"),
        metavar="PATH",
        help="where MERCHANT_API_KEY is read (default .dev.vars at the repository's root)",
    )
    p.add_argument(
        "--timeout", type=float, default=300, metavar="S", help="how long to wait for the event (default 300)"
    )
    return p.parse_args(argv)


def main(argv=None):
    args = arguments(argv)
    if args.list or not args.event:
        if not args.list:
            print("usage: make trigger EVENT=<type> (scripts/trigger.py <type>); the types:", file=sys.stderr)
        print("\n".join(FLOWS))
        return 0
    kind = args.event
    if kind not in FLOWS:
        print(f"trigger: unknown event type {kind!r}; the types:\n  " + "\n  ".join(FLOWS), file=sys.stderr)
        return 2
    try:
        http_url(args.worker, "--worker")
        http_url(args.sandbox, "--sandbox")
        t = Trigger(args, kind)
        print(f"Triggering {kind} with a new customer, {t.ref}:", flush=True)
        t.mark_feed_end()
        FLOWS[kind](t)
        found = t.wait_event()
        for event in found:
            print(f"Caused {kind} {event['id']}", flush=True)
        targets = {e["id"] for e in found}
        others = [e for e in t.feed(t.feed_end)[0] if e["id"] not in targets and t.ours(e)]
        if others:
            print("Also caused: " + ", ".join(f"{e['type']} {e['id']}" for e in others), flush=True)
        return 0
    except Fatal as e:
        print(f"trigger: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
