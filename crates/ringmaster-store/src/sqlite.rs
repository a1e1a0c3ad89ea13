//! The embedded default: one SQLite file in WAL mode, migrations embedded.

use crate::{Ingested, Result, StatusReport};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, SqlitePool};
use std::str::FromStr;

// The SQL both backends share, compiled here with this backend's types
// (once per backend on purpose: see sql.rs).
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;
type Db = sqlx::Sqlite;
type Backend = SqliteStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per multi-row insert: five values each, under SQLite's limit of 32,766.
const CHUNK: usize = 4000;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) and migrates `sqlite:PATH` or `sqlite::memory:`.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a killed process; only power loss can
            // drop the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10))
            // Status tables are keyed by random ids: a big page cache keeps
            // inserts from paging the B-trees in and out.
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "memory");
        let memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // One connection for an in-memory database (each would be its own).
            .max_connections(if memory { 1 } else { 4 })
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

impl SqliteStore {
    /// Stores status reports (see [`crate::Reports::ingest_status`]).
    async fn ingest_rows(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested> {
        let mut tx = self.pool.begin().await?;
        // Reports land in a scratch table first; both status tables are then
        // fed from it sorted by key, so B-tree pages are visited in order
        // instead of at random, and each report is bound once.
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS incoming (device TEXT NOT NULL, policy TEXT NOT NULL, wave INTEGER, state TEXT NOT NULL, reported_at INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM incoming")
            .execute(&mut *tx)
            .await?;
        for chunk in reports.chunks(CHUNK) {
            let mut q = QueryBuilder::new(
                "INSERT INTO incoming (device, policy, wave, state, reported_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.device)
                    .push_bind(&r.policy)
                    .push_bind(r.wave.map(i64::from))
                    .push_bind(r.state.as_str())
                    .push_bind(r.reported_at.as_millisecond());
            });
            q.build().execute(&mut *tx).await?;
        }
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO status_history (rollout, device, policy, reported_at, state) SELECT $1, device, policy, reported_at, state FROM incoming ORDER BY device, policy, reported_at",
        )
        .bind(rollout)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Oldest first, so several reports of one device end on the newest;
        // an older report never overwrites a newer state.
        sqlx::query(
            "INSERT INTO status_latest (rollout, device, policy, wave, state, reported_at) SELECT $1, device, policy, wave, state, reported_at FROM incoming WHERE true ORDER BY device, policy, reported_at ON CONFLICT (rollout, device, policy) DO UPDATE SET state = excluded.state, reported_at = excluded.reported_at, wave = coalesce(excluded.wave, status_latest.wave) WHERE excluded.reported_at > status_latest.reported_at",
        )
        .bind(rollout)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM incoming")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ingested {
            inserted,
            duplicates: reports.len() as u64 - inserted,
        })
    }
}
