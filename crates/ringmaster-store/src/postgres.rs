//! PostgreSQL, for several `ringmaster serve` instances on one database.
//! Same tables and behaviour as the SQLite store; migrations run on open
//! under PostgreSQL's advisory lock, so instances starting together are safe.

use crate::values::ms;
use crate::{DeviceState, Ingested, Result, StatusReport, StoreError};
use rayon::slice::ParallelSliceMut;
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
/// policy, state, reported at, whether it was Succeeded before, and the
/// change number. They come by `COPY … TO STDOUT` as text lines, read here:
/// decoding a million rows one by one through the driver took seconds.
async fn latest_all(pool: &PgPool, rollout: &str) -> Result<Vec<crate::LatestRow>> {
    use futures_util::TryStreamExt;
    let mut tx = pool.begin().await?;
    // COPY takes no parameters: the rollout travels as a setting of this
    // transaction. The planner picks a sequential scan itself.
    sqlx::query("SELECT set_config('ringmaster.rollout', $1, true)")
        .bind(rollout)
        .execute(&mut *tx)
        .await?;
    let mut lines = tx
        .copy_out_raw(
            "COPY (SELECT device, policy, state, reported_at,
               CASE WHEN succeeded_at < reported_at THEN 1 ELSE 0 END, seq
             FROM status_latest WHERE rollout = current_setting('ringmaster.rollout'))
             TO STDOUT WITH (FORMAT text)",
        )
        .await?;
    let mut rows = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = lines.try_next().await? {
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            rows.push(latest_line(&pending[start..start + end], rollout)?);
            start += end + 1;
        }
        pending.drain(..start);
    }
    drop(lines);
    tx.commit().await?;
    Ok(rows)
}

/// One line of the latest states' `COPY` text: six tab-separated fields.
fn latest_line(line: &[u8], rollout: &str) -> Result<crate::LatestRow> {
    let bad = || StoreError::Corrupt(format!("status_latest of {rollout}: a line read back"));
    let mut fields = line.split(|&b| b == b'\t');
    let mut field = || fields.next().ok_or_else(bad);
    let mut text = || field().and_then(|f| copy_unescape(f).ok_or_else(bad));
    let (device, policy, state) = (text()?, text()?, text()?);
    // Numbers need no unescaping: read in place, no string each.
    let mut number = || -> Result<i64> {
        let f = field()?;
        std::str::from_utf8(f)
            .ok()
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)
    };
    Ok((device, policy, state, number()?, number()?, number()?))
}

/// A `COPY … (FORMAT text)` field as its text: the backslash sequences
/// PostgreSQL writes undone (`None` for a null or a malformed field).
fn copy_unescape(field: &[u8]) -> Option<String> {
    if field == b"\\N" {
        return None;
    }
    if !field.contains(&b'\\') {
        return String::from_utf8(field.to_vec()).ok();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match bytes.next()? {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            &other => other,
        });
    }
    String::from_utf8(out).ok()
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

/// Calls of at least this many reports store the history and the latest
/// states on two connections at once.
const SPLIT_AT: usize = 20_000;

/// One report as it travels: the call's newest report of its device and
/// policy feeds the latest state, with the earliest Succeeded among them.
struct Outgoing<'a> {
    report: &'a StatusReport,
    newest: bool,
    succeeded_at: Option<i64>,
}

/// The reports of a call in key order (device, policy, time), each moment
/// once (the first sent counts, as SQLite keeps it), marked as above.
fn outgoing(reports: &[StatusReport]) -> Vec<Outgoing<'_>> {
    fn key(r: &StatusReport) -> (&str, &str, i64) {
        (r.device.as_str(), r.policy.as_str(), ms(r.reported_at))
    }
    let mut sorted: Vec<&StatusReport> = reports.iter().collect();
    // Stable: of one moment sent twice, the first stays first.
    sorted.par_sort_by(|a, b| key(a).cmp(&key(b)));
    sorted.dedup_by(|b, a| key(a) == key(b));
    let mut out: Vec<Outgoing<'_>> = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| (&a.device, &a.policy) == (&b.device, &b.policy)) {
        let ok = group
            .iter()
            .filter(|r| r.state == DeviceState::Succeeded)
            .map(|r| ms(r.reported_at))
            .min();
        out.extend(group.iter().enumerate().map(|(i, r)| Outgoing {
            report: r,
            newest: i + 1 == group.len(),
            succeeded_at: ok,
        }));
    }
    out
}

