//! Background reloads give way to decisions.
//!
//! A reload reads, checks and indexes the whole policy: tens to hundreds of milliseconds of
//! CPU. On a core that also answers requests, the kernel runs it in slices of up to a
//! scheduler tick (4 ms here), and every request in flight waits out each slice: with the
//! server on one core and a reload every second, the p99 went from 1.5 to 5–7 ms. The
//! server's reload thread therefore runs at the lowest priority (nice 19,
//! `server::reload`), and inside [`paced`] offers the core back
//! ([`std::thread::yield_now`]) after every [`SLICE`] of its own work, at the [`point`]s the
//! loading code passes between items. When nothing else wants the core, yielding returns at
//! once. A yield only hands the core over when the scheduler counts the serving thread as
//! owed time; while that thread keeps the core saturated, the low priority is what keeps the
//! reload from taking whole ticks.
//!
//! The slice is counted in the thread's CPU time, not wall time: on a saturated core the
//! scheduler takes the core from the reload often, and a wall clock then counted the time
//! others ran as the reload's, so it yielded again after a few items each time it got the
//! core back — thousands of switches per reload, each cooling the caches of both threads.

use crate::sys::thread_cpu_time;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Work between two offers of the core: short against a decision's p99 (~1 ms under load).
pub const SLICE: Duration = Duration::from_micros(200);

/// Points between two clock reads: items cost 0.1–10 µs each, a clock read ~20 ns.
const POINTS_PER_CHECK: u32 = 16;

/// When a thread last offered the core, by the wall clock and by its own CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Mark {
    wall: Instant,
    /// `None` where the thread's CPU clock cannot be read: the wall clock alone then counts.
    cpu: Option<Duration>,
}

impl Mark {
    fn now() -> Mark {
        Mark {
            wall: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }
}

thread_local! {
    /// When this thread last offered the core; `None` outside [`paced`].
    static LAST_YIELD: Cell<Option<Mark>> = const { Cell::new(None) };
    /// Points passed since the clock was last read.
    static POINTS: Cell<u32> = const { Cell::new(0) };
}

/// Runs `work` on this thread with [`point`]s yielding the core every [`SLICE`].
pub fn paced<T>(work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Mark>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LAST_YIELD.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(LAST_YIELD.with(|l| l.replace(Some(Mark::now()))));
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

/// [`point`] with the clock read now (between large pieces of work). The wall clock (a
/// vDSO read) goes first: this thread cannot have worked a slice in less wall time. Only
/// then is its CPU time read, a system call; if the thread was off the core meanwhile, the
/// wall mark moves up by the work done, so the next system call waits until the rest of the
/// slice could have been worked.
pub fn check() {
    LAST_YIELD.with(|last| {
        let Some(since) = last.get() else {
            return;
        };
        if since.wall.elapsed() < SLICE {
            return;
        }
        let worked = match (thread_cpu_time(), since.cpu) {
            (Some(now), Some(before)) => now.saturating_sub(before),
            _ => SLICE,
        };
        if worked >= SLICE {
            std::thread::yield_now();
            last.set(Some(Mark::now()));
        } else if let Some(wall) = Instant::now().checked_sub(worked) {
            last.set(Some(Mark { wall, ..since }));
        }
    });
}

/// Drops `items` one at a time with a [`point`] between them: freeing a large policy (a
/// million small allocations) is reload work too.
pub fn drop_paced<I: IntoIterator>(items: I) {
    for item in items {
        point();
        drop(item);
    }
}

/// Whether this thread is inside [`paced`].
#[cfg(test)]
fn is_paced() -> bool {
    LAST_YIELD.with(|l| l.get().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps this thread busy for `cpu` of its own CPU time.
    fn work(cpu: Duration) {
        let clock = || thread_cpu_time().unwrap_or_default();
        let start = clock();
        while clock().saturating_sub(start) < cpu {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn points_yield_only_inside_paced_and_restore_on_exit() {
        assert!(!is_paced());
        point(); // outside: nothing to do, no state left behind
        assert!(!is_paced());
        let inner = paced(|| {
            assert!(is_paced());
            let mark = || LAST_YIELD.with(Cell::get).expect("paced");
            let before = mark();
            // Time asleep is not work: no slice has passed, and the wall mark moves up so
            // the CPU clock is not read again before a slice could have been worked.
            std::thread::sleep(SLICE * 2);
            check();
            let slept = mark();
            assert_eq!(slept.cpu, before.cpu);
            assert!(slept.wall > before.wall + SLICE, "{before:?} -> {slept:?}");
            work(SLICE * 2);
            check();
            let after = mark();
            // A slice of work has passed: the check yielded and restarted both clocks.
            assert!(after.cpu > before.cpu, "{before:?} -> {after:?}");
            // Plain points read the clock once every POINTS_PER_CHECK calls.
            work(SLICE * 2);
            POINTS.with(|p| p.set(0));
            (1..POINTS_PER_CHECK).for_each(|_| point());
            assert_eq!(mark(), after);
            point();
            assert!(mark().cpu > after.cpu);
            // Nested: the outer clock is back afterwards.
            paced(is_paced)
        });
        assert!(inner);
        assert!(!is_paced());
    }
}
