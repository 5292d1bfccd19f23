//! Steps many tests share: checkouts, payments on the sandbox, charges, ticks.
