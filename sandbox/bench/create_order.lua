-- POST /orders on the MerchantInitiated terminal with the default credentials:
--   wrk -t2 -c32 -d10s -s sandbox/bench/create_order.lua http://127.0.0.1:8790
-- Afterwards, GET /_sandbox/ledger?referenceId=bench counts the orders really created.
wrk.method = "POST"
wrk.path = "/orders"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["API-KEY"] = "sandbox-api-key"
wrk.headers["API-SECRET"] = "sandbox-api-secret"
wrk.headers["MERCHANT-ID"] = "5a1e0f3c2b4d6e8f90"
wrk.body = [[{"terminal$id":"3c9a7e5b1d0f8e6a42","referenceId":"bench","orderLines":[{"id":"a","name":"Bench","quantity":1,"amount":{"regular":29900,"total":29900,"currency":"752"}}],"totalOrderAmount":{"total":29900,"currency":"752"}}]]
