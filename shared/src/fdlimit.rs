//! Open-file limits: both binaries raise their soft `RLIMIT_NOFILE` to the
//! hard limit at start, and size their connection bound from what they got,
//! so a flood of idle connections meets backpressure (the listener stops
//! accepting) rather than "Too many open files" somewhere else (a database
//! file, a webhook socket).

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// actix-web's own default bound on connections per worker.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 25_000;

/// A worker always gets at least this many connections, however low the
/// limit (below it, `derive_max_connections` says so in its note).
pub const MIN_CONNECTIONS_PER_WORKER: usize = 16;

/// The open-file limit before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit the process started with (`None` = unlimited).
    pub before: Option<u64>,
    /// The soft limit now.
    pub soft: Option<u64>,
    /// The hard limit (`None` = unlimited).
    pub hard: Option<u64>,
}

impl NofileLimit {
    /// The soft limit as a count of descriptors (unlimited = `u64::MAX`).
    pub fn usable(&self) -> u64 {
        self.soft.unwrap_or(u64::MAX)
    }
}

impl std::fmt::Display for NofileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
        if self.before == self.soft {
            write!(
                f,
                "open-file limit {} (hard limit {})",
                show(self.soft),
                show(self.hard)
            )
        } else {
            write!(
                f,
                "open-file limit raised from {} to {} (the hard limit)",
                show(self.before),
                show(self.soft)
            )
        }
    }
}

/// Raises the soft open-file limit to the hard one (or, when the hard one
/// is unlimited, to the kernel's `fs.nr_open` ceiling). Never fails: when
/// the raise is refused, the limit stays where it was and the result says so.
pub fn raise_nofile() -> NofileLimit {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let set = |soft: Option<u64>| {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: soft,
                maximum,
            },
        )
        .is_ok()
    };
    if current != maximum && !set(maximum) {
        // Linux refuses a soft limit past fs.nr_open, "unlimited" included.
        if let Some(ceiling) = nr_open().filter(|&c| current.is_some_and(|cur| c > cur)) {
            set(Some(maximum.map_or(ceiling, |m| m.min(ceiling))));
        }
    }
    NofileLimit {
        before: current,
        soft: getrlimit(Resource::Nofile).current,
        hard: maximum,
    }
}

fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What both binaries do at start: raises the open-file limit (logging
/// it) and returns the connections one worker may hold: `fixed` when the
/// user chose it, else [`derive_max_connections`] within the raised limit
/// (a limit too low is warned about, with `hint` on what else to lower).
pub fn connections_per_worker(
    fixed: Option<usize>,
    reserve: u64,
    fds_per_connection: u64,
    workers: usize,
    hint: &str,
) -> usize {
    let limit = raise_nofile();
    log::info!("{limit}");
    let n = fixed.unwrap_or_else(|| {
        let (n, note) =
            derive_max_connections(limit.usable(), reserve, fds_per_connection, workers);
        if let Some(note) = note {
            log::warn!("{note}{hint}");
        }
        n
    });
    log::info!("at most {n} connection(s) per worker ({workers} worker(s))");
    n
}

/// Connections per worker that fit in `limit` descriptors, once `reserve`
/// of them are kept for everything else (database files, outgoing webhook
/// sockets, listeners, the runtime) and each connection may use
/// `fds_per_connection` of them. Capped at actix's default, floored at
/// [`MIN_CONNECTIONS_PER_WORKER`]; the note, when there is one, says the
/// limit is too low for the floor.
pub fn derive_max_connections(
    limit: u64,
    reserve: u64,
    fds_per_connection: u64,
    workers: usize,
) -> (usize, Option<String>) {
    let workers = workers.max(1) as u64;
    let per_worker = limit.saturating_sub(reserve) / fds_per_connection.max(1) / workers;
    let per_worker = usize::try_from(per_worker).unwrap_or(usize::MAX);
    if per_worker < MIN_CONNECTIONS_PER_WORKER {
        let note = format!(
            "the open-file limit ({limit}) leaves room for only {per_worker} connection(s) per \
             worker; using {MIN_CONNECTIONS_PER_WORKER}, which may run out of descriptors: raise \
             the limit (ulimit -n, or the container's nofile ulimit)"
        );
        (MIN_CONNECTIONS_PER_WORKER, Some(note))
    } else {
        (per_worker.min(MAX_CONNECTIONS_PER_WORKER), None)
    }
}

/// Connections the kernel completes and queues for a listener before it
/// accepts them: actix's own default. (`std` listens with 128, so a burst
/// of a few hundred connects, or a worker at its connection bound, drops
/// handshakes that then wait for a SYN retransmission, a second or more.)
pub const LISTEN_BACKLOG: i32 = 2048;

/// Widens a bound listener's accept queue to [`LISTEN_BACKLOG`] (the kernel
/// caps it at `net.core.somaxconn`). Listening again on a listening socket
/// only changes its backlog.
pub fn widen_backlog(listener: &std::net::TcpListener) -> std::io::Result<()> {
    rustix::net::listen(listener, LISTEN_BACKLOG).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_in_the_limit_after_the_reserve() {
        // 1,024 descriptors, 320 reserved, 3 per connection, 2 workers.
        assert_eq!(derive_max_connections(1024, 320, 3, 2), (117, None));
        // A large limit is capped at actix's default.
        assert_eq!(
            derive_max_connections(1 << 20, 320, 3, 2),
            (MAX_CONNECTIONS_PER_WORKER, None)
        );
        assert_eq!(
            derive_max_connections(u64::MAX, 320, 3, 1),
            (MAX_CONNECTIONS_PER_WORKER, None)
        );
        // Too small: the floor, and a note naming the limit.
        let (n, note) = derive_max_connections(200, 320, 3, 2);
        assert_eq!(n, MIN_CONNECTIONS_PER_WORKER);
        assert!(note.unwrap().contains("open-file limit (200)"));
    }

    #[test]
    fn raising_is_idempotent_and_reaches_the_hard_limit() {
        let first = raise_nofile();
        let ceiling = nr_open().unwrap_or(u64::MAX);
        match first.hard {
            Some(hard) if hard <= ceiling => assert_eq!(first.soft, Some(hard), "{first}"),
            _ => assert!(
                first.soft >= first.before.map(|b| b.min(ceiling)),
                "{first}"
            ),
        }
        let again = raise_nofile();
        assert_eq!(again.before, again.soft);
        assert_eq!(again.soft, first.soft);
        assert!(again.to_string().starts_with("open-file limit "), "{again}");
    }
}
