#!/bin/sh
# GET /orders/:orderId/status under load, on an order with a completed payment.
# Usage: sandbox/bench/order_status.sh [base URL] (the sandbox must run with default credentials).
set -eu
BASE=${1:-http://127.0.0.1:8790}
ORDER=$(curl -s "$BASE/orders" -H 'Content-Type: application/json' \
  -H 'API-KEY: sandbox-api-key' -H 'API-SECRET: sandbox-api-secret' -H 'MERCHANT-ID: 5a1e0f3c2b4d6e8f90' \
  -d '{"terminal$id":"7e1d5c3b9a0f2e4d61","orderLines":[{"id":"a","name":"A","quantity":1,"amount":{"total":29900,"currency":"752"}}]}' \
  | sed 's/.*"orderId":"\([0-9a-f]*\)".*/\1/')
curl -s -X POST "$BASE/_sandbox/orders/$ORDER/pay" -H 'Content-Type: application/json' \
  -d '{"cardNumber":"4111111111111111"}' >/dev/null
exec wrk -t2 -c32 -d10s -H 'API-KEY: sandbox-api-key' -H 'API-SECRET: sandbox-api-secret' \
  -H 'MERCHANT-ID: 5a1e0f3c2b4d6e8f90' "$BASE/orders/$ORDER/status"
