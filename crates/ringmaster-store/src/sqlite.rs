//! The embedded default: one SQLite file in WAL mode, migrations embedded.

use crate::{DeviceState, Ingested, Result, StatusReport, StoreError};
use rayon::slice::ParallelSliceMut;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};
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

/// Latest states per page of [`latest_all`].
const LATEST_PAGE: i64 = 100_000;

/// A rollout's latest states, whole (the watch's first check): device,
/// policy, state, reported at, and whether it was Succeeded before. The
/// driver hands rows over one by one between threads, which at a million
/// rows costs seconds; so each page of rows comes as one JSON array built
/// by SQLite, all pages in one read transaction (one snapshot). The table
/// is scanned in rowid order (`NOT INDEXED`): through the `rollout` index
/// it would be a lookup per row.
async fn latest_all(pool: &SqlitePool, rollout: &str) -> Result<Vec<crate::LatestRow>> {
    latest_paged(pool, rollout, LATEST_PAGE).await
}

async fn latest_paged(
    pool: &SqlitePool,
    rollout: &str,
    page_rows: i64,
) -> Result<Vec<crate::LatestRow>> {
    let mut tx = pool.begin().await?;
    let mut rows = Vec::new();
    let mut after = i64::MIN;
    // Each page is parsed on a thread of its own while SQLite builds the
    // next one; pages are added in order.
    let mut parsing: Option<tokio::task::JoinHandle<Result<Vec<crate::LatestRow>>>> = None;
    let take = |job: tokio::task::JoinHandle<_>| async move {
        match job.await {
            Ok(page) => page,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    };
    loop {
        let (page, last): (Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT json_group_array(json_array(device, policy, state, reported_at,
                      CASE WHEN succeeded_at < reported_at THEN 1 ELSE 0 END, seq)), max(id)
             FROM (SELECT rowid AS id, device, policy, state, reported_at, succeeded_at, seq
                   FROM status_latest NOT INDEXED WHERE rowid > $2 AND rollout = $1
                   ORDER BY rowid LIMIT $3)",
        )
        .bind(rollout)
        .bind(after)
        .bind(page_rows)
        .fetch_one(&mut *tx)
        .await?;
        let Some(last) = last else { break };
        let place = format!("status_latest of {rollout}");
        let job = tokio::task::spawn_blocking(move || {
            serde_json::from_str::<Vec<crate::LatestRow>>(page.as_deref().unwrap_or("[]"))
                .map_err(|e| StoreError::Corrupt(format!("{place}: {e}")))
        });
        if let Some(before) = parsing.replace(job) {
            rows.extend(take(before).await?);
        }
        after = last;
    }
    if let Some(before) = parsing {
        rows.extend(take(before).await?);
    }
    Ok(rows)
}

/// Reports per pass of a large ingest through the scratch table.
const BATCH: usize = 50_000;

/// A write transaction of a large ingest takes further passes while it has
/// held SQLite's one write lock for less than this, up to [`MOST_PER_COMMIT`]
/// reports: few commits (each rewrites the status B-trees' dirty pages into
/// the WAL) on a fast machine, and a lock held well under other writers'
/// ten-second busy timeout on a slow one.
const HOLD: std::time::Duration = std::time::Duration::from_secs(3);
const MOST_PER_COMMIT: usize = 500_000;

pub struct SqliteStore {
    pool: SqlitePool,
    /// Bulk status ingest runs on one connection of its own: a connection
    /// keeps its page cache only while no other connection writes, so
    /// batches spread over the pool would each start cold and read the
    /// status B-trees from the file again.
    ingest: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) and migrates `sqlite:PATH` or
    /// `sqlite::memory:`. `?synchronous=full` in the URL makes every commit
    /// durable through a power cut; the default (`normal`) may lose the
    /// last commits then.
    pub async fn open(url: &str) -> Result<Self> {
        let (url, sync) = synchronous(url)?;
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with NORMAL survives a killed process; only power loss can
            // drop the last commits. FULL syncs the WAL at every commit.
            .synchronous(sync)
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
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let ingest = if memory {
            pool.clone()
        } else {
            // Passes over 50,000 reports take seconds by design: not worth
            // a warning on the operator's terminal.
            let quiet = opts
                .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1));
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(quiet)
                .await?
        };
        Ok(SqliteStore { pool, ingest })
    }
}

