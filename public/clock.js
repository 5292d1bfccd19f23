// The demo's only use of the test clock. Business time is the worker's (`TEST_CLOCK=on` only),
// and each visitor has a clock of their own (named in their demo session): moving it to a
// moment runs the scheduler tick for that visitor's subscriptions as of then, so the renewals,
// dunning retries and installments due by that moment are billed in seconds, and nobody else's.
// It is the merchant's call (API key).
import { api, testClock } from "/common.js";

export async function advanceClock(to, merchantKey) {
  const clock = await testClock();
  const body = clock ? { now: to, clock } : { now: to };
  return api("POST", "/v1/test-clock/tick", body, { Authorization: `Bearer ${merchantKey}` });
}
