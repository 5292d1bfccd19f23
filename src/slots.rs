//! At most N provider requests in flight at once within one invocation, first come first
//! served. A Worker may keep only six outgoing connections open; a seventh request waits for
//! one inside the runtime, and its timeout would run while it waits. Waiting here instead lets
//! a request's timeout start when it is actually sent, so many charges driven at once never
//! turn a full connection pool into false timeouts (and false "outcome unknown").

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

pub struct Slots {
    inner: RefCell<Inner>,
}

struct Inner {
    free: usize,
    /// Tickets of the waiters, oldest first, with the waker to call when it may go.
    waiting: VecDeque<(u64, Option<Waker>)>,
    next_ticket: u64,
}

impl Slots {
    pub fn new(capacity: usize) -> Slots {
        Slots {
            inner: RefCell::new(Inner {
                free: capacity,
                waiting: VecDeque::new(),
                next_ticket: 0,
            }),
        }
    }

    /// Waits for a slot; it is given back when the returned guard drops.
    pub fn acquire(&self) -> Acquire<'_> {
        let mut inner = self.inner.borrow_mut();
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.waiting.push_back((ticket, None));
        Acquire {
            slots: self,
            ticket,
            done: false,
        }
    }

    fn release(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.free += 1;
        if let Some((_, Some(waker))) = inner.waiting.front_mut().map(|(t, w)| (*t, w.take())) {
            waker.wake();
        }
    }
}

pub struct Acquire<'a> {
    slots: &'a Slots,
    ticket: u64,
    done: bool,
}

pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.release();
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Slot<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Slot<'a>> {
        let slots = self.slots;
        let mut inner = slots.inner.borrow_mut();
        let first = inner.waiting.front().map(|(t, _)| *t) == Some(self.ticket);
        if first && inner.free > 0 {
            inner.free -= 1;
            inner.waiting.pop_front();
            // The next waiter may go too if more slots are free.
            if inner.free > 0
                && let Some((_, Some(waker))) =
                    inner.waiting.front_mut().map(|(t, w)| (*t, w.take()))
            {
                waker.wake();
            }
            drop(inner);
            self.done = true;
            return Poll::Ready(Slot { slots });
        }
        if let Some(entry) = inner.waiting.iter_mut().find(|(t, _)| *t == self.ticket) {
            entry.1 = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Given up before its turn: leave the queue, and pass a free slot on.
        let mut inner = self.slots.inner.borrow_mut();
        inner.waiting.retain(|(t, _)| *t != self.ticket);
        if inner.free > 0
            && let Some((_, Some(waker))) = inner.waiting.front_mut().map(|(t, w)| (*t, w.take()))
        {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    fn poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn at_most_capacity_at_once_and_first_come_first_served() {
        let slots = Slots::new(2);
        let a = poll(pin!(slots.acquire()));
        let b = poll(pin!(slots.acquire()));
        assert!(a.is_ready() && b.is_ready());
        let mut c = pin!(slots.acquire());
        let mut d = pin!(slots.acquire());
        assert!(poll(c.as_mut()).is_pending());
        assert!(poll(d.as_mut()).is_pending());
        drop(a);
        // d may not overtake c.
        assert!(poll(d.as_mut()).is_pending());
        let c = poll(c.as_mut());
        assert!(c.is_ready());
        drop(b);
        assert!(poll(d.as_mut()).is_ready());
    }

    #[test]
    fn a_waiter_that_gives_up_does_not_block_the_queue() {
        let slots = Slots::new(1);
        let held = poll(pin!(slots.acquire()));
        {
            let mut gone = pin!(slots.acquire());
            assert!(poll(gone.as_mut()).is_pending());
        }
        let mut next = pin!(slots.acquire());
        assert!(poll(next.as_mut()).is_pending());
        drop(held);
        assert!(poll(next.as_mut()).is_ready());
    }
}
