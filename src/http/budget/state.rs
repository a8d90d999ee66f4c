//! One upstream host's budget on this node, as a pure state machine over `tokio::time::Instant`
//! (so the paused test clock drives it exactly). See `../shared/research/throttling.md` §5.2.
//!
//! - **Open**: a token bucket of `burst` units refilled at `refill` units/s. Any interval τ
//!   admits at most `burst + refill·τ` units, so with the defaults (1,000, 100/s) one node takes
//!   at most 2,000 of a vault's 4,000 per 10 s.
//! - **On a 429** (at most one cut per second: one wave of 429s is one signal): every waiter is
//!   sent back to the queue (the epoch changes), the bucket empties, and the host pauses for
//!   `Retry-After`, else 1, 2, 4, 8 s (doubling per throttled epoch within 2 windows), jittered
//!   ×U(0.5, 1.5) and capped at one window (10 s). The rate is cut to 0.7 × the units this node
//!   had accepted in the last window (per second), then regrows along AWS's CUBIC curve
//!   `C·(t − K)³ + W_max` (C = 0.4, K = ∛(W_max·0.3/C)) up to `refill`.
//! - **Back to open** once the regrown rate reaches `refill` and no 429 came for a window.
//! - **Retry budget**: every request sent deposits 0.1 retries (10%), plus one per second up to
//!   ten; a retry withdraws one. An empty budget fails the retry instead of sending it.

use std::time::Duration;

use tokio::time::Instant;

/// Key Vault's window: limits are published per 10 s.
pub const WINDOW: Duration = Duration::from_secs(10);
const BETA: f64 = 0.7;
const CUBIC_C: f64 = 0.4;
const MIN_RATE: f64 = 0.5;
const RETRY_SHARE: f64 = 0.1;
const RETRY_FLOOR_PER_SECOND: f64 = 1.0;
const RETRY_MAX: f64 = 10.0;

/// How the budget is shaped (from the flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Bucket size in units (`--upstream-burst`).
    pub burst: f64,
    /// Refill in units/s (`--upstream-requests-per-second`); `0` = no pacing at all.
    pub refill: f64,
    /// Jitter on pauses (off for exact tests).
    pub jitter: bool,
}

impl Shape {
    /// The shape that keeps one node within `share` units per [`WINDOW`]
    /// (`--upstream-vault-share`): burst and refill scaled down together until
    /// `burst + refill·W ≤ share`.
    pub fn within_share(self, share: Option<u32>) -> Shape {
        let Some(share) = share.filter(|s| *s > 0) else {
            return self;
        };
        let worst = self.burst + self.refill * WINDOW.as_secs_f64();
        if self.refill == 0.0 || worst <= f64::from(share) {
            return self;
        }
        let factor = f64::from(share) / worst;
        Shape {
            burst: (self.burst * factor).max(1.0),
            refill: (self.refill * factor).max(MIN_RATE),
            jitter: self.jitter,
        }
    }
}

/// Where a host's budget stands (the `akv_vault_state` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    Paused,
    Throttled,
}

impl Phase {
    /// The metric value: 0 open, 1 paused, 2 throttled.
    pub fn code(self) -> i64 {
        match self {
            Phase::Open => 0,
            Phase::Paused => 1,
            Phase::Throttled => 2,
        }
    }
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Send after this wait, if the epoch is unchanged by then.
    After { wait: Duration, epoch: u64 },
    /// The wait would pass the deadline: about this long.
    TooLate { wait: Duration },
}

/// After a 429: the regrowth curve.
#[derive(Debug, Clone, Copy)]
struct Cut {
    w_max: f64,
    /// When regrowth starts (the end of the pause).
    from: Instant,
}

/// The state of one host.
#[derive(Debug)]
pub struct State {
    shape: Shape,
    tokens: f64,
    /// Refill is counted from here (in the future during a pause).
    last: Instant,
    pause_until: Instant,
    cut: Option<Cut>,
    last_cut: Option<Instant>,
    last_429: Option<Instant>,
    streak: u32,
    epoch: u64,
    /// Units accepted in each of the last ten seconds (ring, indexed by whole seconds).
    accepted: [f64; 10],
    accepted_second: u64,
    origin: Instant,
    retry_balance: f64,
    retry_last: Instant,
}

impl State {
    /// A full bucket at `now`.
    pub fn new(shape: Shape, now: Instant) -> Self {
        State {
            shape,
            tokens: shape.burst,
            last: now,
            pause_until: now,
            cut: None,
            last_cut: None,
            last_429: None,
            streak: 0,
            epoch: 0,
            accepted: [0.0; 10],
            accepted_second: 0,
            origin: now,
            retry_balance: RETRY_MAX,
            retry_last: now,
        }
    }