/// The URL without its `synchronous=` parameter (SQLite's driver does not
/// know it), and the mode it names: `normal` when absent.
fn synchronous(url: &str) -> Result<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), SqliteSynchronous::Normal));
    };
    let mut sync = SqliteSynchronous::Normal;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("synchronous", v)) => {
                sync = match v.to_ascii_lowercase().as_str() {
                    "normal" => SqliteSynchronous::Normal,
                    "full" => SqliteSynchronous::Full,
                    "extra" => SqliteSynchronous::Extra,
                    _ => {
                        return Err(StoreError::Unsupported(format!(
                            "{base}?…synchronous={v}: synchronous is normal, full or extra"
                        )));
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, sync))
}

impl SqliteStore {
    /// Stores status reports (see [`crate::Reports::ingest_status`]) in
    /// write transactions bounded by [`HOLD`]: a long ingest lets other
    /// writers (a running `serve`) in between commits instead of holding
    /// SQLite's one write lock past their busy timeout. A commit is whole or
    /// absent, and sending reports again only counts duplicates.
    async fn ingest_rows(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested> {
        let mut got = Ingested::default();
        // In key order, so each batch writes one stretch of the history and
        // the latest states instead of pages all over both B-trees. Stable:
        // of one report sent twice with different states, the first counts.
        let mut sorted: Vec<&StatusReport> = reports.iter().collect();
        sorted.par_sort_by(|a, b| {
            (a.device.as_str(), a.policy.as_str(), a.reported_at).cmp(&(
                b.device.as_str(),
                b.policy.as_str(),
                b.reported_at,
            ))
        });
        let mut rest = &sorted[..];
        while !rest.is_empty() {
            // The write lock up front: a pass reads the history before it
            // writes, and a read transaction that later wants to write fails
            // at once (no busy wait) when another writer came in between.
            let mut tx = self.ingest.begin_with("BEGIN IMMEDIATE").await?;
            let held = std::time::Instant::now();
            let mut in_tx = 0;
            loop {
                let (batch, tail) = rest.split_at(rest.len().min(BATCH));
                let inserted = Self::ingest_batch(&mut tx, rollout, batch).await?;
                got.inserted += inserted;
                got.duplicates += batch.len() as u64 - inserted;
                in_tx += batch.len();
                rest = tail;
                if rest.is_empty() || held.elapsed() >= HOLD || in_tx >= MOST_PER_COMMIT {
                    break;
                }
            }
            tx.commit().await?;
        }
        Ok(got)
    }

    async fn ingest_batch(
        tx: &mut sqlx::SqliteConnection,
        rollout: &str,
        reports: &[&StatusReport],
    ) -> Result<u64> {
        // Reports land in a scratch table keyed like the history (a report
        // sent twice in one batch is kept once), lose those the history
        // already has, and feed both status tables from there in key order:
        // B-tree pages are visited in order, and the latest states see
        // exactly the reports the history keeps (a moment sent again with
        // another state must not count as an earlier Succeeded).
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS incoming (device TEXT NOT NULL, policy TEXT NOT NULL, reported_at INTEGER NOT NULL, wave INTEGER, state TEXT NOT NULL, PRIMARY KEY (device, policy, reported_at)) WITHOUT ROWID",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM incoming")
            .execute(&mut *tx)
            .await?;
        // The batch travels as one JSON text that SQLite takes apart itself:
        // binding five parameters per report costs more than the parsing.
        let rows: Vec<(&str, &str, i64, Option<u32>, &str)> = (reports.iter())
            .map(|r| {
                (
                    r.device.as_str(),
                    r.policy.as_str(),
                    r.reported_at.as_millisecond(),
                    r.wave,
                    r.state.as_str(),
                )
            })
            .collect();
        let text = serde_json::to_string(&rows)
            .map_err(|e| StoreError::Corrupt(format!("status reports as JSON: {e}")))?;
        sqlx::query(
            "INSERT OR IGNORE INTO incoming (device, policy, reported_at, wave, state)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each($1)",
        )
        .bind(text)
        .execute(&mut *tx)
        .await?;
        // The batch is in key order: when the history holds nothing between
        // its first and last report (a rollout's first reports, new
        // devices), none of them can be stored already, and one range
        // lookup saves one per report.
        if let (Some(first), Some(last)) = (reports.first(), reports.last()) {
            let stored: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM status_history WHERE rollout = $1
                   AND (device, policy, reported_at) >= ($2, $3, $4)
                   AND (device, policy, reported_at) <= ($5, $6, $7))",
            )
            .bind(rollout)
            .bind(first.device.as_str())
            .bind(first.policy.as_str())
            .bind(first.reported_at.as_millisecond())
            .bind(last.device.as_str())
            .bind(last.policy.as_str())
            .bind(last.reported_at.as_millisecond())
            .fetch_one(&mut *tx)
            .await?;
            if stored {
                sqlx::query(
                    "DELETE FROM incoming WHERE EXISTS (SELECT 1 FROM status_history h WHERE h.rollout = $1 AND h.device = incoming.device AND h.policy = incoming.policy AND h.reported_at = incoming.reported_at)",
                )
                .bind(rollout)
                .execute(&mut *tx)
                .await?;
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO status_history (rollout, device, policy, reported_at, state) SELECT $1, device, policy, reported_at, state FROM incoming ORDER BY device, policy, reported_at",
        )
        .bind(rollout)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The batch's change number, one past the rollout's last: the
        // watch reads the states changed after the number it saw last.
        let seq = sql::next_change(&mut *tx, rollout).await?;
        // Oldest first, so several reports of one device end on the newest:
        // an older report never overwrites a newer state, but an older
        // Succeeded still counts as the first one.
        sqlx::query(
            "INSERT INTO status_latest (rollout, device, policy, wave, state, reported_at, succeeded_at, seq)
             SELECT $1, device, policy, wave, state, reported_at, CASE WHEN state = $2 THEN reported_at END, $3
             FROM incoming WHERE true ORDER BY device, policy, reported_at
             ON CONFLICT (rollout, device, policy) DO UPDATE SET
               seq = excluded.seq,
               state = CASE WHEN excluded.reported_at > status_latest.reported_at THEN excluded.state ELSE status_latest.state END,
               wave = CASE WHEN excluded.reported_at > status_latest.reported_at THEN coalesce(excluded.wave, status_latest.wave) ELSE status_latest.wave END,
               reported_at = max(excluded.reported_at, status_latest.reported_at),
               succeeded_at = min(coalesce(excluded.succeeded_at, status_latest.succeeded_at), coalesce(status_latest.succeeded_at, excluded.succeeded_at))
             WHERE excluded.reported_at > status_latest.reported_at
               OR excluded.succeeded_at < coalesce(status_latest.succeeded_at, excluded.succeeded_at + 1)",
        )
        .bind(rollout)
        .bind(DeviceState::Succeeded.as_str())
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM incoming")
            .execute(&mut *tx)
            .await?;
        Ok(inserted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn mode(url: &str) -> i64 {
        let store = SqliteStore::open(url).await.unwrap();
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn latest_states_read_in_pages_are_all_there_once() {
        use crate::Reports;
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let t0: jiff::Timestamp = "2027-01-18T08:00:00Z".parse().unwrap();
        // Two rollouts interleaved, so pages skip the other's rows.
        for i in 0..23i64 {
            for rollout in ["a", "b"] {
                let r = StatusReport {
                    device: format!("d\"{i}\t"),
                    policy: "p".into(),
                    state: if i % 3 == 0 {
                        DeviceState::Error
                    } else {
                        DeviceState::Succeeded
                    },
                    reported_at: t0 + jiff::SignedDuration::from_mins(i),
                    wave: Some(1),
                };
                store.ingest_status(rollout, &[r]).await.unwrap();
            }
        }
        let whole = latest_paged(&store.pool, "a", 1000).await.unwrap();
        assert_eq!(whole.len(), 23);
        for page in [1, 4, 22, 23] {
            assert_eq!(
                latest_paged(&store.pool, "a", page).await.unwrap(),
                whole,
                "{page}"
            );
        }
        assert!(whole.iter().any(|r| r.0 == "d\"7\t" && r.2 == "succeeded"));
        assert!(
            latest_paged(&store.pool, "none", 4)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_url_sets_how_commits_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let url = format!("sqlite:{}", path.display());
        // SQLite's numbers: 1 normal, 2 full, 3 extra.
        assert_eq!(mode(&url).await, 1);
        assert_eq!(mode(&format!("{url}?synchronous=full")).await, 2);
        assert_eq!(mode(&format!("{url}?mode=rwc&synchronous=FULL")).await, 2);
        assert_eq!(mode(&format!("{url}?synchronous=extra")).await, 3);
        let err = SqliteStore::open(&format!("{url}?synchronous=off"))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("synchronous is normal, full or extra"),
            "{err}"
        );
    }
}
