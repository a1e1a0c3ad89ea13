//! The store as both backends run it: the same SQL (placeholders `$1…`,
//! upserts with `ON CONFLICT`, times as integer milliseconds) and the same
//! row reading. This file is compiled once inside each backend module, where
//! `Db` is that backend's database, `Backend` its store type (holding
//! `pool`), `CHUNK` its rows per multi-row insert, `latest_all` how it
//! reads status_latest whole and `ingest_rows` its bulk status ingestion;
//! see ARCHITECTURE.md for why it is not a generic.

use super::{Backend, CHUNK, Db};
use crate::values::{bitmap_bytes, digest, from_ms, gate_result, gate_result_text, json, ms};
use crate::values::{parse, secret};
use crate::{
    Action, AlertMark, Approval, AuditEntry, Coordination, Credentials, Delivery, DeviceState,
    Feedback, GateRound, HeldStratum, Ingested, LatestState, NewMessage, NewWave, Notifications,
    OutboxItem, Recorded, Reports, Result, Role, Session, Started, StateCounts, StatusReport,
    StoreError, TenantApproval, TenantApprovals, Ticket, TokenCheck, TokenInfo, Watching, WaveKey,
    WaveRow, Waves,
};
use async_trait::async_trait;
use rayon::prelude::*;
use ringmaster_core::alerts::{Alert, Severity};
use ringmaster_core::wave::{Effect, Event, Transition, WaveState};
use roaring::RoaringBitmap;
use sqlx::{QueryBuilder, Row};

type DbRow = <Db as sqlx::Database>::Row;

/// Where a row of a wave's table is, for errors.
fn place(table: &str, key: &WaveKey) -> String {
    format!(
        "{table} of {} version {} wave {}",
        key.rollout, key.version, key.idx
    )
}

/// The wave a row of `transitions` or `actions` is about.
fn wave_key(rollout: &str, r: &DbRow) -> WaveKey {
    WaveKey {
        rollout: rollout.to_string(),
        version: r.get::<i64, _>("version") as u32,
        idx: r.get::<i64, _>("idx") as u32,
    }
}

/// A row of `actions`.
fn action(rollout: &str, r: &DbRow) -> Result<Action> {
    let key = wave_key(rollout, r);
    let seq = r.get::<i64, _>("seq") as u64;
    let pos = r.get::<i64, _>("pos") as u32;
    Ok(Action {
        effect: parse::<Effect>(r.get("effect"), || {
            format!("{} transition {seq} effect {pos}", place("actions", &key))
        })?,
        key,
        seq,
        pos,
        attempts: r.get::<i64, _>("attempts") as u32,
    })
}

/// A row of `outbox`.
fn outbox_item(r: &DbRow) -> Result<OutboxItem> {
    let id: i64 = r.get("id");
    let here = || format!("outbox message {id}");
    Ok(OutboxItem {
        id,
        message: NewMessage {
            key: r.get("key"),
            channel: r.get("channel"),
            target: r.get("target"),
            audience: r.get("audience"),
            subject: r.get("subject"),
            body: r.get("body"),
            html: r.get("html"),
        },
        created_at: from_ms(r.get("created_at"), here)?,
        state: r.get("state"),
        attempts: r.get::<i64, _>("attempts") as u32,
        next_at: from_ms(r.get("next_ms"), here)?,
        last_error: r.get("last_error"),
        sent_at: r
            .get::<Option<i64>, _>("sent_at")
            .map(|t| from_ms(t, here))
            .transpose()?,
    })
}

/// A stored device state: one the store wrote, so anything else is corrupt.
fn device_state(text: &str, place: impl FnOnce() -> String) -> Result<DeviceState> {
    DeviceState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("{}: device state `{text}`", place())))
}

