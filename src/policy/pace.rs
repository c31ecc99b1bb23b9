//! Background reloads give way to decisions.
//!
//! A reload reads, checks and indexes the whole policy: tens to hundreds of milliseconds of
//! CPU. On a core that also answers requests, the kernel runs it in slices of up to a
//! scheduler tick (4 ms here), and every request in flight waits out each slice: with the
//! server on one core and a reload every second, the p99 went from 1.5 to 5–7 ms. The
//! server's reload thread therefore runs at the lowest priority (nice 19,
//! `server::reload`), and inside [`paced`] offers the core back
//! ([`std::thread::yield_now`]) after every [`SLICE`] of work, at the [`point`]s the loading
//! code passes between items. When nothing else wants the core, yielding returns at once.
//! A yield only hands the core over when the scheduler counts the serving thread as owed
//! time; while that thread keeps the core saturated, the low priority is what keeps the
//! reload from taking whole ticks (BENCHMARKS.md, seventh round).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Work between two offers of the core: short against a decision's p99 (~1 ms under load).
pub const SLICE: Duration = Duration::from_micros(200);

/// Points between two clock reads: items cost 0.1–10 µs each, a clock read ~20 ns.
const POINTS_PER_CHECK: u32 = 16;

thread_local! {
    /// When this thread last offered the core; `None` outside [`paced`].
    static LAST_YIELD: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Points passed since the clock was last read.
    static POINTS: Cell<u32> = const { Cell::new(0) };
}

/// Runs `work` on this thread with [`point`]s yielding the core every [`SLICE`].
pub fn paced<T>(work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LAST_YIELD.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(LAST_YIELD.with(|l| l.replace(Some(Instant::now()))));
    work()
}

/// Offers the core to other threads if this thread is [`paced`] and has worked a
/// [`SLICE`] since it last did. Cheap enough to call per policy item: the clock is read at
/// every [`POINTS_PER_CHECK`]th point.
pub fn point() {
    let points = POINTS.with(|p| {
        let n = p.get().wrapping_add(1);
        p.set(n);
        n
    });
    if points.is_multiple_of(POINTS_PER_CHECK) {
        check();
    }
}

/// [`point`] with the clock read now (between large pieces of work).
pub fn check() {
    LAST_YIELD.with(|last| {
        if let Some(since) = last.get()
            && since.elapsed() >= SLICE
        {
            std::thread::yield_now();
            last.set(Some(Instant::now()));
        }
    });
}

/// Whether this thread is inside [`paced`].
#[cfg(test)]
fn is_paced() -> bool {
    LAST_YIELD.with(|l| l.get().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_yield_only_inside_paced_and_restore_on_exit() {
        assert!(!is_paced());
        point(); // outside: nothing to do, no state left behind
        assert!(!is_paced());
        let inner = paced(|| {
            assert!(is_paced());
            let before = LAST_YIELD.with(Cell::get);
            std::thread::sleep(SLICE * 2);
            check();
            let after = LAST_YIELD.with(Cell::get);
            // A slice has passed: the check yielded and restarted the clock.
            assert!(after > before, "{before:?} -> {after:?}");
            // Plain points read the clock once every POINTS_PER_CHECK calls.
            std::thread::sleep(SLICE * 2);
            (0..POINTS_PER_CHECK).for_each(|_| point());
            assert!(LAST_YIELD.with(Cell::get) > after);
            // Nested: the outer clock is back afterwards.
            paced(is_paced)
        });
        assert!(inner);
        assert!(!is_paced());
    }
}
