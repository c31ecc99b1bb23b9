//! The webhook listener's limits and health: a cap on open connections, where a new
//! connection at the cap takes the place of the connection idle the longest (a keep-alive
//! connection between requests, or one still in its TLS handshake) and is refused when every
//! connection is busy; and what `/livez` and `/readyz` report about accepting.

use crate::metrics::Metrics;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a failed `accept` keeps `/readyz` failing.
const ACCEPT_ERROR_MEMORY: Duration = Duration::from_secs(5);

/// Connection slots and accept health of one listener.
pub struct Listener {
    max_connections: usize,
    slots: Mutex<Slots>,
    alive: AtomicBool,
    last_accept_error: Mutex<Option<(Instant, String)>>,
    metrics: Metrics,
}

#[derive(Default)]
struct Slots {
    /// Connections holding a slot (an evicted one gives its slot up at once).
    admitted: usize,
    next_id: u64,
    /// Orders idle connections: a connection takes the next number each time it turns idle.
    next_turn: u64,
    /// Idle connections by the turn they became idle, oldest first.
    idle: BTreeMap<u64, u64>,
    open: HashMap<u64, SlotEntry>,
}

struct SlotEntry {
    idle_turn: Option<u64>,
    evict: Arc<Notify>,
}

impl Slots {
    fn set_idle(&mut self, id: u64) {
        let turn = self.next_turn;
        if let Some(entry) = self.open.get_mut(&id)
            && entry.idle_turn.is_none()
        {
            self.next_turn += 1;
            entry.idle_turn = Some(turn);
            self.idle.insert(turn, id);
        }
    }

    fn set_busy(&mut self, id: u64) {
        if let Some(turn) = self.open.get_mut(&id).and_then(|e| e.idle_turn.take()) {
            self.idle.remove(&turn);
        }
    }

    /// Signals the connection idle the longest to close, and takes its slot back.
    fn evict_oldest_idle(&mut self) -> bool {
        let Some((_, id)) = self.idle.pop_first() else {
            return false;
        };
        if let Some(entry) = self.open.remove(&id) {
            entry.evict.notify_one();
        }
        self.admitted = self.admitted.saturating_sub(1);
        true
    }
}

/// An admitted connection's slot: tell it when the connection turns busy or idle; dropping it
/// frees the slot. A new slot is idle (the connection has not sent a request yet).
pub struct Slot {
    id: u64,
    listener: Arc<Listener>,
    evict: Arc<Notify>,
}

impl Slot {
    /// A request is being read or answered.
    pub fn busy(&self) {
        self.listener.slots().set_busy(self.id);
    }

    /// Between requests (keep-alive) or before the first one.
    pub fn idle(&self) {
        self.listener.slots().set_idle(self.id);
    }

    /// Resolves when the listener needs this connection's slot for a new one.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = self.listener.slots();
        // An evicted connection gave its slot up when it was picked.
        if let Some(entry) = slots.open.remove(&self.id) {
            if let Some(turn) = entry.idle_turn {
                slots.idle.remove(&turn);
            }
            slots.admitted = slots.admitted.saturating_sub(1);
        }
        drop(slots);
        self.listener.metrics.connections_open.dec();
    }
}

/// Marks the listener dead when its accept loop ends, however it ends (a panic included).
pub struct AcceptLoopGuard(Arc<Listener>);

impl AcceptLoopGuard {
    pub fn listener(&self) -> &Arc<Listener> {
        &self.0
    }
}

impl Drop for AcceptLoopGuard {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
    }
}

