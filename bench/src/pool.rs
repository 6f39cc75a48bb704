//! The coordinator's side of the worker processes: start them, send each a command,
//! collect the replies, merge what they measured.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::util::{Result, new_histogram};
use crate::worker::{Cmd, ConnectJob, Connected, LoadJob, Loaded, Reply, Stats};

/// Clients one worker process holds at most.
pub const CLIENTS_PER_WORKER: usize = 5000;

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// A set of worker processes; killed when dropped.
pub struct Workers {
    procs: Vec<Proc>,
}

/// Source address of client `index` of worker `worker` in run `run`: 127.R.W.H with a
/// block per run and worker and 8 hosts per worker, so no source address carries more
/// than a few thousand of the ~28k ephemeral ports, and sockets still in TIME_WAIT from
/// an earlier run do not crowd the ports of the next one.
pub fn source_addr(run: u32, worker: usize, index: usize) -> Ipv4Addr {
    let block = 10 + (run % 240) as u8;
    let w = (worker % 250) as u8;
    let host = 1 + (index % 8) as u8;
    Ipv4Addr::new(127, block, w + 1, host)
}

impl Workers {
    /// Starts `n` worker processes (this same executable, `worker` subcommand).
    pub async fn spawn(n: usize) -> Result<Workers> {
        let exe = std::env::current_exe()?;
        let mut procs = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let mut child = Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()?;
            let stdin = child.stdin.take().ok_or("worker stdin")?;
            let stdout = child.stdout.take().ok_or("worker stdout")?;
            procs.push(Proc {
                child,
                stdin,
                stdout: BufReader::new(stdout).lines(),
            });
        }
        Ok(Workers { procs })
    }

    /// CPU-seconds used so far by the worker processes (the generator's own cost).
    pub fn cpu_s(&self) -> f64 {
        self.procs
            .iter()
            .filter_map(|p| p.child.id())
            .filter_map(|pid| crate::procstat::read(pid).ok())
            .map(|u| u.cpu_s)
            .sum()
    }

    /// Sends `cmds[i]` to worker `i` (all first, so they work in parallel), then reads
    /// every reply, each within `limit`.
    async fn each(&mut self, cmds: Vec<Cmd>, limit: Duration) -> Result<Vec<Reply>> {
        for (p, cmd) in self.procs.iter_mut().zip(&cmds) {
            let mut line = serde_json::to_string(cmd)?;
            line.push('\n');
            p.stdin.write_all(line.as_bytes()).await?;
            p.stdin.flush().await?;
        }
        let mut replies = Vec::with_capacity(cmds.len());
        for p in self.procs.iter_mut().take(cmds.len()) {
            let line = tokio::time::timeout(limit, p.stdout.next_line())
                .await
                .map_err(|_| "worker did not answer in time")??
                .ok_or("worker exited")?;
            let reply: Reply = serde_json::from_str(&line)?;
            if let Reply::Failed(e) = reply {
                return Err(format!("worker: {e}").into());
            }
            replies.push(reply);
        }
        Ok(replies)
    }

    async fn all(&mut self, cmd: Cmd, limit: Duration) -> Result<Vec<Reply>> {
        let cmds = vec![cmd; self.procs.len()];
        self.each(cmds, limit).await
    }

    /// Opens `jobs[i]`'s clients on worker `i`, in parallel. Returns the merged result
    /// (elapsed = the slowest worker).
    pub async fn connect(&mut self, jobs: Vec<ConnectJob>) -> Result<Connected> {
        let limit = Duration::from_millis(jobs.iter().map(|j| j.timeout_ms).max().unwrap_or(0))
            + Duration::from_secs(120);
        let replies = self
            .each(jobs.into_iter().map(Cmd::Connect).collect(), limit)
            .await?;
        let mut out = Connected::default();
        for r in replies {
            if let Reply::Connected(c) = r {
                out.ok += c.ok;
                out.failed += c.failed;
                out.elapsed_ms = out.elapsed_ms.max(c.elapsed_ms);
                out.errors.extend(c.errors.into_iter().take(3));
            }
        }
        Ok(out)
    }

    /// Runs a load of `rate` per second in total, split evenly over the workers.
    pub async fn load(&mut self, rate: f64, duration_ms: u64, drain_ms: u64) -> Result<LoadSum> {
        self.load_on(self.procs.len(), rate, duration_ms, drain_ms)
            .await
    }

    /// Runs a load of `rate` per second in total, split evenly over the first `senders`
    /// workers only (the others hold receivers and are left alone).
    pub async fn load_on(
        &mut self,
        senders: usize,
        rate: f64,
        duration_ms: u64,
        drain_ms: u64,
    ) -> Result<LoadSum> {
        let senders = senders.clamp(1, self.procs.len().max(1));
        let job = LoadJob {
            rate: rate / senders as f64,
            duration_ms,
            drain_ms,
        };
        let limit = Duration::from_millis(duration_ms + drain_ms) + Duration::from_secs(60);
        let replies = self.each(vec![Cmd::Load(job); senders], limit).await?;
        let mut sum = LoadSum {
            sent: 0,
            acked_ok: 0,
            acked_err: 0,
            span_ms: 0.0,
            max_lag_ms: 0.0,
            acks: new_histogram(),
            errors: Vec::new(),
        };
        for r in replies {
            if let Reply::Loaded(l) = r {
                sum.add(l);
            }
        }
        Ok(sum)
    }

    /// Delivery statistics of every worker, merged.
    pub async fn stats(&mut self, reset: bool) -> Result<StatsSum> {
        let replies = self
            .all(Cmd::Stats { reset }, Duration::from_secs(30))
            .await?;
        Ok(StatsSum::merge(replies))
    }

    /// Delivery statistics of each worker, in worker order.
    pub async fn stats_each(&mut self, reset: bool) -> Result<Vec<StatsSum>> {
        let replies = self
            .all(Cmd::Stats { reset }, Duration::from_secs(30))
            .await?;
        Ok(replies
            .into_iter()
            .map(|r| StatsSum::merge(vec![r]))
            .collect())
    }

    /// Tracked deliveries so far, open and dropped clients (no histograms).
    pub async fn count(&mut self) -> Result<StatsSum> {
        let replies = self.all(Cmd::Count, Duration::from_secs(30)).await?;
        Ok(StatsSum::merge(replies))
    }

    /// Polls until `expected` tracked deliveries arrived, or `limit` passed.
    pub async fn await_deliveries(&mut self, expected: u64, limit: Duration) -> Result<u64> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let got = self.count().await?.delivered;
            if got >= expected || tokio::time::Instant::now() >= until {
                return Ok(got);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Closes every client and ends the processes. Returns the final counts.
    pub async fn close(mut self) -> Result<StatsSum> {
        let result = self.all(Cmd::Close, Duration::from_secs(30)).await;
        for p in &mut self.procs {
            let _ = tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await;
            let _ = p.child.start_kill();
        }
        Ok(StatsSum::merge(result?))
    }
}

