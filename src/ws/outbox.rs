//! One connection's bounded send queue and its close signal, behind one lock with one
//! waker: what the hub queues (replies and deliveries) and why the connection must
//! close, for the connection's task to drain.
//!
//! It replaces a tokio `mpsc` channel and a `watch` per connection (measured on 4,000
//! idle `/ws` connections: 1.5 KiB for the channel's first 32-slot block, allocated
//! whatever is queued, 0.5 KiB the channel, 0.3 KiB the watch). Here an idle connection
//! holds an empty `VecDeque` (no allocation) and a queued message costs one lock and at
//! most one wake, however many messages wait. The bound and its consequence (a full
//! queue closes the connection as a slow consumer, 1013) stay the hub's.
//!
//! One waker suffices: the reader and the writer of a connection are futures of the
//! same task ([`super::conn`]), so whichever registered last wakes both.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use axum::extract::ws::Message;

use super::hub::CloseReason;

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its capacity.
    Full,
    /// The writer is gone (the connection is closing).
    Shut,
}

/// What the writer has to do next.
#[derive(Debug)]
pub enum Next {
    /// Write these, in order.
    Messages(VecDeque<Message>),
    /// The connection must close.
    Close,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Message>,
    closing: Option<CloseReason>,
    /// The writer stopped taking messages.
    shut: bool,
    waker: Option<Waker>,
}

/// The queue and close signal of one connection.
pub struct Outbox {
    state: Mutex<State>,
    capacity: usize,
}

impl Outbox {
    /// An empty queue of at most `capacity` messages (allocates nothing yet).
    pub fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::default(),
            capacity,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `message` and wakes the connection's task if it was waiting.
    pub fn push(&self, message: Message) -> Result<(), Refused> {
        let waker = {
            let mut state = self.state();
            if state.shut {
                return Err(Refused::Shut);
            }
            if state.queue.len() >= self.capacity {
                return Err(Refused::Full);
            }
            state.queue.push_back(message);
            // A second message before the task ran needs no second wake.
            if state.queue.len() == 1 {
                state.waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Sets why the connection must close; true when this is the first reason.
    pub fn close(&self, reason: CloseReason) -> bool {
        let waker = {
            let mut state = self.state();
            if state.closing.is_some() {
                return false;
            }
            state.closing = Some(reason);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Why the connection is closing, once it is.
    pub fn closing(&self) -> Option<CloseReason> {
        self.state().closing
    }

    fn register(state: &mut State, cx: &Context<'_>) {
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
    }

    /// Waits for messages (at most `batch` of them, in order) or the close signal; the
    /// close comes first.
    pub async fn next(&self, batch: usize) -> Next {
        poll_fn(|cx| {
            let mut state = self.state();
            if state.closing.is_some() {
                return Poll::Ready(Next::Close);
            }
            if state.queue.is_empty() {
                Self::register(&mut state, cx);
                return Poll::Pending;
            }
            let messages = if state.queue.len() <= batch {
                // The whole queue: an idle connection keeps no queue allocation.
                std::mem::take(&mut state.queue)
            } else {
                state.queue.drain(..batch).collect()
            };
            Poll::Ready(Next::Messages(messages))
        })
        .await
    }

    /// Waits until the connection must close.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            let mut state = self.state();
            if state.closing.is_some() {
                return Poll::Ready(());
            }
            Self::register(&mut state, cx);
            Poll::Pending
        })
        .await
    }

    /// The oldest queued message, taken without waiting (tests).
    #[cfg(test)]
    pub fn try_pop(&self) -> Option<Message> {
        self.state().queue.pop_front()
    }

    /// The writer stops taking messages; returns what was still queued.
    pub fn shut(&self) -> VecDeque<Message> {
        let mut state = self.state();
        state.shut = true;
        state.waker = None;
        std::mem::take(&mut state.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[tokio::test]
    async fn messages_come_out_in_order_within_the_bound_and_close_comes_first() {
        let outbox = Outbox::new(3);
        for m in ["1", "2", "3"] {
            assert_eq!(outbox.push(text(m)), Ok(()));
        }
        assert_eq!(outbox.push(text("4")), Err(Refused::Full));
        let Next::Messages(first) = outbox.next(2).await else {
            panic!("expected messages");
        };
        assert_eq!(Vec::from(first), vec![text("1"), text("2")]);
        assert!(outbox.close(CloseReason::Idle));
        assert!(
            !outbox.close(CloseReason::Shutdown),
            "the first reason wins"
        );
        assert!(matches!(outbox.next(2).await, Next::Close));
        outbox.closed().await;
        assert_eq!(Vec::from(outbox.shut()), vec![text("3")]);
        assert_eq!(outbox.push(text("5")), Err(Refused::Shut));
        assert_eq!(outbox.closing(), Some(CloseReason::Idle));
    }

    #[tokio::test]
    async fn a_push_wakes_a_waiting_writer() {
        let outbox = std::sync::Arc::new(Outbox::new(4));
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                match outbox.next(4).await {
                    Next::Messages(m) => m.len(),
                    Next::Close => 0,
                }
            })
        };
        tokio::task::yield_now().await;
        outbox.push(text("x")).unwrap();
        assert_eq!(writer.await.unwrap(), 1);
    }
}