impl Backend {
    /// Inserts records in chunks; records already stored (same key) are
    /// duplicates, left as they are.
    async fn insert_new<'r, R: Sync>(
        &self,
        head: &'static str,
        records: &'r [R],
        bind: impl Fn(sqlx::query_builder::Separated<'_, 'r, Db, &'static str>, &'r R),
    ) -> Result<Ingested> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in records.chunks(CHUNK / 2) {
            let mut q = QueryBuilder::<Db>::new(head);
            q.push_values(chunk, &bind);
            q.push(" ON CONFLICT DO NOTHING");
            inserted += q.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        crate::after_commit();
        Ok(Ingested {
            inserted,
            duplicates: records.len() as u64 - inserted,
        })
    }

    async fn start_version_once(
        &self,
        rollout: &str,
        identity: &str,
        text: &str,
        waves: &[NewWave],
        at: jiff::Timestamp,
    ) -> Result<Started> {
        let mut tx = self.pool.begin().await?;
        let d = digest(identity);
        let last: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT version, digest, text FROM plan_versions WHERE rollout = $1
             ORDER BY version DESC LIMIT 1",
        )
        .bind(rollout)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((v, ld, lt)) = &last
            && *ld == d
        {
            if lt == text {
                return Ok(Started {
                    version: *v as u32,
                    previous: None,
                    rescheduled: false,
                });
            }
            // Only the schedule (or wording) changed: apply it in place.
            sqlx::query("UPDATE plan_versions SET text = $1 WHERE rollout = $2 AND version = $3")
                .bind(text)
                .bind(rollout)
                .bind(v)
                .execute(&mut *tx)
                .await?;
            for (i, w) in waves.iter().enumerate() {
                sqlx::query(
                    "UPDATE waves SET starts_at = $1
                     WHERE rollout = $2 AND version = $3 AND idx = $4",
                )
                .bind(ms(w.starts_at))
                .bind(rollout)
                .bind(v)
                .bind(i as i64)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO audit (at, actor, rollout, action, detail)
                 VALUES ($1, 'ringmaster', $2, 'schedule changed', $3)",
            )
            .bind(ms(at))
            .bind(rollout)
            .bind(format!(
                "version {v}: new dates and wording applied in place"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            crate::after_commit();
            return Ok(Started {
                version: *v as u32,
                previous: None,
                rescheduled: true,
            });
        }
        let previous = last.as_ref().map(|(v, _, _)| *v as u32);
        let version = last.map(|(v, _, _)| v + 1).unwrap_or(1);
        sqlx::query(
            "INSERT INTO plan_versions (rollout, version, created_at, digest, text)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rollout)
        .bind(version)
        .bind(ms(at))
        .bind(&d)
        .bind(text)
        .execute(&mut *tx)
        .await?;
        let pending = json(&WaveState::Pending)?;
        for (i, w) in waves.iter().enumerate() {
            sqlx::query(
                "INSERT INTO waves
                 (rollout, version, idx, name, phase, state, seq, members, starts_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
            )
            .bind(rollout)
            .bind(version)
            .bind(i as i64)
            .bind(&w.name)
            .bind(&w.phase)
            .bind(&pending)
            .bind(bitmap_bytes(&w.members))
            .bind(ms(w.starts_at))
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail)
             VALUES ($1, 'ringmaster', $2, 'plan version', $3)",
        )
        .bind(ms(at))
        .bind(rollout)
        .bind(format!(
            "version {version} with {} waves (digest {d})",
            waves.len()
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(Started {
            version: version as u32,
            previous,
            rescheduled: false,
        })
    }
}

#[async_trait]
impl Waves for Backend {
    async fn start_version(
        &self,
        rollout: &str,
        identity: &str,
        text: &str,
        waves: &[NewWave],
        at: jiff::Timestamp,
    ) -> Result<Started> {
        // Servers starting together race to make the first version: the
        // loser sees the winner's on its second try.
        let mut tries = 0;
        loop {
            match self
                .start_version_once(rollout, identity, text, waves, at)
                .await
            {
                Err(StoreError::Db(sqlx::Error::Database(e)))
                    if e.is_unique_violation() && tries < 3 =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn latest_version(&self, rollout: &str) -> Result<Option<(u32, String)>> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT version, text FROM plan_versions WHERE rollout = $1
             ORDER BY version DESC LIMIT 1",
        )
        .bind(rollout)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v, t)| (v as u32, t)))
    }

    async fn waves(&self, rollout: &str, version: u32) -> Result<Vec<WaveRow>> {
        let rows = sqlx::query(
            "SELECT idx, name, phase, state, seq, members, starts_at FROM waves
             WHERE rollout = $1 AND version = $2 ORDER BY idx",
        )
        .bind(rollout)
        .bind(version as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let key = WaveKey {
                    rollout: rollout.to_string(),
                    version,
                    idx: r.get::<i64, _>("idx") as u32,
                };
                let here = || place("waves", &key);
                let members: Vec<u8> = r.get("members");
                Ok(WaveRow {
                    name: r.get("name"),
                    phase: r.get("phase"),
                    state: parse(r.get("state"), here)?,
                    seq: r.get::<i64, _>("seq") as u64,
                    members: RoaringBitmap::deserialize_from(&members[..])
                        .map_err(|e| StoreError::Corrupt(format!("{}: members: {e}", here())))?,
                    starts_at: from_ms(r.get("starts_at"), here)?,
                    key,
                })
            })
            .collect()
    }

    async fn commit(
        &self,
        key: &WaveKey,
        expected: u64,
        event: &Event,
        t: &Transition,
        actor: &str,
        at: jiff::Timestamp,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let seq = expected + 1;
        let moved = sqlx::query(
            "UPDATE waves SET state = $1, seq = $2, updated_at = $3
             WHERE rollout = $4 AND version = $5 AND idx = $6 AND seq = $7",
        )
        .bind(json(&t.to)?)
        .bind(seq as i64)
        .bind(ms(at))
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(expected as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM waves WHERE rollout = $1 AND version = $2 AND idx = $3",
            )
            .bind(&key.rollout)
            .bind(key.version as i64)
            .bind(key.idx as i64)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match found {
                Some(f) => StoreError::Stale {
                    rollout: key.rollout.clone(),
                    idx: key.idx,
                    expected,
                    found: f as u64,
                },
                None => StoreError::NotFound(format!(
                    "wave {} of {} version {}",
                    key.idx + 1,
                    key.rollout,
                    key.version
                )),
            });
        }
        sqlx::query(
            "INSERT INTO transitions
             (rollout, version, idx, seq, at, actor, event, from_state, to_state, why)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(seq as i64)
        .bind(ms(at))
        .bind(actor)
        .bind(json(event)?)
        .bind(json(&t.from)?)
        .bind(json(&t.to)?)
        .bind(&t.why)
        .execute(&mut *tx)
        .await?;
        for (pos, e) in t.effects.iter().enumerate() {
            sqlx::query(
                "INSERT INTO actions (rollout, version, idx, seq, pos, effect)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&key.rollout)
            .bind(key.version as i64)
            .bind(key.idx as i64)
            .bind(seq as i64)
            .bind(pos as i64)
            .bind(json(e)?)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(at))
        .bind(actor)
        .bind(&key.rollout)
        // Waves are counted from 1 wherever people read them.
        .bind(format!(
            "wave {}: {} → {}",
            key.idx + 1,
            t.from.name(),
            t.to.name()
        ))
        .bind(&t.why)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(seq)
    }

    async fn history(&self, rollout: &str) -> Result<Vec<Recorded>> {
        let rows = sqlx::query(
            "SELECT version, idx, seq, at, actor, event, from_state, to_state, why
             FROM transitions WHERE rollout = $1 ORDER BY at, version, idx, seq",
        )
        .bind(rollout)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let key = wave_key(rollout, &r);
                let seq = r.get::<i64, _>("seq") as u64;
                let here = || format!("{} transition {seq}", place("transitions", &key));
                Ok(Recorded {
                    seq,
                    at: from_ms(r.get("at"), here)?,
                    actor: r.get("actor"),
                    event: parse(r.get("event"), here)?,
                    from: parse(r.get("from_state"), here)?,
                    to: parse(r.get("to_state"), here)?,
                    why: r.get("why"),
                    key,
                })
            })
            .collect()
    }

    async fn pending_actions(&self, rollout: &str) -> Result<Vec<Action>> {
        let rows = sqlx::query(
            "SELECT version, idx, seq, pos, effect, attempts FROM actions
             WHERE rollout = $1 AND done_at IS NULL ORDER BY version, seq, idx, pos",
        )
        .bind(rollout)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| action(rollout, r)).collect()
    }

    async fn done_actions(&self, rollout: &str) -> Result<Vec<(Action, jiff::Timestamp)>> {
        let rows = sqlx::query(
            "SELECT version, idx, seq, pos, effect, attempts, done_at FROM actions
             WHERE rollout = $1 AND done_at IS NOT NULL ORDER BY done_at, version, seq, idx, pos",
        )
        .bind(rollout)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let a = action(rollout, r)?;
                let done = from_ms(r.get("done_at"), || place("actions", &a.key))?;
                Ok((a, done))
            })
            .collect()
    }

    async fn finish_action(
        &self,
        a: &Action,
        error: Option<&str>,
        at: jiff::Timestamp,
    ) -> Result<()> {
        let q = match error {
            None => sqlx::query(
                "UPDATE actions SET done_at = $1, attempts = attempts + 1, last_error = NULL
                 WHERE rollout = $2 AND version = $3 AND idx = $4 AND seq = $5 AND pos = $6",
            )
            .bind(ms(at)),
            Some(e) => sqlx::query(
                "UPDATE actions SET attempts = attempts + 1, last_error = $1
                 WHERE rollout = $2 AND version = $3 AND idx = $4 AND seq = $5 AND pos = $6",
            )
            .bind(e.to_string()),
        };
        q.bind(&a.key.rollout)
            .bind(a.key.version as i64)
            .bind(a.key.idx as i64)
            .bind(a.seq as i64)
            .bind(a.pos as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn request(
        &self,
        rollout: &str,
        version: u32,
        who: &str,
        at: jiff::Timestamp,
    ) -> Result<String> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO requesters (rollout, version, requester, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (rollout, version) DO NOTHING",
        )
        .bind(rollout)
        .bind(version as i64)
        .bind(who)
        .bind(ms(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query(
                "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ms(at))
            .bind(who)
            .bind(rollout)
            .bind(format!("version {version}: requested"))
            .bind(format!("{who} started the rollout: its waves are requested by {who}"))
            .execute(&mut *tx)
            .await?;
        }
        let stands: String = sqlx::query_scalar(
            "SELECT requester FROM requesters WHERE rollout = $1 AND version = $2",
        )
        .bind(rollout)
        .bind(version as i64)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(stands)
    }

    async fn requester(&self, rollout: &str, version: u32) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT requester FROM requesters WHERE rollout = $1 AND version = $2",
        )
        .bind(rollout)
        .bind(version as i64)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn add_approval(
        &self,
        key: &WaveKey,
        who: &str,
        detail: &str,
        at: jiff::Timestamp,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO approvals (rollout, version, idx, person, approver, at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (rollout, version, idx, person) DO NOTHING",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(ringmaster_core::approvals::person(who))
        .bind(who.trim())
        .bind(ms(at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(at))
        .bind(who)
        .bind(&key.rollout)
        .bind(format!("wave {}: approved", key.idx + 1))
        .bind(detail)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(true)
    }

    async fn approvals(&self, key: &WaveKey) -> Result<Vec<Approval>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT approver, at FROM approvals
             WHERE rollout = $1 AND version = $2 AND idx = $3 ORDER BY at, person",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(approver, at)| {
                Ok(Approval {
                    at: from_ms(at, || place("approvals", key))?,
                    approver,
                })
            })
            .collect()
    }

    async fn hold_stratum(&self, h: &HeldStratum) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "INSERT INTO held_strata
                 (rollout, version, idx, stratum, devices, evidence, rollback, held_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (rollout, version, idx, stratum) DO NOTHING",
        )
        .bind(&h.key.rollout)
        .bind(h.key.version as i64)
        .bind(h.key.idx as i64)
        .bind(&h.stratum)
        .bind(bitmap_bytes(&h.devices))
        .bind(&h.evidence)
        .bind(i64::from(h.rollback))
        .bind(ms(h.held_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(h.held_at))
        .bind("ringmaster")
        .bind(&h.key.rollout)
        .bind(format!("wave {}: {} held", h.key.idx + 1, h.stratum))
        .bind(format!(
            "{} device(s) {}: {}",
            h.devices.len(),
            if h.rollback {
                "taken out of the wave and later waves"
            } else {
                "kept back (the policy stays) and left out of later waves"
            },
            h.evidence
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(true)
    }

    async fn held_strata(&self, rollout: &str) -> Result<Vec<HeldStratum>> {
        let rows = sqlx::query(
            "SELECT version, idx, stratum, devices, evidence, rollback, held_at, removed_at,
                    released_at, released_by
             FROM held_strata WHERE rollout = $1 ORDER BY held_at, version, idx, stratum",
        )
        .bind(rollout)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let key = wave_key(rollout, r);
                let stratum: String = r.get("stratum");
                let here = || format!("{}: {stratum}", place("held_strata", &key));
                let devices: Vec<u8> = r.get("devices");
                let at = |c: &str| -> Result<Option<jiff::Timestamp>> {
                    r.get::<Option<i64>, _>(c)
                        .map(|v| from_ms(v, here))
                        .transpose()
                };
                Ok(HeldStratum {
                    devices: RoaringBitmap::deserialize_from(&devices[..])
                        .map_err(|e| StoreError::Corrupt(format!("{}: devices: {e}", here())))?,
                    evidence: r.get("evidence"),
                    rollback: r.get::<i64, _>("rollback") != 0,
                    held_at: from_ms(r.get("held_at"), here)?,
                    removed_at: at("removed_at")?,
                    released_at: at("released_at")?,
                    released_by: r.get("released_by"),
                    stratum: stratum.clone(),
                    key,
                })
            })
            .collect()
    }

    async fn hold_removed(&self, key: &WaveKey, stratum: &str, at: jiff::Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE held_strata SET removed_at = $5
             WHERE rollout = $1 AND version = $2 AND idx = $3 AND stratum = $4
               AND removed_at IS NULL",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(stratum)
        .bind(ms(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_stratum(
        &self,
        key: &WaveKey,
        stratum: &str,
        who: &str,
        at: jiff::Timestamp,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE held_strata SET released_at = $5, released_by = $6
             WHERE rollout = $1 AND version = $2 AND idx = $3 AND stratum = $4
               AND released_at IS NULL",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(stratum)
        .bind(ms(at))
        .bind(who)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(at))
        .bind(who)
        .bind(&key.rollout)
        .bind(format!("wave {}: {stratum} released", key.idx + 1))
        .bind("its devices may join the waves that start from now on")
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(true)
    }
}

#[async_trait]
impl Reports for Backend {
    async fn ingest_status(&self, rollout: &str, reports: &[StatusReport]) -> Result<Ingested> {
        self.ingest_rows(rollout, reports).await
    }

    async fn wave_counts(
        &self,
        rollout: &str,
        wave: u32,
        since: Option<jiff::Timestamp>,
    ) -> Result<StateCounts> {
        // The kept counts, less the devices whose latest state came before
        // `since` (none in the usual case): one statement, one snapshot.
        // The wave's states are looked at only when a row's earliest counted
        // report says there can be such a device.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.state, c.devices - CASE WHEN c.first_at >= $3 THEN 0
               ELSE (SELECT count(*) FROM status_latest l
                     WHERE l.rollout = $1 AND l.wave = $2 AND l.state = c.state AND l.reported_at < $3)
               END
             FROM wave_state_counts c WHERE c.rollout = $1 AND c.wave = $2",
        )
            .bind(rollout)
            .bind(wave as i64)
            .bind(since.map(ms).unwrap_or(i64::MIN))
            .fetch_all(&self.pool)
            .await?;
        let mut c = StateCounts::default();
        for (state, n) in rows.into_iter().filter(|(_, n)| *n > 0) {
            let s = device_state(&state, || format!("status_latest of {rollout} wave {wave}"))?;
            c.add(s, n as u64);
        }
        Ok(c)
    }

    async fn wave_device_states(
        &self,
        rollout: &str,
        wave: u32,
        since: Option<jiff::Timestamp>,
    ) -> Result<Vec<(String, DeviceState)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT device, state FROM status_latest
             WHERE rollout = $1 AND wave = $2 AND reported_at >= $3",
        )
        .bind(rollout)
        .bind(wave as i64)
        .bind(since.map(ms).unwrap_or(i64::MIN))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(device, state)| {
                let s = device_state(&state, || {
                    format!("status_latest of {rollout} wave {wave} device {device}")
                })?;
                Ok((device, s))
            })
            .collect()
    }

    async fn latest_states(
        &self,
        rollout: &str,
        after: Option<u64>,
    ) -> Result<(Vec<LatestState>, u64)> {
        const COLUMNS: &str = "SELECT device, policy, state, reported_at,
                    CAST(CASE WHEN succeeded_at < reported_at THEN 1 ELSE 0 END AS BIGINT), seq";
        // Everything (the watch's first check) is read straight off the
        // table: through the change index it would be a lookup per row.
        let rows: Vec<crate::LatestRow> = match after {
            Some(after) => {
                sqlx::query_as(&format!(
                    "{COLUMNS} FROM status_latest WHERE rollout = $1 AND seq > $2"
                ))
                .bind(rollout)
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await?
            }
            None => super::latest_all(&self.pool, rollout).await?,
        };
        // The rows carry their change numbers: the highest one read is where
        // the next read goes on (a batch's rows commit together).
        let through = (rows.iter().map(|r| r.5.max(0) as u64))
            .chain(after)
            .max()
            .unwrap_or(0);
        // Sorted here: an ORDER BY would make the database walk the whole
        // table by key instead of the changed rows.
        let mut rows = rows;
        rows.par_sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let states = rows
            .into_par_iter()
            .map(|(device, policy, state, at, was, _)| {
                let here =
                    || format!("status_latest of {rollout}, device {device} policy {policy}");
                Ok(LatestState {
                    state: device_state(&state, here)?,
                    reported_at: from_ms(at, here)?,
                    was_succeeded: was == 1,
                    device,
                    policy,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((states, through))
    }

    async fn record_counts(
        &self,
        key: &WaveKey,
        at: jiff::Timestamp,
        counts: &StateCounts,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO wave_samples (rollout, version, idx, at_ms, counts)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (rollout, version, idx, at_ms) DO UPDATE SET counts = excluded.counts",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(ms(at))
        .bind(json(counts)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn counts_series(&self, key: &WaveKey) -> Result<Vec<(jiff::Timestamp, StateCounts)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT at_ms, counts FROM wave_samples
             WHERE rollout = $1 AND version = $2 AND idx = $3 ORDER BY at_ms",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(at, c)| {
                let here = || format!("{} at {at}", place("wave_samples", key));
                Ok((from_ms(at, here)?, parse(&c, here)?))
            })
            .collect()
    }

    async fn replace_round(&self, key: &WaveKey, round: &GateRound) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM evaluations WHERE rollout = $1 AND version = $2 AND idx = $3 AND at = $4",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .bind(ms(round.at))
        .execute(&mut *tx)
        .await?;
        for r in &round.results {
            sqlx::query(
                "INSERT INTO evaluations (rollout, version, idx, at, body)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&key.rollout)
            .bind(key.version as i64)
            .bind(key.idx as i64)
            .bind(ms(round.at))
            .bind(gate_result_text(r)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        crate::after_commit();
        Ok(())
    }

    async fn gate_rounds(&self, key: &WaveKey) -> Result<Vec<GateRound>> {
        // Insertion order within a round: its goals in their order.
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT id, at, body FROM evaluations
             WHERE rollout = $1 AND version = $2 AND idx = $3 ORDER BY at, id",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut rounds: Vec<GateRound> = Vec::new();
        for (id, at, body) in rows {
            let here = || format!("{} (row {id})", place("evaluations", key));
            let at = from_ms(at, here)?;
            let result = gate_result(&body, here)?;
            match rounds.last_mut() {
                Some(r) if r.at == at => r.results.push(result),
                _ => rounds.push(GateRound {
                    at,
                    results: vec![result],
                }),
            }
        }
        Ok(rounds)
    }

    async fn ingest_tickets(&self, rollout: &str, tickets: &[Ticket]) -> Result<Ingested> {
        self.insert_new(
            "INSERT INTO tickets (rollout, id, at, user_id, device, category, text, wave, control) ",
            tickets,
            |mut b, t| {
                b.push_bind(rollout)
                    .push_bind(&t.id)
                    .push_bind(ms(t.at))
                    .push_bind(&t.user)
                    .push_bind(&t.device)
                    .push_bind(&t.category)
                    .push_bind(&t.text)
                    .push_bind(t.wave.map(i64::from))
                    .push_bind(t.control);
            },
        )
        .await
    }

    async fn ingest_feedback(&self, rollout: &str, answers: &[Feedback]) -> Result<Ingested> {
        self.insert_new(
            "INSERT INTO feedback (rollout, id, at, user_id, device, score, comment, wave) ",
            answers,
            |mut b, f| {
                b.push_bind(rollout)
                    .push_bind(&f.id)
                    .push_bind(ms(f.at))
                    .push_bind(&f.user)
                    .push_bind(&f.device)
                    .push_bind(i64::from(f.score))
                    .push_bind(&f.comment)
                    .push_bind(f.wave.map(i64::from));
            },
        )
        .await
    }

    async fn wave_tickets_feedback(
        &self,
        rollout: &str,
        wave: u32,
        since: Option<jiff::Timestamp>,
    ) -> Result<(u64, u64, f64)> {
        let since = since.map(ms).unwrap_or(i64::MIN);
        let tickets: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tickets WHERE rollout = $1 AND wave = $2 AND at >= $3",
        )
        .bind(rollout)
        .bind(wave as i64)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let (n, sum): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), CAST(sum(score) AS BIGINT) FROM feedback
             WHERE rollout = $1 AND wave = $2 AND at >= $3",
        )
        .bind(rollout)
        .bind(wave as i64)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((tickets as u64, n as u64, sum.unwrap_or(0) as f64))
    }

    async fn wave_items(
        &self,
        rollout: &str,
        wave: u32,
        offset: u32,
        limit: u32,
    ) -> Result<(Vec<Ticket>, Vec<Feedback>)> {
        let tickets = sqlx::query(
            "SELECT id, at, user_id, device, category, text FROM tickets
             WHERE rollout = $1 AND wave = $2 ORDER BY at DESC, id LIMIT $3 OFFSET $4",
        )
        .bind(rollout)
        .bind(wave as i64)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let id: String = r.get("id");
            Ok(Ticket {
                at: from_ms(r.get("at"), || format!("ticket {id} of {rollout}"))?,
                id,
                user: r.get("user_id"),
                device: r.get("device"),
                category: r.get("category"),
                text: r.get("text"),
                wave: Some(wave),
                control: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let answers = sqlx::query(
            "SELECT id, at, user_id, device, score, comment FROM feedback
             WHERE rollout = $1 AND wave = $2 ORDER BY at DESC, id LIMIT $3 OFFSET $4",
        )
        .bind(rollout)
        .bind(wave as i64)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let id: String = r.get("id");
            Ok(Feedback {
                at: from_ms(r.get("at"), || format!("feedback {id} of {rollout}"))?,
                id,
                user: r.get("user_id"),
                device: r.get("device"),
                score: r.get::<i64, _>("score").clamp(1, 5) as u8,
                comment: r.get("comment"),
                wave: Some(wave),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok((tickets, answers))
    }

    async fn control_tickets(
        &self,
        rollout: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tickets
             WHERE rollout = $1 AND control AND at >= $2 AND at < $3",
        )
        .bind(rollout)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }

    async fn count_tickets(
        &self,
        rollout: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tickets
             WHERE rollout = $1 AND wave IS NOT NULL AND at >= $2 AND at < $3",
        )
        .bind(rollout)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }
}

#[async_trait]
impl Credentials for Backend {
    async fn create_token_until(
        &self,
        role: Role,
        label: &str,
        at: jiff::Timestamp,
        expires: Option<jiff::Timestamp>,
        who: &str,
    ) -> Result<String> {
        let token = format!("rm_{}", secret());
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (hash, role, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .bind(crate::token_hash(&token))
        .bind(role.as_str())
        .bind(label)
        .bind(ms(at))
        .bind(expires.map(ms))
        .fetch_one(&mut *tx)
        .await?;
        let until = match expires {
            // Service time, not a rollout's: in UTC, said so.
            Some(e) => format!("until {}", e.strftime("%Y-%m-%d %H:%M UTC")),
            None => "until revoked".to_string(),
        };
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, '', 'token created', $3)",
        )
        .bind(ms(at))
        .bind(who)
        .bind(format!("token {id} ({label}), {}, valid {until}", role.as_str()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    async fn check_token(&self, token: &str, at: jiff::Timestamp) -> Result<TokenCheck> {
        let hash = crate::token_hash(token);
        let row: Option<(i64, String, String, Option<i64>, Option<i64>, Option<i64>)> =
            sqlx::query_as(
                "SELECT id, role, label, expires_at, revoked_at, last_used_at FROM tokens WHERE hash = $1",
            )
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some((id, role, label, expires, revoked, used)) = row else {
            return Ok(TokenCheck::Unknown);
        };
        let here = || format!("token {id}");
        if let Some(r) = revoked {
            return Ok(TokenCheck::Revoked(from_ms(r, here)?));
        }
        if let Some(e) = expires.filter(|e| *e <= ms(at)) {
            return Ok(TokenCheck::Expired(from_ms(e, here)?));
        }
        let role = Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("{}: role `{role}`", here())))?;
        // Last use to the minute: a write per request would compete with
        // ingest for the write lock. Busy is no reason to refuse the caller.
        if used.is_none_or(|u| u + 60_000 <= ms(at)) {
            let touched = sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
                .bind(ms(at))
                .bind(id)
                .execute(&self.pool)
                .await;
            match touched.map_err(StoreError::from) {
                Err(e) if !e.is_busy() => return Err(e),
                _ => {}
            }
        }
        Ok(TokenCheck::Valid { role, label })
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        type TokenRow = (
            i64,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, role, label, created_at, expires_at, last_used_at, revoked_at
             FROM tokens ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, role, label, created, expires, used, revoked)| {
                let here = || format!("token {id}");
                let at = |v: Option<i64>| v.map(|v| from_ms(v, here)).transpose();
                Ok(TokenInfo {
                    id,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("{}: role `{role}`", here())))?,
                    label,
                    created_at: from_ms(created, here)?,
                    expires_at: at(expires)?,
                    last_used_at: at(used)?,
                    revoked_at: at(revoked)?,
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: i64, who: &str, at: jiff::Timestamp) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let label: Option<String> = sqlx::query_scalar(
            "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING label",
        )
        .bind(ms(at))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(label) = label else {
            return Ok(false);
        };
        // Tokens belong to no rollout: their audit entries go under "".
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, '', 'token revoked', $3)",
        )
        .bind(ms(at))
        .bind(who)
        .bind(format!("token {id} ({label})"))
        .execute(&mut *tx)
        .await?;
        // Its sessions end with it (they are refused without this too).
        sqlx::query("DELETE FROM sessions WHERE token_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn has_tokens(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn create_session(
        &self,
        token: &str,
        hours: u32,
        at: jiff::Timestamp,
    ) -> Result<Option<(String, Session)>> {
        let TokenCheck::Valid { role, label } = self.check_token(token, at).await? else {
            return Ok(None);
        };
        let id = secret();
        let csrf = secret();
        let expires = at + jiff::SignedDuration::from_hours(i64::from(hours));
        sqlx::query(
            "INSERT INTO sessions (hash, role, label, csrf, created_at, expires_ms, token_id)
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT id FROM tokens WHERE hash = $7))",
        )
        .bind(crate::token_hash(&id))
        .bind(role.as_str())
        .bind(&label)
        .bind(&csrf)
        .bind(ms(at))
        .bind(ms(expires))
        .bind(crate::token_hash(token))
        .execute(&self.pool)
        .await?;
        // Expired sessions are of no use: drop them while here.
        sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(ms(at))
            .execute(&self.pool)
            .await?;
        Ok(Some((id, Session { role, label, csrf })))
    }

    async fn check_session(&self, id: &str, at: jiff::Timestamp) -> Result<Option<Session>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT s.role, s.label, s.csrf FROM sessions s JOIN tokens t ON t.id = s.token_id
             WHERE s.hash = $1 AND s.expires_ms > $2
               AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(crate::token_hash(id))
        .bind(ms(at))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .and_then(|(r, label, csrf)| Role::parse(&r).map(|role| Session { role, label, csrf })))
    }

    async fn end_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(crate::token_hash(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Notifications for Backend {
    async fn enqueue(
        &self,
        rollout: &str,
        messages: &[NewMessage],
        at: jiff::Timestamp,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for m in messages {
            added += sqlx::query(
                "INSERT INTO outbox (rollout, key, channel, target, audience, subject, body, html,
                   created_at, state, next_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $9)
                 ON CONFLICT (rollout, key, channel, target) DO NOTHING",
            )
            .bind(rollout)
            .bind(&m.key)
            .bind(&m.channel)
            .bind(&m.target)
            .bind(&m.audience)
            .bind(&m.subject)
            .bind(&m.body)
            .bind(&m.html)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        crate::after_commit();
        Ok(added)
    }

    async fn due_messages(
        &self,
        rollout: &str,
        now: jiff::Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxItem>> {
        sqlx::query(
            "SELECT * FROM outbox WHERE rollout = $1 AND state = 'pending' AND next_ms <= $2
             ORDER BY next_ms, id LIMIT $3",
        )
        .bind(rollout)
        .bind(ms(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_item)
        .collect()
    }

    async fn finish_message(&self, id: i64, result: &Delivery, at: jiff::Timestamp) -> Result<()> {
        let q = match result {
            Delivery::Sent => sqlx::query(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = $1,
                   last_error = NULL WHERE id = $2",
            )
            .bind(ms(at)),
            Delivery::Retry(e, next) => sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_ms = $2
                 WHERE id = $3",
            )
            .bind(e)
            .bind(ms(*next)),
            Delivery::GaveUp(e) => sqlx::query(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $1
                 WHERE id = $2",
            )
            .bind(e),
        };
        q.bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn outbox(&self, rollout: &str, limit: u32) -> Result<Vec<OutboxItem>> {
        sqlx::query("SELECT * FROM outbox WHERE rollout = $1 ORDER BY id DESC LIMIT $2")
            .bind(rollout)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox_item)
            .collect()
    }

    async fn outbox_page(
        &self,
        rollout: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<OutboxItem>, u64)> {
        let items = sqlx::query(
            "SELECT * FROM outbox WHERE rollout = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(rollout)
        .bind(limit.min(i64::MAX as u64) as i64)
        .bind(offset.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_item)
        .collect::<Result<Vec<_>>>()?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE rollout = $1")
            .bind(rollout)
            .fetch_one(&self.pool)
            .await?;
        Ok((items, total as u64))
    }
}

#[async_trait]
impl Watching for Backend {
    async fn enter_scope(
        &self,
        rollout: &str,
        devices: &[String],
        at: jiff::Timestamp,
    ) -> Result<Ingested> {
        self.insert_new(
            "INSERT INTO scope_entries (rollout, device, entered_at) ",
            devices,
            |mut b, d| {
                b.push_bind(rollout).push_bind(d).push_bind(ms(at));
            },
        )
        .await
    }

    async fn scope_entries(&self, rollout: &str) -> Result<Vec<(String, jiff::Timestamp)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT device, entered_at FROM scope_entries WHERE rollout = $1")
                .bind(rollout)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(d, t)| {
                let at = from_ms(t, || format!("scope entry of {d} in {rollout}"))?;
                Ok((d, at))
            })
            .collect()
    }

    async fn alerts(&self, rollout: &str, open_only: bool) -> Result<Vec<Alert>> {
        type AlertRow = (
            String,
            i64,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<AlertRow> = sqlx::query_as(
            "SELECT key, first_seen, kind, severity, text, raised_at, resolved_at, ack_by, ack_at
             FROM alerts WHERE rollout = $1 AND (resolved_at IS NULL OR $2 = 0)
             ORDER BY first_seen, key",
        )
        .bind(rollout)
        .bind(i64::from(open_only))
        .fetch_all(&self.pool)
        .await?;
        // Alerts count in seconds (the core's run state is pure over Unix seconds).
        let sec = |v: i64| v.div_euclid(1000);
        rows.into_iter()
            .map(
                |(key, first_seen, kind, severity, text, raised, resolved, by, ack_at)| {
                    Ok(Alert {
                        severity: Severity::parse(&severity).ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "alert {key} of {rollout}: severity `{severity}`"
                            ))
                        })?,
                        key,
                        kind,
                        text,
                        first_seen: sec(first_seen),
                        raised_at: raised.map(sec),
                        resolved_at: resolved.map(sec),
                        acknowledged: by.zip(ack_at.map(sec)),
                    })
                },
            )
            .collect()
    }

    async fn save_alerts(&self, rollout: &str, alerts: &[Alert]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM alerts WHERE rollout = $1 AND raised_at IS NULL")
            .bind(rollout)
            .execute(&mut *tx)
            .await?;
        for a in alerts {
            sqlx::query(
                "INSERT INTO alerts (rollout, key, first_seen, kind, severity, text, raised_at, resolved_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (rollout, key, first_seen) DO UPDATE SET text = excluded.text,
                   severity = excluded.severity, raised_at = excluded.raised_at,
                   resolved_at = COALESCE(alerts.resolved_at, excluded.resolved_at)",
            )
            .bind(rollout)
            .bind(&a.key)
            .bind(a.first_seen * 1000)
            .bind(&a.kind)
            .bind(a.severity.name())
            .bind(&a.text)
            .bind(a.raised_at.map(|t| t * 1000))
            .bind(a.resolved_at.map(|t| t * 1000))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        crate::after_commit();
        Ok(())
    }

    async fn mark_alert(
        &self,
        rollout: &str,
        key: &str,
        mark: AlertMark,
        who: &str,
        note: &str,
        at: jiff::Timestamp,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let sql = match mark {
            AlertMark::Acknowledge => {
                "UPDATE alerts SET ack_by = $1, ack_at = $2 WHERE rollout = $3 AND key = $4
                 AND raised_at IS NOT NULL AND resolved_at IS NULL"
            }
            AlertMark::Resolve => {
                "UPDATE alerts SET ack_by = COALESCE(ack_by, $1), resolved_at = $2
                 WHERE rollout = $3 AND key = $4 AND raised_at IS NOT NULL AND resolved_at IS NULL"
            }
        };
        let n = sqlx::query(sql)
            .bind(who)
            .bind(ms(at))
            .bind(rollout)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let action = match mark {
            AlertMark::Acknowledge => "alert acknowledged",
            AlertMark::Resolve => "alert resolved",
        };
        let detail = if note.is_empty() {
            key.to_string()
        } else {
            format!("{key}: {note}")
        };
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(at))
        .bind(who)
        .bind(rollout)
        .bind(action)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::after_commit();
        Ok(true)
    }

    async fn record_runstate(&self, rollout: &str, at: jiff::Timestamp, body: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO runstate_samples (rollout, at, body) VALUES ($1, $2, $3)
             ON CONFLICT (rollout, at) DO UPDATE SET body = excluded.body",
        )
        .bind(rollout)
        .bind(ms(at))
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn runstate_samples(
        &self,
        rollout: &str,
        since: jiff::Timestamp,
    ) -> Result<Vec<(jiff::Timestamp, String)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT at, body FROM runstate_samples WHERE rollout = $1 AND at >= $2 ORDER BY at",
        )
        .bind(rollout)
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(t, b)| Ok((from_ms(t, || format!("run-state sample of {rollout}"))?, b)))
            .collect()
    }
}

