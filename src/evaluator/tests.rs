//! The evaluator under tokio's paused clock: deadlines, sharing, caching
//! and isolation proven exactly, in virtual time.

//! The evaluator alone, with fake checks under tokio's paused clock:
//! deadlines, sharing and caching are exact in virtual time, whatever
//! the machine is doing.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::component::Check;
use crate::failure::Failure;
use crate::outcome::Status;

/// A check that takes `takes` (virtual time), counts its runs, and
/// panics when asked to.
struct Fake {
    takes: Duration,
    runs: Arc<AtomicUsize>,
    panics: bool,
}

impl Check for Fake {
    async fn observe(&self, _context: &CheckContext<'_>) -> Result<CheckOutcome, Failure> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.takes).await;
        assert!(!self.panics, "a bug inside a check");
        Ok(CheckOutcome::from(Verdict::healthy()))
    }
}

struct Counting(Arc<AtomicUsize>);

impl EvaluationListener for Counting {
    fn evaluated(&self, _report: &Arc<Report>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Setup {
    evaluator: Arc<Evaluator>,
    runs: Arc<AtomicUsize>,
    heard: Arc<AtomicUsize>,
}

const DEADLINE: Duration = Duration::from_millis(150);

/// One fake check per `(name, takes, panics)`, all counted together.
fn setup(checks: &[(&'static str, u64, bool)], cache_ttl_ms: u64) -> Setup {
    let runs = Arc::new(AtomicUsize::new(0));
    let heard = Arc::new(AtomicUsize::new(0));
    let checks = checks
        .iter()
        .map(|&(name, takes_ms, panics)| ComponentCheck {
            enabled: Enabled::for_test(name, true),
            check: Box::new(Fake {
                takes: Duration::from_millis(takes_ms),
                runs: runs.clone(),
                panics,
            }),
        })
        .collect();
    let evaluator = Evaluator::new(
        CheckSet {
            checks,
            database: None,
        },
        DEADLINE,
        Duration::from_millis(cache_ttl_ms),
        vec![Box::new(Counting(heard.clone()))],
    );
    Setup {
        evaluator: Arc::new(evaluator),
        runs,
        heard,
    }
}

fn statuses(report: &Report) -> Vec<(&'static str, Status, Option<Reason>)> {
    report
        .components
        .iter()
        .map(|c| (c.name(), c.outcome.verdict.status, c.outcome.verdict.reason))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_check_past_the_deadline_is_a_timeout_and_the_answer_leaves_at_the_deadline() {
    let s = setup(&[("fast", 1, false), ("hung", 3_600_000, false)], 0);
    let started = Instant::now();
    let report = s.evaluator.report().await;
    assert_eq!(
        started.elapsed(),
        DEADLINE,
        "answered exactly at the deadline"
    );
    assert_eq!(
        statuses(&report),
        [
            ("fast", Status::Healthy, None),
            ("hung", Status::Unhealthy, Some(Reason::Timeout)),
        ]
    );
    assert_eq!(
        report.get("fast").unwrap().latency,
        Duration::from_millis(1)
    );
    assert_eq!(report.status, Status::Unhealthy);
}

#[tokio::test(start_paused = true)]
async fn without_a_cache_concurrent_requests_share_the_evaluation_in_flight() {
    let s = setup(&[("slow", 100, false)], 0);
    let requests = (0..100).map(|_| {
        let evaluator = s.evaluator.clone();
        tokio::spawn(async move { evaluator.report().await })
    });
    let reports: Vec<Arc<Report>> = join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        s.runs.load(Ordering::SeqCst),
        1,
        "one evaluation for 100 requests"
    );
    assert!(reports.iter().all(|r| Arc::ptr_eq(r, &reports[0])));
    assert_eq!(s.heard.load(Ordering::SeqCst), 1);
    // A finished result is not served again with the cache off.
    s.evaluator.report().await;
    assert_eq!(s.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_finished_result_is_reused_for_the_cache_ttl_only() {
    let s = setup(&[("quick", 1, false)], 1_000);
    let first = s.evaluator.report().await;
    tokio::time::advance(Duration::from_millis(998)).await;
    assert!(Arc::ptr_eq(&first, &s.evaluator.report().await));
    assert_eq!(s.runs.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_millis(2)).await;
    let second = s.evaluator.report().await;
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(s.runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        s.heard.load(Ordering::SeqCst),
        2,
        "listeners hear evaluations, not cached answers"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_that_goes_away_does_not_cancel_the_evaluation_for_the_others() {
    let s = setup(&[("slow", 100, false)], 0);
    let leaver = {
        let evaluator = s.evaluator.clone();
        tokio::spawn(async move { evaluator.report().await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let stayer = {
        let evaluator = s.evaluator.clone();
        tokio::spawn(async move { evaluator.report().await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    leaver.abort();
    let started = Instant::now();
    let report = stayer.await.unwrap();
    assert_eq!(report.status, Status::Healthy);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(80),
        "the evaluation it joined went on"
    );
    assert_eq!(s.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_costs_its_component_only_and_evaluations_go_on() {
    let s = setup(&[("buggy", 1, true), ("fine", 1, false)], 0);
    for _ in 0..3 {
        let report = s.evaluator.report().await;
        assert_eq!(
            statuses(&report),
            [
                ("buggy", Status::Unhealthy, Some(Reason::InternalError)),
                ("fine", Status::Healthy, None),
            ]
        );
    }
    assert_eq!(s.heard.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_check_command_evaluates_afresh_every_time() {
    let s = setup(&[("quick", 1, false)], 60_000);
    s.evaluator.evaluate().await;
    s.evaluator.evaluate().await;
    assert_eq!(s.runs.load(Ordering::SeqCst), 2);
}

/// A listener with a bug.
struct PanickingListener;

impl EvaluationListener for PanickingListener {
    fn evaluated(&self, _report: &Arc<Report>) {
        panic!("a bug inside a listener");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_listener_costs_its_own_output_not_the_answer_or_the_cache() {
    let heard = Arc::new(AtomicUsize::new(0));
    let checks = vec![ComponentCheck {
        enabled: Enabled::for_test("fast", true),
        check: Box::new(Fake {
            takes: Duration::from_millis(1),
            runs: Arc::new(AtomicUsize::new(0)),
            panics: false,
        }),
    }];
    let listeners: Vec<Box<dyn EvaluationListener>> = vec![
        Box::new(PanickingListener),
        Box::new(Counting(heard.clone())),
    ];
    let evaluator = Evaluator::new(
        CheckSet {
            checks,
            database: None,
        },
        DEADLINE,
        Duration::from_secs(1),
        listeners,
    );
    let report = evaluator.report().await;
    assert_eq!(report.status, Status::Healthy);
    assert_eq!(
        heard.load(Ordering::SeqCst),
        1,
        "the next listener still heard it"
    );
    let cached = evaluator.report().await;
    assert!(Arc::ptr_eq(&report, &cached), "the cache kept it");
}