type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Ingests of a rollout take both of these advisory locks, the first
/// (`$2` empty, the key ingests always took) before the second (`$2` is
/// " latest"): a call on two connections takes one on each, a call on one
/// both.
const LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('ringmaster status ' || $1 || $2, 0))";

impl PgStore {
    /// Stores status reports (see [`crate::Reports::ingest_status`]). The
    /// call is sorted and its repeats dropped here, and the rollout's locks
    /// taken before anything is sent. A rollout's first reports go by
    /// `COPY` straight into both tables; later ones by `COPY` into a
    /// scratch table (no parameters to bind), where they lose those the
    /// history already has and feed both status tables with plain inserts:
    /// under the rollout's locks nothing else writes them. A large call
    /// fills the history on one connection and the latest states on
    /// another at once (two PostgreSQL backends, no index shared),
    /// committing the latest states first: should the history's commit
    /// fail, sending the reports again stores them, and they change no
    /// latest state twice.
    async fn ingest_rows(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested> {
        let rows = outgoing(reports);
        let mut history = self.pool.begin().await?;
        // A second connection only when the pool has one to spare: a busy
        // pool (many ingests at a time) stores the call on one instead of
        // waiting for a connection that another ingest holds.
        let spare = self.pool.num_idle() > 0
            || self.pool.size() < self.pool.options().get_max_connections();
        let second = if rows.len() >= SPLIT_AT && spare {
            tokio::time::timeout(std::time::Duration::from_secs(2), self.pool.begin())
                .await
                .ok()
                .transpose()?
        } else {
            None
        };
        let Some(mut latest) = second else {
            for k in ["", " latest"] {
                lock(&mut history, rollout, k).await?;
            }
            let seq = sql::next_change(&mut history, rollout).await?;
            if is_new(&mut history, rollout).await? {
                copy_history(&mut history, rollout, &rows).await?;
                copy_latest(&mut history, rollout, seq, &rows).await?;
                history.commit().await?;
                return Ok(ingested(reports, rows.len() as u64));
            }
            copy_in(&mut history, None, &rows).await?;
            if shares_key(&rows, &drop_stored(&mut history, rollout).await?) {
                renew(&mut history).await?;
            }
            let kept = store_history(&mut history, rollout).await?;
            store_latest(&mut history, rollout, seq).await?;
            history.commit().await?;
            return Ok(ingested(reports, kept));
        };
        // The locks in order, then the change number: every earlier ingest
        // of the rollout has committed both its parts by now.
        lock(&mut history, rollout, "").await?;
        lock(&mut latest, rollout, " latest").await?;
        let seq = sql::next_change(&mut latest, rollout).await?;
        if is_new(&mut latest, rollout).await? {
            tokio::try_join!(
                copy_history(&mut history, rollout, &rows),
                copy_latest(&mut latest, rollout, seq, &rows)
            )?;
            latest.commit().await?;
            history.commit().await?;
            return Ok(ingested(reports, rows.len() as u64));
        }
        copy_in(&mut history, Some(&mut latest), &rows).await?;
        let gone = drop_stored(&mut history, rollout).await?;
        if !gone.is_empty() {
            sqlx::query("DELETE FROM incoming WHERE n = ANY($1)")
                .bind(&gone)
                .execute(&mut *latest)
                .await?;
            if shares_key(&rows, &gone) {
                renew(&mut latest).await?;
            }
        }
        let (kept, ()) = tokio::try_join!(
            store_history(&mut history, rollout),
            store_latest(&mut latest, rollout, seq)
        )?;
        latest.commit().await?;
        history.commit().await?;
        Ok(ingested(reports, kept))
    }
}

/// Whether the rollout has no reports stored yet: its first call goes by
/// `COPY` straight into both tables (no scratch table, heap pages written
/// a batch at a time), as nothing can be a duplicate or update a state.
async fn is_new(tx: &mut PgTx, rollout: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM status_history WHERE rollout = $1)
           AND NOT EXISTS (SELECT 1 FROM status_latest WHERE rollout = $1)",
    )
    .bind(rollout)
    .fetch_one(&mut **tx)
    .await?)
}