#[async_trait]
impl Coordination for Backend {
    async fn get_meta(&self, rollout: &str, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM meta WHERE rollout = $1 AND key = $2")
                .bind(rollout)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_meta(&self, rollout: &str, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (rollout, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (rollout, key) DO UPDATE SET value = excluded.value",
        )
        .bind(rollout)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn meta_or_insert(&self, rollout: &str, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO meta (rollout, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (rollout, key) DO NOTHING",
        )
        .bind(rollout)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM meta WHERE rollout = $1 AND key = $2")
                .bind(rollout)
                .bind(key)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: jiff::Timestamp,
        until: jiff::Timestamp,
    ) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
               expires_ms = excluded.expires_ms
             WHERE leases.holder = excluded.holder OR leases.expires_ms <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(ms(until))
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, actor, rollout, action, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(e.at))
        .bind(&e.actor)
        .bind(&e.rollout)
        .bind(&e.action)
        .bind(&e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(&self, rollout: &str) -> Result<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor, rollout, action, detail FROM audit
             WHERE rollout = $1 OR rollout = '' ORDER BY id",
        )
        .bind(rollout)
        .fetch_all(&self.pool)
        .await?;
        audit_entries(rows)
    }

    async fn audit_page(
        &self,
        rollout: &str,
        newest_first: bool,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEntry>, u64)> {
        // A fixed keyword: nothing from the caller is spliced in.
        let order = if newest_first { "DESC" } else { "ASC" };
        let rows: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT id, at, actor, rollout, action, detail FROM audit
             WHERE rollout = $1 OR rollout = '' ORDER BY id {order} LIMIT $2 OFFSET $3"
        ))
        .bind(rollout)
        .bind(limit.min(i64::MAX as u64) as i64)
        .bind(offset.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit WHERE rollout = $1 OR rollout = ''")
                .bind(rollout)
                .fetch_one(&self.pool)
                .await?;
        Ok((audit_entries(rows)?, total as u64))
    }
}