    /// Units per second allowed at `now`.
    pub fn rate(&self, now: Instant) -> f64 {
        let open = self.shape.refill;
        match self.cut {
            None => open,
            Some(cut) => {
                let k = (cut.w_max * (1.0 - BETA) / CUBIC_C).cbrt();
                let t = now.saturating_duration_since(cut.from).as_secs_f64();
                (CUBIC_C * (t - k).powi(3) + cut.w_max).clamp(MIN_RATE.min(open), open)
            }
        }
    }

    fn capacity(&self, now: Instant) -> f64 {
        match self.cut {
            None => self.shape.burst,
            Some(_) => self.rate(now).max(1.0),
        }
    }

    /// The phase at `now`.
    pub fn phase(&self, now: Instant) -> Phase {
        if self.pause_until > now {
            Phase::Paused
        } else if self.cut.is_some() {
            Phase::Throttled
        } else {
            Phase::Open
        }
    }

    fn refill(&mut self, now: Instant) {
        if now <= self.last {
            return;
        }
        let dt = now.duration_since(self.last).as_secs_f64();
        // The rate at the midpoint: exact for the open bucket, close for the curve.
        let mid = self.last + now.duration_since(self.last) / 2;
        self.tokens = (self.tokens + self.rate(mid) * dt).min(self.capacity(now));
        self.last = now;
        if let Some(_cut) = self.cut {
            let quiet = self
                .last_429
                .is_none_or(|t| now.saturating_duration_since(t) >= WINDOW);
            if quiet && self.rate(now) >= self.shape.refill {
                // Open again; tokens carry on from where they are (no re-burst into a window).
                self.cut = None;
            }
        }
    }

    /// Reserves `units` to be sent after the returned wait, unless that wait would end after
    /// `deadline`.
    pub fn reserve(&mut self, units: f64, now: Instant, deadline: Option<Instant>) -> Grant {
        if self.shape.refill == 0.0 && self.pause_until <= now {
            return Grant::After {
                wait: Duration::ZERO,
                epoch: self.epoch,
            };
        }
        self.refill(now);
        let start = self.last.max(now);
        let after = self.tokens - units;
        let deficit = (-after).max(0.0);
        let rate = self
            .rate(start)
            .max(MIN_RATE.min(self.shape.refill.max(MIN_RATE)));
        let wait = start.duration_since(now)
            + Duration::from_secs_f64(if deficit > 0.0 { deficit / rate } else { 0.0 });
        if deadline.is_some_and(|d| now + wait > d) {
            return Grant::TooLate { wait };
        }
        self.tokens = after;
        Grant::After {
            wait,
            epoch: self.epoch,
        }
    }

    /// The wait a reservation of `units` would get now, without taking anything.
    pub fn expected_wait(&mut self, units: f64, now: Instant) -> Duration {
        match self.reserve(units, now, Some(now)) {
            Grant::After { .. } => {
                // Reserved with zero wait: give the units back.
                self.tokens += units;
                Duration::ZERO
            }
            Grant::TooLate { wait } => wait,
        }
    }

    /// Whether a reservation made in `epoch` still stands.
    pub fn current(&self, epoch: u64) -> bool {
        self.epoch == epoch
    }

    /// Charges `units` more after the fact (a key turned out to be an HSM key): debt.
    pub fn charge(&mut self, units: f64, now: Instant) {
        self.refill(now);
        self.tokens -= units;
        self.book_accepted(units, now);
    }

    fn book_accepted(&mut self, units: f64, now: Instant) {
        let second = now.saturating_duration_since(self.origin).as_secs();
        if second != self.accepted_second {
            let gap = second.saturating_sub(self.accepted_second).min(10);
            for s in 1..=gap {
                self.accepted[((self.accepted_second + s) % 10) as usize] = 0.0;
            }
            self.accepted_second = second;
        }
        self.accepted[(second % 10) as usize] += units;
    }

    /// A request was sent (deposits into the retry budget).
    pub fn sent(&mut self, now: Instant) {
        self.refill_retries(now);
        self.retry_balance = (self.retry_balance + RETRY_SHARE).min(RETRY_MAX * 10.0);
    }

