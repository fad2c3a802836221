//! Waiting for a condition, written once: every test that polls polls
//! here, with a deadline, and says what it last saw when time runs out.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often a condition is asked again: often enough that a wait ends
/// soon after its condition holds, seldom enough that the asking (often a
/// whole evaluation) does not load a busy machine.
const EVERY: Duration = Duration::from_millis(50);

/// Asks `probe` until it gives `Ok` (returned), or `within` has passed (its
/// last `Err`): for a wait that may end either way.
pub async fn until<T, E>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(done) => return Ok(done),
            Err(seen) if started.elapsed() >= within => return Err(seen),
            Err(_) => tokio::time::sleep(EVERY).await,
        }
    }
}

/// As [`until`], failing the test with `what` and the last thing seen.
pub async fn eventually<T, E: Debug>(
    what: &str,
    within: Duration,
    probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    until(within, probe)
        .await
        .unwrap_or_else(|seen| panic!("{what}: not within {within:?}; last seen: {seen:?}"))
}

/// [`until`] outside the runtime (a server process starting or stopping).
pub fn until_blocking<T, E>(
    within: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(done) => return Ok(done),
            Err(seen) if started.elapsed() >= within => return Err(seen),
            Err(_) => std::thread::sleep(EVERY),
        }
    }
}

/// [`eventually`] outside the runtime.
pub fn eventually_blocking<T, E: Debug>(
    what: &str,
    within: Duration,
    probe: impl FnMut() -> Result<T, E>,
) -> T {
    until_blocking(within, probe)
        .unwrap_or_else(|seen| panic!("{what}: not within {within:?}; last seen: {seen:?}"))
}
