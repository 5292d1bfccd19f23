//! Runs jobs with at most `limit` of them in flight: a job starts as soon as one finishes,
//! like `buffer_unordered`, in one small function shared by every caller (a job is a boxed
//! future that records its own result).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

/// One job: records its result where its caller can read it once [`run`] returns.
pub type Job<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Starts jobs in order, keeps `limit` (at least one) running, and returns when all are done.
/// Each wake-up polls the jobs in flight: a few, by the callers' limits.
pub async fn run<'a>(limit: usize, jobs: &mut dyn Iterator<Item = Job<'a>>) {
    let limit = limit.max(1);
    let mut running: Vec<Job<'a>> = Vec::with_capacity(limit);
    let mut exhausted = false;
    poll_fn(|cx| {
        loop {
            while !exhausted && running.len() < limit {
                match jobs.next() {
                    Some(job) => running.push(job),
                    None => exhausted = true,
                }
            }
            let before = running.len();
            running.retain_mut(|job| job.as_mut().poll(cx).is_pending());
            if running.is_empty() && exhausted {
                return Poll::Ready(());
            }
            // Nothing finished: wait to be woken. Something did: start the next ones.
            if running.len() == before {
                return Poll::Pending;
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::task::{Context, Waker};

    /// Pending for `polls` polls (waking itself), then done.
    struct After {
        polls: u32,
    }

    impl Future for After {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.polls == 0 {
                return Poll::Ready(());
            }
            self.polls -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn block_on(f: impl Future<Output = ()>) {
        let mut f = Box::pin(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..10_000 {
            if f.as_mut().poll(&mut cx).is_ready() {
                return;
            }
        }
        panic!("did not finish");
    }

    #[test]
    fn every_job_runs_once_and_never_more_than_the_limit_at_a_time() {
        for limit in [0, 1, 3, 6, 50] {
            let in_flight = Cell::new(0_usize);
            let peak = Cell::new(0_usize);
            let done = RefCell::new(Vec::new());
            let (in_flight, peak, done_ref) = (&in_flight, &peak, &done);
            let mut jobs = (0..20_u32).map(|n| -> Job<'_> {
                Box::pin(async move {
                    in_flight.set(in_flight.get() + 1);
                    peak.set(peak.get().max(in_flight.get()));
                    After { polls: 1 + n % 4 }.await;
                    in_flight.set(in_flight.get() - 1);
                    done_ref.borrow_mut().push(n);
                })
            });
            block_on(run(limit, &mut jobs));
            let mut done = done.into_inner();
            done.sort();
            assert_eq!(done, (0..20).collect::<Vec<_>>(), "limit {limit}");
            assert_eq!(peak.get(), limit.clamp(1, 20), "limit {limit}");
        }
    }

    #[test]
    fn no_jobs_is_done_at_once() {
        block_on(run(4, &mut std::iter::empty()));
    }
}
