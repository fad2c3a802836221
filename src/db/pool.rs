//! The connection pool of the process ([`Database`]) and [`Session`], which
//! lets the checks of one evaluation share one pooled connection.
//!
//! Two facts shape this module:
//! - Transaction-mode poolers (Supavisor on 6543, PgBouncer) reject named
//!   prepared statements, so every statement here is an unnamed one
//!   (`query_typed`), sent with its execution in one write.
//! - A Lambda container is frozen between invocations; its pooled connection
//!   may have died meanwhile. A query that fails because the connection is
//!   closed is retried once on a fresh connection, so a stale connection is
//!   never reported as a database outage.
//!
//! When the connection came from `DATABASE_SECRET_ID` and the database
//! refuses the login, the secret is read again (at most once a minute, in a
//! task of its own) and the pool rebuilt from it: a rotated password is
//! picked up without a new container. The next session waits for that read
//! (within its evaluation's deadline) before it connects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::{BoxFuture, Shared};
use futures_util::FutureExt;
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;
use tokio_postgres::{NoTls, Row};

use super::config::{DbConfig, DEFAULT_CONNECT_TIMEOUT};
use super::error::{connection_lost, pool_failure, postgres_failure};
use super::{SslMode, SslNegotiation, Statement};
use crate::failure::{self, Failure};
use crate::outcome::Reason;

/// Re-reading the secret after a refused login happens at most this often.
pub const SECRET_REREAD_INTERVAL: Duration = Duration::from_secs(60);

/// The process's connection pool (at most `DATABASE_POOL_MAX` connections,
/// kept across invocations).
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced whole when a rotated secret brings new credentials.
    pool: RwLock<(Pool, DbConfig)>,
    reread: Mutex<Reread>,
}

#[derive(Default)]
struct Reread {
    last: Option<Instant>,
    running: Option<Shared<BoxFuture<'static, ()>>>,
}

fn build_pool(config: &DbConfig) -> Pool {
    let manager_config = ManagerConfig {
        // `is_closed` only: a round trip on every checkout would double
        // the cost of an evaluation; dead connections are caught by the
        // retry in `Session::query` instead.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match config.ssl_mode {
        SslMode::Disable => Manager::from_config(config.pg.clone(), NoTls, manager_config),
        mode => Manager::from_config(
            config.pg.clone(),
            crate::tls::postgres_connector(mode, config.negotiation(), config.roots.clone()),
            manager_config,
        ),
    };
    Pool::builder(manager)
        .max_size(config.pool_max)
        .runtime(Runtime::Tokio1)
        .build()
        // Infallible: `build` fails only when a timeout is set without a
        // runtime, and the runtime is set just above.
        .expect("pool with a runtime")
}

impl Database {
    /// Builds the pool without connecting.
    pub fn new(config: &DbConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool: RwLock::new((build_pool(config), config.clone())),
                reread: Mutex::default(),
            }),
        }
    }

    fn pool(&self) -> Pool {
        self.inner.pool.read().0.clone()
    }

    /// Opens the first connection in the background, so that start-up does
    /// not wait for it and the first request usually finds it ready.
    pub fn warm_up(&self) {
        let pool = self.pool();
        tokio::spawn(async move {
            match tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, pool.get()).await {
                Ok(Ok(_returned_to_pool)) => {
                    tracing::debug!("database connection opened ahead of use")
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %pool_failure(e), "early database connection failed")
                }
                Err(_) => tracing::debug!("early database connection timed out"),
            }
        });
    }

    /// How connections negotiate TLS (`sslnegotiation`), as configured now.
    pub fn negotiation(&self) -> SslNegotiation {
        self.inner.pool.read().1.negotiation()
    }

    /// One connection for a CLI command (heartbeat, migrate).
    pub async fn connection(&self) -> Result<Object, Failure> {
        self.pool().get().await.map_err(pool_failure)
    }

    /// Connections this process holds now (a test seam).
    #[cfg(feature = "test-seams")]
    pub fn open_connections(&self) -> usize {
        self.pool().status().size
    }

    /// Of those, the ones in the pool, not lent to a session (a test seam).
    #[cfg(feature = "test-seams")]
    pub fn idle_connections(&self) -> usize {
        self.pool().status().available
    }

    /// A session for one evaluation; it connects on its first query.
    pub fn session(&self) -> Session<'_> {
        Session {
            database: self,
            slot: tokio::sync::Mutex::new(Slot::default()),
        }
    }

    /// The database refused the login: when the connection came from a
    /// secret, read it again (once a minute at most) in a task of its own.
    fn login_refused(&self) {
        let config = {
            let pool = self.inner.pool.read();
            if !pool.1.from_secret() {
                return;
            }
            pool.1.clone()
        };
        let mut reread = self.inner.reread.lock();
        let due = reread
            .last
            .is_none_or(|last| last.elapsed() >= SECRET_REREAD_INTERVAL);
        if !due || reread.running.is_some() {
            return;
        }
        reread.last = Some(Instant::now());
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            match config.reread().await {
                Ok(fresh) => {
                    let pool = build_pool(&fresh);
                    *inner.pool.write() = (pool, fresh);
                    tracing::info!("database login refused: secret read again, pool rebuilt");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "database login refused; reading the secret again failed")
                }
            }
            inner.reread.lock().running = None;
        });
        reread.running = Some(task.map(drop).boxed().shared());
    }

    /// Waits for a secret re-read in progress, if any.
    async fn reread_settled(&self) {
        let running = self.inner.reread.lock().running.clone();
        if let Some(running) = running {
            running.await;
        }
    }
}