/// Merged result of a load.
#[derive(Debug)]
pub struct LoadSum {
    /// Emitted.
    pub sent: u64,
    /// Successful acks.
    pub acked_ok: u64,
    /// Error acks.
    pub acked_err: u64,
    /// First emit → last ack, slowest worker.
    pub span_ms: f64,
    /// Worst scheduler lag.
    pub max_lag_ms: f64,
    /// Ack round trips (µs).
    pub acks: Histogram<u64>,
    /// Sample error bodies.
    pub errors: Vec<String>,
}

impl LoadSum {
    fn add(&mut self, l: Loaded) {
        self.sent += l.sent;
        self.acked_ok += l.acked_ok;
        self.acked_err += l.acked_err;
        self.span_ms = self.span_ms.max(l.span_ms);
        self.max_lag_ms = self.max_lag_ms.max(l.max_lag_ms);
        l.acks.add_to(&mut self.acks);
        self.errors.extend(l.errors.into_iter().take(2));
    }
}

/// Merged delivery statistics.
#[derive(Debug)]
pub struct StatsSum {
    /// Tracked deliveries.
    pub delivered: u64,
    /// Earliest receipt (epoch µs), 0 when none.
    pub first_recv_us: u64,
    /// Latest receipt (epoch µs).
    pub last_recv_us: u64,
    /// Delivery latencies (µs).
    pub deliveries: Histogram<u64>,
    /// Clients connected.
    pub open: u64,
    /// Clients dropped by the server.
    pub dropped: u64,
}

impl StatsSum {
    fn merge(replies: Vec<Reply>) -> Self {
        let mut s = StatsSum {
            delivered: 0,
            first_recv_us: 0,
            last_recv_us: 0,
            deliveries: new_histogram(),
            open: 0,
            dropped: 0,
        };
        for r in replies {
            if let Reply::Stats(Stats {
                delivered,
                first_recv_us,
                last_recv_us,
                deliveries,
                open,
                dropped,
            }) = r
            {
                s.delivered += delivered;
                if first_recv_us > 0 && (s.first_recv_us == 0 || first_recv_us < s.first_recv_us) {
                    s.first_recv_us = first_recv_us;
                }
                s.last_recv_us = s.last_recv_us.max(last_recv_us);
                deliveries.add_to(&mut s.deliveries);
                s.open += open;
                s.dropped += dropped;
            }
        }
        s
    }
}