/// A new rollout's reports, straight into its history.
async fn copy_history(tx: &mut PgTx, rollout: &str, rows: &[Outgoing<'_>]) -> Result<()> {
    let copy = tx
        .copy_in_raw(
            "COPY status_history (rollout, device, policy, reported_at, state) FROM STDIN WITH (FORMAT text)",
        )
        .await?;
    stream(vec![copy], rows.iter(), |buf, row| {
        use std::fmt::Write;
        let r = row.report;
        for text in [rollout, &r.device, &r.policy] {
            copy_text(buf, text);
            buf.push('\t');
        }
        let _ = writeln!(buf, "{}\t{}", ms(r.reported_at), r.state.as_str());
    })
    .await
}

/// A new rollout's latest states, straight in: the newest report of each
/// device and policy, with the earliest Succeeded.
async fn copy_latest(tx: &mut PgTx, rollout: &str, seq: i64, rows: &[Outgoing<'_>]) -> Result<()> {
    let copy = tx
        .copy_in_raw(
            "COPY status_latest (rollout, device, policy, wave, state, reported_at, succeeded_at, seq)
             FROM STDIN WITH (FORMAT text)",
        )
        .await?;
    let newest: Vec<&Outgoing<'_>> = rows.iter().filter(|r| r.newest).collect();
    stream(vec![copy], newest.into_iter(), |buf, row| {
        use std::fmt::Write;
        let r = row.report;
        for text in [rollout, &r.device, &r.policy] {
            copy_text(buf, text);
            buf.push('\t');
        }
        number_or_null(buf, r.wave.map(i64::from));
        let _ = write!(buf, "\t{}\t{}\t", r.state.as_str(), ms(r.reported_at));
        number_or_null(buf, row.succeeded_at);
        let _ = writeln!(buf, "\t{seq}");
    })
    .await
}

/// A number as a `COPY` text field, `\N` for none.
fn number_or_null(buf: &mut String, n: Option<i64>) {
    use std::fmt::Write;
    match n {
        Some(n) => {
            let _ = write!(buf, "{n}");
        }
        None => buf.push_str("\\N"),
    }
}

/// Writes `rows` as `COPY` text lines a megabyte at a time, each block
/// sent to every copy at once, then ends the copies.
async fn stream<T>(
    mut copies: Vec<sqlx::postgres::PgCopyIn<&mut sqlx::PgConnection>>,
    rows: impl Iterator<Item = T>,
    line: impl Fn(&mut String, T),
) -> Result<()> {
    let mut buf = String::with_capacity(1 << 20);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        buf.clear();
        for row in rows.by_ref() {
            line(&mut buf, row);
            if buf.len() >= 1 << 20 {
                break;
            }
        }
        match &mut copies[..] {
            [a, b] => {
                tokio::try_join!(a.send(buf.as_bytes()), b.send(buf.as_bytes()))?;
            }
            [a] => {
                a.send(buf.as_bytes()).await?;
            }
            _ => {}
        }
    }
    for copy in copies {
        copy.finish().await?;
    }
    Ok(())
}

fn ingested(reports: &[StatusReport], kept: u64) -> Ingested {
    Ingested {
        inserted: kept,
        duplicates: reports.len() as u64 - kept,
    }
}

async fn lock(tx: &mut PgTx, rollout: &str, key: &str) -> Result<()> {
    sqlx::query(LOCK)
        .bind(rollout)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sends the call's reports into the scratch table of one connection or
/// two, written once and sent to both.
async fn copy_in(first: &mut PgTx, second: Option<&mut PgTx>, rows: &[Outgoing<'_>]) -> Result<()> {
    const SCRATCH: &str = "CREATE TEMP TABLE IF NOT EXISTS incoming (n bigint NOT NULL,
        d text NOT NULL, p text NOT NULL, w bigint, s text NOT NULL, a bigint NOT NULL,
        newest boolean NOT NULL, ok bigint) ON COMMIT DELETE ROWS";
    const COPY: &str = "COPY incoming (n, d, p, w, s, a, newest, ok) FROM STDIN WITH (FORMAT text)";
    // Sorts of a large call in memory rather than on disk; no JIT, whose
    // compiling (half a second at a million rows) the statements' plain
    // row work never earns back.
    const SETTINGS: &str =
        "SELECT set_config('work_mem', '256MB', true), set_config('jit', 'off', true)";
    let mut txs: Vec<&mut PgTx> = std::iter::once(first).chain(second).collect();
    for tx in &mut txs {
        sqlx::query(SCRATCH).execute(&mut ***tx).await?;
        sqlx::query(SETTINGS).execute(&mut ***tx).await?;
    }
    let mut copies = Vec::with_capacity(txs.len());
    for tx in &mut txs {
        copies.push(tx.copy_in_raw(COPY).await?);
    }
    stream(copies, rows.iter().enumerate(), |buf, (n, row)| {
        copy_row(buf, n, row)
    })
    .await
}

/// One report as a line of `COPY … (FORMAT text)`.
fn copy_row(buf: &mut String, n: usize, row: &Outgoing<'_>) {
    use std::fmt::Write;
    let r = row.report;
    let _ = write!(buf, "{n}\t");
    copy_text(buf, &r.device);
    buf.push('\t');
    copy_text(buf, &r.policy);
    buf.push('\t');
    number_or_null(buf, r.wave.map(i64::from));
    let _ = write!(
        buf,
        "\t{}\t{}\t{}\t",
        r.state.as_str(),
        ms(r.reported_at),
        if row.newest { 't' } else { 'f' }
    );
    number_or_null(buf, row.succeeded_at);
    buf.push('\n');
}

/// Drops the reports the history has (duplicates), under the rollout's
/// locks, and gives their numbers: what stays is exactly what the history
/// will keep. Each report is looked up in the history's key (a hash join
/// would read the rollout's whole history, which only grows), unless the
/// history holds nothing between the part's first and last report in the
/// database's own order (a rollout's first reports): one range lookup.
async fn drop_stored(tx: &mut PgTx, rollout: &str) -> Result<Vec<i64>> {
    let stored: bool = sqlx::query_scalar(
        // The first stored key at or after the part's first, read from
        // the index in order, then compared with the part's last.
        "SELECT EXISTS (SELECT 1 FROM (
           SELECT device, policy, reported_at FROM status_history WHERE rollout = $1
             AND (device, policy, reported_at) >= (SELECT d, p, a FROM incoming ORDER BY d, p, a LIMIT 1)
           ORDER BY device, policy, reported_at LIMIT 1) f
         WHERE (f.device, f.policy, f.reported_at)
           <= (SELECT d, p, a FROM incoming ORDER BY d DESC, p DESC, a DESC LIMIT 1))",
    )
    .bind(rollout)
    .fetch_one(&mut **tx)
    .await?;
    if !stored {
        return Ok(Vec::new());
    }
    sqlx::query("SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)")
        .execute(&mut **tx)
        .await?;
    let gone: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM incoming i USING status_history h
         WHERE h.rollout = $1 AND h.device = i.d AND h.policy = i.p AND h.reported_at = i.a
         RETURNING i.n",
    )
    .bind(rollout)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("SELECT set_config('enable_hashjoin', 'on', true), set_config('enable_mergejoin', 'on', true)")
        .execute(&mut **tx)
        .await?;
    Ok(gone)
}