/// One evaluation's use of the database: the checks running concurrently in
/// it share one pooled connection, so their queries are pipelined on it and
/// an evaluation costs one round trip, not one per check.
pub struct Session<'a> {
    database: &'a Database,
    slot: tokio::sync::Mutex<Slot>,
}

impl Session<'_> {
    /// The database this session's connection comes from.
    pub fn database(&self) -> &Database {
        self.database
    }
}

#[derive(Default)]
struct Slot {
    generation: u64,
    lease: Option<Arc<Lease>>,
}

/// A pooled connection in use by a session.
struct Lease {
    object: Option<Object>,
    /// Set when a query was abandoned mid-flight (deadline: the connection
    /// may still be busy answering it) or the connection was found dead: it
    /// must not go back to the pool.
    abandoned: AtomicBool,
}

impl Lease {
    fn client(&self) -> &tokio_postgres::Client {
        // Infallible: `object` is only taken in `drop`.
        self.object
            .as_ref()
            .expect("lease holds its connection until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.abandoned.load(Ordering::Relaxed) {
            if let Some(object) = self.object.take() {
                // Detach from the pool; dropping the client closes it.
                drop(Object::take(object));
            }
        }
    }
}

/// Marks its lease abandoned unless the query it guards completes.
struct InFlight<'a> {
    lease: &'a Lease,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.lease.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl Session<'_> {
    /// The session's connection; a new one when `stale` names the generation
    /// the caller saw fail, or when the current one is closed.
    async fn lease(&self, stale: Option<u64>) -> Result<(u64, Arc<Lease>), Failure> {
        let mut slot = self.slot.lock().await;
        if let Some(lease) = &slot.lease {
            if stale != Some(slot.generation) && !lease.client().is_closed() {
                return Ok((slot.generation, lease.clone()));
            }
        }
        slot.lease = None;
        self.database.reread_settled().await;
        let object = match self.database.pool().get().await {
            Ok(object) => object,
            Err(e) => {
                let failure = pool_failure(e);
                if failure.reason == Reason::Auth {
                    self.database.login_refused();
                }
                return Err(failure);
            }
        };
        slot.generation += 1;
        let lease = Arc::new(Lease {
            object: Some(object),
            abandoned: AtomicBool::new(false),
        });
        slot.lease = Some(lease.clone());
        Ok((slot.generation, lease))
    }

    /// Runs one statement as an unnamed statement with its typed
    /// parameters (`query_typed`: Parse, Bind, Execute and Sync in one
    /// write, no prepared statement left behind, so transaction poolers
    /// take it), answering typed rows; statements of concurrent checks are
    /// pipelined on the one connection. Retried once on a fresh connection
    /// if the connection turned out dead.
    pub async fn query(&self, statement: &Statement) -> Result<Vec<Row>, Failure> {
        let params = statement.params();
        let mut stale = None;
        loop {
            let (generation, lease) = self.lease(stale).await?;
            let mut guard = InFlight {
                lease: &lease,
                done: false,
            };
            let result = lease.client().query_typed(statement.sql(), &params).await;
            guard.done = true;
            drop(guard);
            match result {
                Ok(rows) => return Ok(rows),
                Err(e)
                    if stale.is_none() && (connection_lost(&e) || lease.client().is_closed()) =>
                {
                    tracing::debug!(error = %failure::chain(&e), "pooled connection was dead; retrying on a new one");
                    // Never back into the pool: until its connection task has
                    // seen the socket close, the pool's is_closed() check
                    // would hand the dead connection to the retry again.
                    lease.abandoned.store(true, Ordering::Relaxed);
                    stale = Some(generation);
                }
                Err(e) => return Err(postgres_failure(&e)),
            }
        }
    }
}
