//! The data-plane worker: the one owner of the data plane, so the protocol
//! loop never waits on the kernel or on pppd.
//!
//! Every kernel call (generic netlink, PPPoL2TP sockets) and every pppd
//! start (fork/exec) is a job, run in the order it was submitted, on a
//! thread of its own (`l2tpd-dataplane`). A job reports what came of it as
//! an input of the loop ([`Done`], through the loop's channel) or answers an
//! API call itself; the loop feeds those results to the core
//! (`ActionResult`) and the registry. Order is what keeps it correct: a
//! session's kernel session is created after its tunnel's, and a delete
//! submitted after a create runs after it.
//!
//! With the null data plane nothing waits on the kernel, and jobs run at
//! once on the loop's own thread ([`Worker::inline`]); their results still
//! come back through the channel, so both modes take the same path.
//!
//! The queue is not bounded by a number: a job is submitted only for a
//! tunnel or session the core already holds (each bounded by its limits),
//! or for an API call, of which a connection has one in flight.
//!
//! pppd is started from the worker thread; `setpriv --pdeathsig` ties its
//! SIGTERM to that thread's exit, which is the daemon's (the thread ends
//! once the [`Worker`] is dropped, at the end of shutdown, after the last
//! pppd was stopped; or with the process).

use std::num::NonZeroU32;
use std::sync::mpsc as std_mpsc;

use l2tp_kernel::DataPlane;
use l2tp_proto::wire::{SessionId, TunnelId};
use tokio::sync::oneshot;

/// A unit of data-plane work: runs with the data plane, on the worker.
pub(super) type Job = Box<dyn FnOnce(&mut dyn DataPlane) + Send>;

/// Which submission a [`Done`] answers: a creation whose tunnel or session
/// id has since been given to another tunnel or session is recognised by
/// its ticket, and its result is not taken for the new one's.
pub(super) type Ticket = NonZeroU32;

/// What a creation job reports back to the loop.
#[derive(Debug)]
pub(super) enum Done {
    /// The kernel tunnel of `tunnel` was created, or why not.
    Tunnel {
        tunnel: TunnelId,
        ticket: Ticket,
        result: Result<(), String>,
    },
    /// The kernel session of `session` was created and its pppd started
    /// (its pid; none with the null data plane), or why not (the kernel
    /// session is gone again then).
    Session {
        tunnel: TunnelId,
        session: SessionId,
        ticket: Ticket,
        result: Result<Option<u32>, String>,
    },
}

/// The owner of the data plane: a thread running jobs in order, or the
/// caller's thread for a data plane that never blocks.
pub(super) struct Worker {
    mode: Mode,
    next_ticket: u32,
}

enum Mode {
    /// Jobs run at once on the submitting thread.
    Inline(Box<dyn DataPlane>),
    /// Jobs run on the worker thread, in submission order.
    Thread { jobs: Option<std_mpsc::Sender<Job>> },
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Inline(_) => "inline",
            Mode::Thread { .. } => "thread",
        };
        f.debug_struct("Worker").field("mode", &mode).finish()
    }
}

impl Worker {
    /// Jobs run at once on the submitting thread (a data plane that never
    /// blocks: the null one).
    pub(super) fn inline(dp: Box<dyn DataPlane>) -> Self {
        Self {
            mode: Mode::Inline(dp),
            next_ticket: 0,
        }
    }

    /// Start the worker thread, which owns `dp` from now on, at nice value
    /// `nice` (`[system] pppd_nice`, -20..=19; Linux keeps a nice value per
    /// thread, and the pppds the thread starts inherit it). Jobs run inside
    /// the runtime of `rt` (pppd's pipes and exit status are watched by
    /// tasks of that runtime). Errors: the thread could not be created. A
    /// nice value that cannot be set (below the thread's without
    /// `CAP_SYS_NICE`) is logged and the thread keeps its own.
    pub(super) fn spawn(
        dp: Box<dyn DataPlane>,
        rt: tokio::runtime::Handle,
        nice: i32,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("l2tpd-dataplane".into())
            .spawn(move || {
                // `None`: on Linux, the calling thread alone.
                if let Err(e) = rustix::process::setpriority_process(None, nice) {
                    tracing::warn!(
                        "data-plane worker: cannot set nice value {nice} (pppd_nice): {e}"
                    );
                }
                let _rt = rt.enter();
                let mut dp = dp;
                while let Ok(job) = rx.recv() {
                    // A job that panics (a bug) loses its own result, not
                    // the worker: the other tunnels keep their data plane.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(dp.as_mut());
                    }));
                    if ran.is_err() {
                        tracing::error!("data-plane worker: a job panicked; carrying on");
                    }
                }
            })?;
        Ok(Self {
            mode: Mode::Thread { jobs: Some(tx) },
            next_ticket: 0,
        })
    }

    /// A ticket for a creation's [`Done`]; never the same as the last
    /// 2^32 − 1 ones.
    pub(super) fn ticket(&mut self) -> Ticket {
        self.next_ticket = self.next_ticket.wrapping_add(1);
        if self.next_ticket == 0 {
            self.next_ticket = 1;
        }
        Ticket::new(self.next_ticket).unwrap_or(Ticket::MIN)
    }

    /// Run `job` after every job submitted before it. A worker thread that
    /// is gone (it cannot end while the worker lives, short of a panic in a
    /// job) drops the job and says so.
    pub(super) fn submit(&mut self, job: impl FnOnce(&mut dyn DataPlane) + Send + 'static) {
        match &mut self.mode {
            Mode::Inline(dp) => job(dp.as_mut()),
            Mode::Thread { jobs, .. } => {
                let sent = jobs
                    .as_ref()
                    .is_some_and(|tx| tx.send(Box::new(job)).is_ok());
                if !sent {
                    tracing::error!("data-plane worker is gone: a kernel operation was dropped");
                }
            }
        }
    }

    /// Run `f` after every job submitted before it and wait for its result
    /// (start-up, shutdown: never from the loop's turns). `None`: the worker
    /// thread is gone.
    pub(super) async fn call<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut dyn DataPlane) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.submit(move |dp| {
            let _ = tx.send(f(dp));
        });
        rx.await.ok()
    }
}