/// Whether a dropped report (by its number in `rows`) had another report
/// of its device and policy in the call: only then do the marks of the
/// reports that stay change. The rows are in key order, so such reports
/// are neighbours.
fn shares_key(rows: &[Outgoing<'_>], gone: &[i64]) -> bool {
    let same = |a: &Outgoing<'_>, b: &Outgoing<'_>| {
        a.report.device == b.report.device && a.report.policy == b.report.policy
    };
    gone.iter().any(|&n| {
        let n = n as usize;
        (n > 0 && same(&rows[n - 1], &rows[n]))
            || rows.get(n + 1).is_some_and(|r| same(r, &rows[n]))
    })
}

/// The newest and the earliest Succeeded of each device and policy again,
/// from the reports that stay after duplicates went: a moment stored before
/// with another state must not count as an earlier Succeeded.
async fn renew(tx: &mut PgTx) -> Result<()> {
    sqlx::query(
        "UPDATE incoming i SET newest = f.newest, ok = f.ok FROM (
           SELECT n, row_number() OVER (PARTITION BY d, p ORDER BY a DESC) = 1 AS newest,
             min(a) FILTER (WHERE s = $1) OVER (PARTITION BY d, p) AS ok
           FROM incoming) f
         WHERE i.n = f.n",
    )
    .bind(DeviceState::Succeeded.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores what stays in the history; gives how many.
async fn store_history(tx: &mut PgTx, rollout: &str) -> Result<u64> {
    Ok(sqlx::query(
        "INSERT INTO status_history (rollout, device, policy, reported_at, state)
         SELECT $1, d, p, a, s FROM incoming",
    )
    .bind(rollout)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Moves the latest states to what stays, with change number `seq`.
async fn store_latest(tx: &mut PgTx, rollout: &str, seq: i64) -> Result<()> {
    // First as plain rows: right for a rollout's first states and for new
    // devices, and a device already stored ends the attempt at its row
    // (the key's unique violation), undone to the savepoint. Then as an
    // upsert, where an older report never overwrites a newer state.
    sqlx::query("SAVEPOINT plain").execute(&mut **tx).await?;
    let plain = sqlx::query(
        "INSERT INTO status_latest (rollout, device, policy, wave, state, reported_at, succeeded_at, seq)
         SELECT $1, d, p, w, s, a, ok, $2 FROM incoming WHERE newest",
    )
    .bind(rollout)
    .bind(seq)
    .execute(&mut **tx)
    .await;
    match plain {
        Ok(_) => return Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            sqlx::query("ROLLBACK TO SAVEPOINT plain")
                .execute(&mut **tx)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    sqlx::query(
        "INSERT INTO status_latest (rollout, device, policy, wave, state, reported_at, succeeded_at, seq)
         SELECT $1, d, p, w, s, a, ok, $2 FROM incoming WHERE newest
         ON CONFLICT (rollout, device, policy) DO UPDATE SET
           seq = excluded.seq,
           state = CASE WHEN excluded.reported_at > status_latest.reported_at
             THEN excluded.state ELSE status_latest.state END,
           wave = CASE WHEN excluded.reported_at > status_latest.reported_at
             THEN coalesce(excluded.wave, status_latest.wave) ELSE status_latest.wave END,
           reported_at = greatest(excluded.reported_at, status_latest.reported_at),
           succeeded_at = least(excluded.succeeded_at, status_latest.succeeded_at)
         WHERE excluded.reported_at > status_latest.reported_at
           OR excluded.succeeded_at < coalesce(status_latest.succeeded_at, excluded.succeeded_at + 1)",
    )
    .bind(rollout)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