impl Listener {
    pub fn new(max_connections: usize, metrics: Metrics) -> Arc<Self> {
        Arc::new(Listener {
            max_connections: max_connections.max(1),
            slots: Mutex::new(Slots::default()),
            alive: AtomicBool::new(false),
            last_accept_error: Mutex::new(None),
            metrics,
        })
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the accept loop as it starts; the guard marks the listener dead when dropped.
    pub fn accepting(self: &Arc<Self>) -> AcceptLoopGuard {
        self.alive.store(true, Ordering::Release);
        AcceptLoopGuard(self.clone())
    }

    /// A slot for a new connection: a free one, else the one of the connection idle the
    /// longest; `None` when every connection is busy (the new one is to be closed).
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut slots = self.slots();
        if slots.admitted >= self.max_connections {
            if slots.evict_oldest_idle() {
                self.metrics.connections_evicted.inc();
            } else {
                drop(slots);
                self.metrics.connections_rejected.inc();
                return None;
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        slots.admitted += 1;
        let evict = Arc::new(Notify::new());
        slots.open.insert(
            id,
            SlotEntry {
                idle_turn: None,
                evict: evict.clone(),
            },
        );
        slots.set_idle(id);
        drop(slots);
        self.metrics.connections_open.inc();
        Some(Slot {
            id,
            listener: self.clone(),
            evict,
        })
    }

    /// Records a failed `accept` (the listener itself, not one connection) and, when the
    /// process is out of file descriptors, closes the connection idle the longest to free one.
    pub fn accept_failed(&self, error: &std::io::Error) {
        self.metrics.accept_errors.inc();
        *self
            .last_accept_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), error.to_string()));
        if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
            && self.slots().evict_oldest_idle()
        {
            self.metrics.connections_evicted.inc();
        }
    }

    /// `/livez`: the accept loop is running.
    pub fn liveness(&self) -> Result<(), String> {
        if self.alive.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("webhook listener is not accepting connections (its accept loop ended)".into())
        }
    }

    /// `/readyz`: a new connection would be accepted now.
    pub fn readiness(&self) -> Result<(), String> {
        self.liveness()?;
        let failed = self
            .last_accept_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((at, error)) = failed
            && at.elapsed() < ACCEPT_ERROR_MEMORY
        {
            return Err(format!(
                "webhook listener cannot accept connections: {error} ({} ms ago)",
                at.elapsed().as_millis()
            ));
        }
        let slots = self.slots();
        if slots.admitted >= self.max_connections && slots.idle.is_empty() {
            return Err(format!(
                "webhook connection limit reached: {} connections, none idle (--max-connections)",
                slots.admitted
            ));
        }
        Ok(())
    }
}

/// The pause after a failed `accept`: doubling from 10 ms up to 1 s, so a listener out of file
/// descriptors neither spins nor stays deaf for long once one is free.
pub fn accept_backoff(previous: Option<Duration>) -> Duration {
    previous.map_or(Duration::from_millis(10), |d| {
        (d * 2).min(Duration::from_secs(1))
    })
}

/// Whether an `accept` error concerns one connection only (the peer gave up): not a listener
/// failure, no pause needed.
pub fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future as _;
    use std::task::{Context, Waker};

    #[test]
    fn the_connection_idle_the_longest_is_evicted_and_busy_ones_never() {
        let listener = Listener::new(3, Metrics::new());
        let _live = listener.accepting();
        let a = listener.admit().unwrap();
        let b = listener.admit().unwrap();
        let c = listener.admit().unwrap();
        a.busy();
        b.busy();
        c.busy();
        b.idle(); // b, then a, turned idle
        a.idle();
        assert!(listener.readiness().is_ok());
        let d = listener.admit().unwrap();
        d.busy();
        // b was picked: its signal is stored for it, a's is not.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(std::pin::pin!(b.evicted()).poll(&mut cx).is_ready());
        assert!(std::pin::pin!(a.evicted()).poll(&mut cx).is_pending());
        a.busy();
        assert!(listener.admit().is_none(), "a busy connection was evicted");
        let err = listener.readiness().unwrap_err();
        assert!(err.contains("connection limit"), "{err}");
        drop(b); // gives nothing back: its slot went to d
        assert!(listener.admit().is_none());
        drop(c);
        assert!(listener.admit().is_some());
    }

    #[test]
    fn a_failed_accept_fails_readiness_and_a_dead_loop_fails_liveness() {
        let listener = Listener::new(4, Metrics::new());
        assert!(listener.liveness().is_err(), "alive before accepting");
        let guard = listener.accepting();
        assert!(listener.liveness().is_ok());
        let idle = listener.admit().unwrap();
        listener.accept_failed(&std::io::Error::from_raw_os_error(libc::EMFILE));
        let err = listener.readiness().unwrap_err();
        assert!(err.contains("cannot accept"), "{err}");
        // Out of descriptors: the idle connection is closed to free one.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(std::pin::pin!(idle.evicted()).poll(&mut cx).is_ready());
        drop(guard);
        assert!(listener.liveness().is_err());
        assert!(listener.readiness().is_err());
    }

    #[test]
    fn accept_backoff_doubles_up_to_a_second() {
        let mut d = accept_backoff(None);
        assert_eq!(d, Duration::from_millis(10));
        for _ in 0..20 {
            d = accept_backoff(Some(d));
        }
        assert_eq!(d, Duration::from_secs(1));
        assert!(is_connection_error(&std::io::Error::from(
            std::io::ErrorKind::ConnectionAborted
        )));
        assert!(!is_connection_error(&std::io::Error::from_raw_os_error(
            libc::EMFILE
        )));
    }
}