    fn refill_retries(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.retry_last).as_secs_f64();
        self.retry_last = now;
        if self.retry_balance < RETRY_MAX {
            self.retry_balance = (self.retry_balance + dt * RETRY_FLOOR_PER_SECOND).min(RETRY_MAX);
        }
    }

    /// Takes one retry from the retry budget; `false` when it is spent.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        self.refill_retries(now);
        if self.retry_balance >= 1.0 {
            self.retry_balance -= 1.0;
            true
        } else {
            false
        }
    }

    /// The host accepted `units`.
    pub fn accepted(&mut self, units: f64, now: Instant) {
        self.book_accepted(units, now);
    }

    /// The host answered 429, asking for `retry_after` if it said. `unit` ∈ [0, 1) jitters the
    /// pause. Returns the pause that now applies.
    pub fn throttled(
        &mut self,
        retry_after: Option<Duration>,
        unit: f64,
        now: Instant,
    ) -> Duration {
        self.refill(now);
        let recent = self
            .last_429
            .is_some_and(|t| now.saturating_duration_since(t) < 2 * WINDOW);
        self.last_429 = Some(now);
        self.epoch += 1;
        let fresh = self
            .last_cut
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if fresh {
            self.streak = if recent { self.streak + 1 } else { 1 };
            self.last_cut = Some(now);
            let measured = self.accepted_in_window(now) / WINDOW.as_secs_f64();
            let w_max = match self.cut {
                Some(_) => measured.min(self.rate(now)),
                None => measured,
            }
            .max(MIN_RATE);
            let backoff = Duration::from_secs(1 << (self.streak - 1).min(4)).min(WINDOW);
            let backoff = if self.shape.jitter {
                backoff.mul_f64(0.5 + unit).min(WINDOW)
            } else {
                backoff
            };
            let pause = retry_after.unwrap_or(backoff);
            self.pause_until = self.pause_until.max(now + pause);
            self.tokens = 0.0;
            self.last = self.pause_until;
            // rate(from) = β·W_max by the curve's construction.
            self.cut = Some(Cut {
                w_max,
                from: self.pause_until,
            });
        } else if let Some(asked) = retry_after {
            self.pause_until = self.pause_until.max(now + asked);
            self.last = self.last.max(self.pause_until);
        }
        self.pause_until.saturating_duration_since(now)
    }

    fn accepted_in_window(&mut self, now: Instant) -> f64 {
        self.book_accepted(0.0, now);
        self.accepted.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            burst: 1000.0,
            refill: 100.0,
            jitter: false,
        }
    }

    fn wait(g: Grant) -> Duration {
        match g {
            Grant::After { wait, .. } | Grant::TooLate { wait } => wait,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill() {
        let now = Instant::now();
        let mut s = State::new(shape(), now);
        for _ in 0..1000 {
            assert_eq!(wait(s.reserve(1.0, now, None)), Duration::ZERO);
        }
        let w = wait(s.reserve(100.0, now, None));
        assert_eq!(w, Duration::from_secs(1));
        // Past the deadline: refused, nothing taken.
        let g = s.reserve(500.0, now, Some(now + Duration::from_secs(2)));
        assert_eq!(
            g,
            Grant::TooLate {
                wait: Duration::from_secs(6)
            }
        );
        assert_eq!(s.phase(now), Phase::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_cuts_and_regrows() {
        let now = Instant::now();
        let mut s = State::new(shape(), now);
        for _ in 0..400 {
            s.reserve(1.0, now, None);
            s.accepted(1.0, now);
        }
        let epoch = match s.reserve(1.0, now, None) {
            Grant::After { epoch, .. } => epoch,
            g => panic!("{g:?}"),
        };
        let pause = s.throttled(None, 0.5, now);
        assert_eq!(pause, Duration::from_secs(1));
        assert!(!s.current(epoch));
        assert_eq!(s.phase(now), Phase::Paused);
        // 400 accepted in the window: 40/s measured, cut to 28/s after the pause.
        let after = now + pause;
        assert!((s.rate(after) - 28.0).abs() < 1e-9);
        assert_eq!(s.phase(after), Phase::Throttled);
        // A second 429 within the same second is the same signal.
        assert_eq!(s.throttled(None, 0.5, now), pause);
        // A later one doubles the pause.
        let later = now + Duration::from_secs(2);
        assert_eq!(s.throttled(None, 0.5, later), Duration::from_secs(2));
        // Retry-After wins.
        let again = later + Duration::from_secs(3);
        assert_eq!(
            s.throttled(Some(Duration::from_secs(7)), 0.5, again),
            Duration::from_secs(7)
        );
        // Regrows to open after enough quiet time.
        let much_later = again + Duration::from_secs(120);
        s.refill(much_later);
        assert_eq!(s.phase(much_later), Phase::Open);
        assert_eq!(s.rate(much_later), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_budget_is_a_tenth_of_requests() {
        let now = Instant::now();
        let mut s = State::new(shape(), now);
        let mut granted = 0;
        for _ in 0..1000 {
            s.sent(now);
            if s.try_retry(now) {
                granted += 1;
            }
        }
        // Ten to start with, then one per ten requests.
        assert!((105..=111).contains(&granted), "{granted}");
    }

    #[test]
    fn share_scales_burst_and_refill() {
        let s = shape().within_share(Some(1000));
        assert!((s.burst + s.refill * 10.0 - 1000.0).abs() < 1e-9);
        assert_eq!(shape().within_share(None), shape());
        assert_eq!(shape().within_share(Some(4000)), shape());
    }
}
