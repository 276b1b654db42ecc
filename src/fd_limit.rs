//! How many files (sockets included) the process may hold open, and raising that
//! number as far as the system lets an ordinary process.
//!
//! Every open socket is a file descriptor, and Linux caps how many a process holds:
//! `RLIMIT_NOFILE`, a *soft* limit that is enforced and a *hard* limit, the ceiling up
//! to which a process may raise its soft limit itself. Shells start programs with a
//! low soft limit (often 1,024) for the sake of old programs that keep descriptors in
//! a fixed-size `select` set, so a program that means to hold thousands of sockets
//! raises its own, as servers do at start-up. Raising the hard limit takes privilege
//! (`ulimit -Hn`, or `LimitNOFILE` in a systemd unit), so that is left to the user.

use std::io;

/// The limit on open descriptors, after [`raise_to_hard_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    /// The limit now in force.
    pub soft: u64,
    /// The most it could be raised to without privilege.
    pub hard: u64,
}

/// Raises the soft limit on open descriptors to the hard limit, and returns both.
///
/// # Errors
/// If the kernel refuses to say or to change the limit (neither happens to a process
/// that only raises its soft limit up to its hard one).
pub fn raise_to_hard_limit() -> io::Result<OpenFiles> {
    let mut limit = current()?;
    // An unlimited hard limit still stops at the kernel's own ceiling, `nr_open`:
    // asking for more is refused.
    let ceiling = limit.rlim_max.min(kernel_ceiling());
    if limit.rlim_cur < ceiling {
        limit.rlim_cur = ceiling;
        // SAFETY: `setrlimit` reads one `rlimit` through the pointer, which points to
        // a live, initialised value for the whole call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(OpenFiles {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// The most descriptors the kernel lets any process hold (`/proc/sys/fs/nr_open`), or
/// no ceiling if it will not say.
fn kernel_ceiling() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

fn current() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer, which points to a
    // live value we own for the whole call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::raise_to_hard_limit;

    /// After raising, the soft limit is the hard one (or the kernel's ceiling, if
    /// lower), and raising again changes nothing.
    #[test]
    fn the_soft_limit_rises_to_the_hard_one() {
        let raised = raise_to_hard_limit().unwrap();
        assert_eq!(raised.soft, raised.hard.min(super::kernel_ceiling()));
        assert_eq!(raise_to_hard_limit().unwrap(), raised);
    }
}