/// One past the rollout's last change number: what an ingest batch gives
/// the latest states it changes (see `Reports::latest_states`). Called in
/// the ingest's write transaction, after whatever orders ingests.
pub(super) async fn next_change(
    conn: &mut <Db as sqlx::Database>::Connection,
    rollout: &str,
) -> Result<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT coalesce(max(seq), 0) + 1 FROM status_latest WHERE rollout = $1",
        )
        .bind(rollout)
        .fetch_one(conn)
        .await?,
    )
}

/// An audit row as read: id, at (Unix ms), actor, rollout, action, detail.
type AuditRow = (i64, i64, String, String, String, String);

fn audit_entries(rows: Vec<AuditRow>) -> Result<Vec<AuditEntry>> {
    rows.into_iter()
        .map(|(id, at, actor, rollout, action, detail)| {
            Ok(AuditEntry {
                at: from_ms(at, || format!("audit entry {id}"))?,
                actor,
                rollout,
                action,
                detail,
            })
        })
        .collect()
}

#[async_trait]
impl TenantApprovals for Backend {
    async fn save_approval(&self, a: &TenantApproval) -> Result<()> {
        let r = &a.request;
        sqlx::query(
            "INSERT INTO tenant_approvals (rollout, request, version, idx, seq, pos, object,
               requested_at, expires_at, status, reason, retired)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (rollout, request) DO UPDATE SET status = excluded.status,
               reason = excluded.reason, expires_at = excluded.expires_at,
               retired = excluded.retired",
        )
        .bind(&a.key.rollout)
        .bind(&r.id)
        .bind(a.key.version as i64)
        .bind(a.key.idx as i64)
        .bind(a.seq as i64)
        .bind(a.pos as i64)
        .bind(&r.object)
        .bind(ms(r.requested))
        .bind(ms(r.expires))
        .bind(r.status.as_str())
        .bind(r.reason.as_deref())
        .bind(a.retired)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tenant_approvals(&self, rollout: &str) -> Result<Vec<TenantApproval>> {
        let rows = sqlx::query(
            "SELECT request, version, idx, seq, pos, object, requested_at, expires_at, status,
               reason, retired
             FROM tenant_approvals WHERE rollout = $1 ORDER BY requested_at, request",
        )
        .bind(rollout)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let key = wave_key(rollout, r);
                let id: String = r.get("request");
                let here = || format!("tenant approval {id} of {rollout}");
                let status: String = r.get("status");
                Ok(TenantApproval {
                    seq: r.get::<i64, _>("seq") as u64,
                    pos: r.get::<i64, _>("pos") as u32,
                    retired: r.get("retired"),
                    request: crate::ApprovalRequest {
                        object: r.get("object"),
                        requested: from_ms(r.get("requested_at"), here)?,
                        expires: from_ms(r.get("expires_at"), here)?,
                        status: crate::ApprovalStatus::parse(&status).ok_or_else(|| {
                            StoreError::Corrupt(format!("{}: status '{status}'", here()))
                        })?,
                        reason: r.get("reason"),
                        id,
                    },
                    key,
                })
            })
            .collect()
    }

    async fn retire_refused_approvals(&self, key: &WaveKey) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tenant_approvals SET retired = TRUE
             WHERE rollout = $1 AND version = $2 AND idx = $3 AND NOT retired
               AND status IN ('rejected', 'cancelled', 'expired')",
        )
        .bind(&key.rollout)
        .bind(key.version as i64)
        .bind(key.idx as i64)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
