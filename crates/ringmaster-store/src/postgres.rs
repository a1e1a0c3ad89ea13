//! PostgreSQL, for several `ringmaster serve` instances on one database.
//! Same tables and behaviour as the SQLite store; migrations run on open
//! under PostgreSQL's advisory lock, so instances starting together are safe.

use crate::values::ms;
use crate::{Ingested, Result, StatusReport};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

// The SQL both backends share, compiled here with this backend's types
// (once per backend on purpose: see sql.rs).
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;
type Db = sqlx::Postgres;
type Backend = PgStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows per multi-row insert: eight values each, under PostgreSQL's 65,535.
const CHUNK: usize = 8000;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `postgres://…` and migrates.
    pub async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }
}

impl PgStore {
    /// Stores status reports (see [`crate::Reports::ingest_status`]).
    async fn ingest_rows(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        // A batch travels as five arrays; UNNEST turns them into rows
        // server-side, one statement per table whatever the batch size.
        for chunk in reports.chunks(50_000) {
            let device: Vec<&str> = chunk.iter().map(|r| r.device.as_str()).collect();
            let policy: Vec<&str> = chunk.iter().map(|r| r.policy.as_str()).collect();
            let wave: Vec<Option<i64>> = chunk.iter().map(|r| r.wave.map(i64::from)).collect();
            let state: Vec<&str> = chunk.iter().map(|r| r.state.as_str()).collect();
            let at: Vec<i64> = chunk.iter().map(|r| ms(r.reported_at)).collect();
            inserted += sqlx::query(
                "INSERT INTO status_history (rollout, device, policy, reported_at, state)
                 SELECT $1, d, p, a, s FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[]) AS t(d, p, a, s)
                 ORDER BY d, p, a
                 ON CONFLICT DO NOTHING",
            )
            .bind(rollout)
            .bind(&device)
            .bind(&policy)
            .bind(&at)
            .bind(&state)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // One row per device and policy (the newest of the batch); an
            // older report never overwrites a newer state.
            sqlx::query(
                "INSERT INTO status_latest (rollout, device, policy, wave, state, reported_at)
                 SELECT DISTINCT ON (d, p) $1, d, p, w, s, a
                 FROM UNNEST($2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[]) AS t(d, p, w, s, a)
                 ORDER BY d, p, a DESC
                 ON CONFLICT (rollout, device, policy) DO UPDATE SET state = excluded.state,
                   reported_at = excluded.reported_at, wave = coalesce(excluded.wave, status_latest.wave)
                 WHERE excluded.reported_at > status_latest.reported_at",
            )
            .bind(rollout)
            .bind(&device)
            .bind(&policy)
            .bind(&wave)
            .bind(&state)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ingested {
            inserted,
            duplicates: reports.len() as u64 - inserted,
        })
    }
}