impl Drop for Worker {
    /// The thread finishes the jobs already submitted, then ends; nobody
    /// waits for it (shutdown waits, bounded, with [`Worker::call`]), so a
    /// kernel that does not answer cannot hold the daemon's exit.
    fn drop(&mut self) {
        if let Mode::Thread { jobs } = &mut self.mode {
            drop(jobs.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l2tp_kernel::NullDataPlane;

    fn tid(n: u32) -> l2tp_kernel::TunnelId {
        l2tp_kernel::TunnelId(n)
    }

    /// Jobs on the thread run in submission order, and `call` waits for
    /// every job before it.
    #[tokio::test]
    async fn thread_runs_jobs_in_order() {
        let mut w = Worker::spawn(
            Box::new(NullDataPlane::signalling_only()),
            tokio::runtime::Handle::current(),
            0,
        )
        .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for n in 1..=50u32 {
            let tx = tx.clone();
            w.submit(move |dp| {
                let r = dp.delete_tunnel(tid(n));
                let _ = tx.send((n, r.is_ok()));
            });
        }
        let listed = w.call(|dp| dp.list_tunnels().map(|v| v.len())).await;
        assert_eq!(listed.map(|r| r.ok()), Some(Some(0)));
        let mut seen = Vec::new();
        while let Ok((n, ok)) = rx.try_recv() {
            assert!(ok);
            seen.push(n);
        }
        assert_eq!(seen, (1..=50).collect::<Vec<_>>());
        // The jobs ran on the worker's thread.
        let name = w
            .call(|_| std::thread::current().name().map(str::to_owned))
            .await;
        assert_eq!(name, Some(Some("l2tpd-dataplane".into())));
    }

    /// The worker thread runs at its nice value, the rest of the process
    /// keeps its own, and a program the worker starts (as it starts pppd)
    /// inherits the worker's.
    #[tokio::test]
    async fn the_worker_and_what_it_starts_run_at_its_nice_value() {
        let own = rustix::process::getpriority_process(None).unwrap();
        // Raising a nice value needs no privilege.
        let nice = (own + 3).min(19);
        let mut w = Worker::spawn(
            Box::new(NullDataPlane::signalling_only()),
            tokio::runtime::Handle::current(),
            nice,
        )
        .unwrap();
        let on_worker = w
            .call(|_| rustix::process::getpriority_process(None).unwrap())
            .await;
        assert_eq!(on_worker, Some(nice));
        // Field 19 of /proc/self/stat: the nice value of the child itself.
        let child = w
            .call(|_| {
                std::process::Command::new("sh")
                    .args(["-c", "cut -d' ' -f19 /proc/self/stat"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            })
            .await;
        assert_eq!(child.map(Result::unwrap), Some(nice.to_string()));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), own);
    }

    /// Inline jobs run before `submit` returns.
    #[tokio::test]
    async fn inline_runs_at_once() {
        let mut w = Worker::inline(Box::new(NullDataPlane::signalling_only()));
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        w.submit(move |_| r.store(true, std::sync::atomic::Ordering::SeqCst));
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(w.call(|_| 7).await, Some(7));
    }

    #[test]
    fn tickets_are_never_zero_and_differ() {
        let mut w = Worker::inline(Box::new(NullDataPlane::signalling_only()));
        let a = w.ticket();
        let b = w.ticket();
        assert_ne!(a, b);
        w.next_ticket = u32::MAX;
        assert_eq!(w.ticket().get(), 1);
    }
}
