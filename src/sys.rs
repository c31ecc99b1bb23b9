//! The few calls into the operating system that Rust's standard library does not offer, each
//! behind a safe function. The only module allowed `unsafe` code.
#![allow(unsafe_code)]

use std::time::Duration;

/// A call's result as the C convention gives it: 0, or the error in `errno`.
fn status(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`).
pub fn disable_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours; it sets a
    // flag of the process's address space that the kernel reads at page-fault time.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, 0, 0, 0) };
    status(rc)
}

/// Raises the soft limit on open files to the hard limit; returns the soft limit in force,
/// or `None` when it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct passed, owned here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Lowers the calling thread's CPU priority to nice 19 (per thread on Linux).
pub fn lower_thread_priority() -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours; who = 0 is the
    // calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    status(rc)
}

/// The CPU time the calling thread has used, if the system can tell.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec that we own and touches nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}
