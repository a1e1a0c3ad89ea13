//! PostgreSQL, for several `ringmaster serve` instances on one database.
//! Same tables and behaviour as the SQLite store; migrations run on open
//! under PostgreSQL's advisory lock, so instances starting together are safe.

use crate::values::ms;
use crate::{DeviceState, Ingested, Result, StatusReport};
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

/// A rollout's latest states, whole (the watch's first check): device,
/// policy, state, reported at, and whether it was Succeeded before.
async fn latest_all(pool: &PgPool, rollout: &str) -> Result<Vec<crate::LatestRow>> {
    // The planner picks a sequential scan itself.
    Ok(sqlx::query_as(
        "SELECT device, policy, state, reported_at,
           CAST(CASE WHEN succeeded_at < reported_at THEN 1 ELSE 0 END AS BIGINT), seq
         FROM status_latest WHERE rollout = $1",
    )
    .bind(rollout)
    .fetch_all(pool)
    .await?)
}

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
    /// Stores status reports (see [`crate::Reports::ingest_status`]): the
    /// reports travel by `COPY` into a scratch table (no parameters to
    /// bind, no arrays to unnest), and one statement feeds both status
    /// tables from there.
    async fn ingest_rows(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS incoming (n bigint NOT NULL, d text NOT NULL, p text NOT NULL,
               w bigint, s text NOT NULL, a bigint NOT NULL) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *tx)
        .await?;
        let mut copy = tx
            .copy_in_raw("COPY incoming (n, d, p, w, s, a) FROM STDIN WITH (FORMAT text)")
            .await?;
        let mut buf = String::with_capacity(1 << 20);
        for (n, r) in reports.iter().enumerate() {
            use std::fmt::Write;
            let _ = write!(buf, "{n}\t");
            copy_text(&mut buf, &r.device);
            buf.push('\t');
            copy_text(&mut buf, &r.policy);
            match r.wave {
                Some(w) => {
                    let _ = write!(buf, "\t{w}\t");
                }
                None => buf.push_str("\t\\N\t"),
            }
            let _ = writeln!(buf, "{}\t{}", r.state.as_str(), ms(r.reported_at));
            if buf.len() >= 1 << 20 {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
        }
        copy.send(buf.as_bytes()).await?;
        copy.finish().await?;
        // Sorts of a large call in memory rather than on disk; no JIT,
        // whose compiling (half a second at a million rows) the
        // statement's plain row work never earns back.
        sqlx::query("SET LOCAL work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        // One ingest of a rollout at a time (across servers), so change
        // numbers commit in the order they are given: a watcher that has
        // read number n never sees a lower one appear later.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('ringmaster status ' || $1, 0))",
        )
        .bind(rollout)
        .execute(&mut *tx)
        .await?;
        let seq = sql::next_change(&mut tx, rollout).await?;
        // One statement: the history keeps the reports it did not have
        // (a report sent twice in the call once), and the latest states
        // are fed from exactly those, one row per device and policy:
        // the newest, with the earliest Succeeded. An older report
        // never overwrites a newer state.
        let (kept, _): (i64, i64) = sqlx::query_as(
                "WITH batch AS (
                   SELECT DISTINCT ON (d, p, a) d, p, w, s, a FROM incoming
                   ORDER BY d, p, a, n),
                 kept AS (
                   INSERT INTO status_history (rollout, device, policy, reported_at, state)
                   SELECT $1, d, p, a, s FROM batch
                   ON CONFLICT DO NOTHING
                   RETURNING device, policy, reported_at, state),
                 newest AS (
                   SELECT DISTINCT ON (k.device, k.policy) k.device, k.policy, b.w, k.state, k.reported_at,
                     min(k.reported_at) FILTER (WHERE k.state = $2)
                       OVER (PARTITION BY k.device, k.policy) AS ok_at
                   FROM kept k JOIN batch b ON b.d = k.device AND b.p = k.policy AND b.a = k.reported_at
                   ORDER BY k.device, k.policy, k.reported_at DESC),
                 moved AS (
                   INSERT INTO status_latest (rollout, device, policy, wave, state, reported_at, succeeded_at, seq)
                   SELECT $1, device, policy, w, state, reported_at, ok_at, $3 FROM newest
                   ON CONFLICT (rollout, device, policy) DO UPDATE SET
                     seq = excluded.seq,
                     state = CASE WHEN excluded.reported_at > status_latest.reported_at
                       THEN excluded.state ELSE status_latest.state END,
                     wave = CASE WHEN excluded.reported_at > status_latest.reported_at
                       THEN coalesce(excluded.wave, status_latest.wave) ELSE status_latest.wave END,
                     reported_at = greatest(excluded.reported_at, status_latest.reported_at),
                     succeeded_at = least(excluded.succeeded_at, status_latest.succeeded_at)
                   WHERE excluded.reported_at > status_latest.reported_at
                     OR excluded.succeeded_at < coalesce(status_latest.succeeded_at, excluded.succeeded_at + 1)
                   RETURNING 1)
                 SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM moved)",
            )
            .bind(rollout)
            .bind(DeviceState::Succeeded.as_str())
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
        let inserted = kept as u64;
        tx.commit().await?;
        Ok(Ingested {
            inserted,
            duplicates: reports.len() as u64 - inserted,
        })
    }
}

/// `text` as a field of `COPY … (FORMAT text)`: backslash, tab and line
/// breaks escaped, everything else as is.
fn copy_text(buf: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}
