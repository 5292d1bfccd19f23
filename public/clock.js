// The demo's only use of the test clock. Business time is the worker's (`TEST_CLOCK=on` only):
// moving it to a moment runs the scheduler tick as of then, so the renewals, dunning retries and
// installments due by that moment are billed in seconds. It is the merchant's call (API key).
import { api } from "/common.js";

export async function advanceClock(to, merchantKey) {
  return api("POST", "/v1/test-clock/tick", { now: to }, { Authorization: `Bearer ${merchantKey}` });
}
