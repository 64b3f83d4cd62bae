//! The wakeup loop: one `select!` over signals, the next deadline,
//! datagrams, pppd reports and API calls; the core's outputs drained after
//! each. The next deadline is the earliest of the core's `poll_timeout()`,
//! the driver's timer index, the shutdown deadline and the service
//! manager's (watchdog ping, pending `STATUS=`), each O(1) to read.
//! Also: SIGUSR1 counters, and shutdown (every call cleared, every pppd
//! stopped, every kernel object deleted).

use std::collections::HashSet;
use std::time::Instant;

use l2tp_proto::event::{Command, Output};
use l2tp_proto::wire::{SessionId, TunnelId};
use tokio::signal::unix::{SignalKind, signal};

use super::sockets::Datagram;
use super::timers::Timer;
use super::{Daemon, PPPD_GRACE, SHUTDOWN_GRACE};

/// Most datagrams one turn of the loop takes from the receive queues: the
/// signals, timers, pppd reports and API calls wait at most this many
/// inputs.
const RECV_BATCH: usize = 64;

/// Within a turn, what the inputs so far produced is sent every this many
/// datagrams rather than only when the turn ends: the peer starts on the
/// replies while we handle the rest (65,535 calls in one tunnel with
/// windows of 64: about 5 % more set-ups a second than with one send per
/// turn, in interleaved runs).
const SEND_EVERY: usize = 16;

/// The next scrape of the metrics endpoint; never, when it is off.
async fn next_scrape(
    rx: &mut Option<tokio::sync::mpsc::Receiver<crate::metrics::Request>>,
) -> Option<crate::metrics::Request> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Run until SIGTERM / SIGINT, then tear everything down.
    pub(crate) async fn run(mut self) -> anyhow::Result<()> {
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut sigusr1 = signal(SignalKind::user_defined1())?;
        // Ready: the listening socket and the API socket are bound (`new`),
        // and SIGHUP / SIGTERM are handled from here on (before, SIGHUP's
        // default action would end the process): the log line and READY=1
        // both say so.
        tracing::info!(listen = %self.local, data_plane = %self.config.system.data_plane, "l2tpd started");
        self.notify.ready(Instant::now(), self.counts());
        // The log batch of a turn that took datagrams, kept open until
        // their last outputs are drained at the top of the next turn.
        let mut carried: Option<crate::logbuf::Batch> = None;
        loop {
            // The log lines of this turn's outputs go out together (with
            // those of the datagrams that woke the turn: one write(2)).
            let batch = carried.take().unwrap_or_else(crate::logbuf::Batch::begin);
            self.process_outputs().await;
            // Every turn, so a loop that is stuck stops the watchdog pings.
            self.notify.tick(Instant::now(), self.counts());
            if let Some(d) = self.shutdown
                && ((self.ep.is_idle() && self.reg.stopping() == 0) || Instant::now() >= d)
            {
                break;
            }
            let next = [
                self.ep.poll_timeout(),
                self.shutdown,
                self.timers.next(),
                self.notify.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            drop(batch);
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            // Biased: signals and timers first, then datagrams (established
            // tunnels' before the listening socket's, see `sockets`), then
            // pppd and the API.
            tokio::select! {
                biased;
                () = sleep => {
                    // After a stall (the process not scheduled, as on a
                    // starved host), a due retransmission and the
                    // acknowledgement that makes it needless can both be
                    // waiting: what arrived before the deadline is handled
                    // before it. Two turns of the runtime: one for its I/O
                    // driver to collect the sockets' readiness (the wait
                    // that the stall interrupted may have returned with
                    // the timer alone), one for the readers to queue what
                    // they read.
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    carried = Some(crate::logbuf::Batch::begin());
                    self.take_queued_datagrams().await;
                    let now = Instant::now();
                    self.ep.handle_timeout(now, &mut self.rng);
                    while let Some(t) = self.timers.pop_due(now) {
                        self.on_timer(t);
                    }
                }
                // Results of the data plane's jobs: our own work, bounded by
                // what the core holds, and what the core waits for.
                Some(done) = self.dp_rx.recv() => self.on_dataplane_done(done),
                Some(d) = self.sockets.recv() => {
                    // Its log lines, and those of the datagrams taken with
                    // it, go out with the next turn's (one write(2)).
                    carried = Some(crate::logbuf::Batch::begin());
                    self.on_datagram(&d);
                    self.take_queued_datagrams().await;
                }
                Some(ev) = self.ppp_rx.recv() => self.on_ppp_event(ev),
                Some(req) = self.api.recv() => self.handle_api(req),
                Some(req) = next_scrape(&mut self.metrics) => self.answer_scrape(req),
                _ = sigterm.recv() => {
                    tracing::info!("SIGTERM: closing all tunnels");
                    self.begin_shutdown();
                }
                _ = sigint.recv() => {
                    tracing::info!("SIGINT: closing all tunnels");
                    self.begin_shutdown();
                }
                _ = sigusr1.recv() => self.log_counters(),
                _ = sighup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if !self.shutting_down() {
                        self.reload();
                    }
                }
            }
        }
        self.final_cleanup().await;
        if let Some(st) = self.state.as_mut() {
            st.clear();
        }
        tracing::info!("l2tpd stopped");
        Ok(())
    }

    /// Handle the datagrams already queued (up to [`RECV_BATCH`] in all,
    /// after one just handled), each input's outputs drained before the
    /// next input as always. Their datagrams are sent every
    /// [`SEND_EVERY`] inputs and at the start of the next turn (see
    /// `process_outputs`).
    async fn take_queued_datagrams(&mut self) {
        for i in 1..RECV_BATCH {
            let Some(d) = self.sockets.try_recv() else {
                break;
            };
            if i % SEND_EVERY == 0 {
                self.process_outputs().await;
            } else {
                self.drain_outputs();
            }
            self.on_datagram(&d);
        }
    }

    /// Log the system counters and each tunnel's state and counters (SIGUSR1).
    pub(super) fn log_counters(&self) {
        let c = self.ep.counters();
        tracing::info!(
            tunnels = self.ep.tunnel_count(),
            sessions = self.ep.session_count(),
            total_rcvd_control_frames = c.total_rcvd_control_frames,
            bad_rcvd_frames = c.bad_rcvd_frames,
            wrong_version_frames = c.wrong_version_frames,
            unexpected_data_frames = c.unexpected_data_frames,
            no_matching_tunnel_id_discards = c.no_matching_tunnel_id_discards,
            mismatched_peer_discards = c.mismatched_peer_discards,
            tunnels_refused = c.tunnels_refused,
            tunnels_lost = c.tunnels_lost,
            auth_fails = c.auth_fails,
            illegal_messages = c.illegal_messages,
            retransmits = c.retransmits,
            calls_refused = c.calls_refused,
            undecided_calls = c.undecided_calls,
            tie_breakers_won = c.tie_breakers_won,
            tie_breakers_lost = c.tie_breakers_lost,
            half_open = self.ep.half_open_count(),
            half_open_drops = c.half_open_drops,
            sccrq_bad_ns_drops = c.sccrq_bad_ns_drops,
            tunnel_limit_refusals = c.tunnel_limit_refusals,
            peer_port_changes = c.peer_port_changes,
            unknown_tunnel_stopccns = c.unknown_tunnel_stopccns,
            unknown_tunnel_zlbs = c.unknown_tunnel_zlbs,
            unknown_tunnel_answers_suppressed = c.unknown_tunnel_answers_suppressed,
            stale_tunnels = self.ep.stale_tunnel_count(),
            tunnel_sockets = self.sockets.count(),
            listen_queue_drops = self.sockets.drops().0,
            tunnel_queue_drops = self.sockets.drops().1,
            "counters: system"
        );
        for t in self.ep.tunnels() {
            let ch = t.channel.counters();
            let by_type = |v: &[u64; 17]| {
                v.iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| format!("{}={n}", l2tp_proto::wire::MessageType(i as u16)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            tracing::info!(
                tunnel = %self.tunnel_name(t.id),
                tunnel_id = t.id.0,
                peer_tunnel_id = t.peer_id.0,
                peer = %t.peer,
                state = %t.state_name(),
                sessions = t.session_count(),
                ns = t.channel.ns(),
                nr = t.channel.nr(),
                cwnd = t.channel.cwnd(),
                ssthresh = t.channel.ssthresh(),
                peer_rws = t.channel.peer_rws(),
                retransmits = ch.retransmits,
                tx_zlbs = ch.tx_zlbs,
                rx_zlbs = ch.rx_zlbs,
                duplicates = ch.duplicates,
                out_of_order = ch.out_of_order,
                tx_hellos = t.counters.tx_hellos,
                rx_hellos = t.counters.rx_hellos,
                auth_fails = t.counters.auth_fails,
                illegal_messages = t.counters.illegal_messages,
                ignored_avps = t.counters.ignored_avps,
                vendor_avps = t.counters.vendor_avps,
                rx = %by_type(&t.counters.rx_by_type),
                tx = %by_type(&t.counters.tx_by_type),
                rx_bad = %by_type(&t.counters.rx_bad_by_type),
                "counters: tunnel"
            );
        }
    }

    /// A deadline of the driver is due.
    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::KillPppd { tunnel, session } => self.kill_pppd(tunnel, session),
            Timer::Redial { name } => self.redial(name),
            Timer::Recall { tunnel, call } => self.recall(tunnel, call),
        }
    }

    /// SIGTERM / SIGINT: nothing is re-dialled any more; the core clears
    /// every call and tunnel; the loop ends when it is idle and every pppd
    /// has exited, or at the deadline.
    fn begin_shutdown(&mut self) {
        if self.shutdown.is_none() {
            self.notify.stopping(self.counts());
            self.cancel_persistence();
            let _ = self
                .ep
                .handle_command(Instant::now(), &mut self.rng, Command::Shutdown);
            self.shutdown = Some(Instant::now() + SHUTDOWN_GRACE);
        }
    }

    /// Tear down whatever is left: stop every pppd (bounded wait, then
    /// SIGKILL), delete every kernel session and tunnel, close the sockets.
    async fn final_cleanup(&mut self) {
        // Creations still under way report first (bounded: a data plane
        // that does not answer does not hold the exit).
        self.data_plane_settled("creations").await;
        while let Ok(done) = self.dp_rx.try_recv() {
            self.on_dataplane_done(done);
        }
        let live: Vec<(TunnelId, SessionId)> = self
            .reg
            .session_ids()
            .into_iter()
            .filter(|(t, s)| self.reg.session(*t, *s).is_some_and(|c| !c.released))
            .collect();
        for (t, s) in live {
            self.delete_session(t, s);
        }
        // Wait (bounded) for every pppd to exit, then kill the stragglers.
        let deadline = tokio::time::Instant::now() + PPPD_GRACE;
        while self.reg.stopping() > 0 {
            match tokio::time::timeout_at(deadline, self.ppp_rx.recv()).await {
                Ok(Some(ev)) => self.on_ppp_event(ev),
                Ok(None) | Err(_) => break,
            }
        }
        for (t, s) in self.reg.session_ids() {
            self.kill_pppd(t, s);
        }
        let pending = self
            .reg
            .tunnels()
            .filter(|(_, e)| e.kernel_delete_pending)
            .map(|(id, _)| id);
        let tunnels: HashSet<TunnelId> = self.sockets.tunnels().chain(pending).collect();
        for t in tunnels {
            self.dpw.submit(move |dp| {
                if let Err(e) = dp.delete_tunnel(l2tp_kernel::TunnelId(u32::from(t.0))) {
                    tracing::debug!(tunnel_id = t.0, "final tunnel delete: {e}");
                }
            });
        }
        // Every kernel tunnel deleted before the sockets close and we exit
        // (bounded: closing its socket at exit deletes a kernel tunnel too).
        self.data_plane_settled("deletions").await;
        self.sockets.clear();
    }

    /// Wait until the data-plane worker has run every job submitted so
    /// far, at most [`SHUTDOWN_GRACE`]; say so if it had not.
    async fn data_plane_settled(&mut self, what: &str) {
        let settled = tokio::time::timeout(SHUTDOWN_GRACE, self.dpw.call(|_| ())).await;
        if settled.is_err() {
            tracing::warn!(
                "shutdown: the data plane's {what} did not finish within {} s; exiting anyway",
                SHUTDOWN_GRACE.as_secs()
            );
        }
    }

    /// Feed one received datagram to the core.
    fn on_datagram(&mut self, d: &Datagram) {
        let _trace = crate::api::trace::enter_datagram(&d.data);
        self.ep
            .handle_datagram(Instant::now(), &mut self.rng, d.from, &d.data);
    }

    /// Drain the core's outputs and send every datagram queued.
    pub(super) async fn process_outputs(&mut self) {
        self.drain_outputs();
        self.sockets.flush().await;
    }

    /// Drain the core's outputs. Datagrams are queued (see
    /// [`sockets::Sockets::queue`](super::sockets::Sockets::queue)) until
    /// [`Self::process_outputs`], so that the replies to a turn's inputs
    /// leave with one `sendmmsg(2)` per socket (65,535 calls in one tunnel:
    /// one system call per datagram was about a quarter of the LAC's CPU
    /// time); actions and events run in the order the core gave them, and
    /// cost next to nothing here: kernel calls and pppd starts are only
    /// submitted to the data-plane worker, so no reply waits behind them.
    fn drain_outputs(&mut self) {
        let mut rest = Vec::new();
        loop {
            while let Some(o) = self.ep.poll_output() {
                match o {
                    Output::Transmit(t) => self.transmit(t),
                    // Decided at once: its SCCRP or StopCCN is next in the queue.
                    Output::Incoming(i) => self.admit(i),
                    // Decided at once: its ICRP, OCRP or CDN is next in the queue.
                    Output::IncomingCall(c) => self.admit_call(c),
                    other => rest.push(other),
                }
            }
            if rest.is_empty() {
                // Results of the data plane's jobs feed the core again (at
                // once with the null data plane, whose jobs ran inline).
                let mut fed = false;
                while let Ok(done) = self.dp_rx.try_recv() {
                    self.on_dataplane_done(done);
                    fed = true;
                }
                if fed {
                    continue;
                }
                if let Some(st) = self.state.as_mut() {
                    st.flush();
                }
                return;
            }
            // Action results feed the core again: go round until it is quiet.
            for o in rest.drain(..) {
                match o {
                    Output::Action(a) => self.action(a),
                    Output::Event(e) => self.event(e),
                    Output::Transmit(_) | Output::Incoming(_) | Output::IncomingCall(_) => {
                        unreachable!("transmits, incoming tunnels and calls are handled above")
                    }
                }
            }
        }
    }
}
