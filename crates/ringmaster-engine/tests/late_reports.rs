//! The watch reads what changed in the store since its last check, not what
//! was stamped since then: a status export ingested days late still counts.

use ringmaster_core::alerts::DEFAULT_RULES;
use ringmaster_core::conflicts::ConflictReport;
use ringmaster_engine::ingest::Directory;
use ringmaster_engine::watch::{Inputs, Watch};
use ringmaster_store::{DeviceState, StatusReport};
use roaring::RoaringBitmap;

const H: i64 = 3600;
const D: i64 = 24 * H;

fn ts(t: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t).unwrap()
}

#[tokio::test]
async fn a_report_ingested_days_after_its_stamp_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ringmaster_gen::Options::new(400, 3);
    opts.policies = Some(4);
    ringmaster_gen::generate(&dir.path().join("org"), &opts).unwrap();
    let org = ringmaster_import::load(&[dir.path().join("org")])
        .unwrap()
        .org;
    let directory = Directory::new(&org);
    let policy = org.policies[0].id.clone();
    let population: RoaringBitmap = (0..100).collect();
    let conflicts = ConflictReport::default();
    let levels = ringmaster_engine::runstate::default_levels();
    let rolled_out = vec![policy.clone()];
    let t0: i64 = "2027-03-01T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let inputs = Inputs {
        org: &org,
        dir: &directory,
        generation: 0,
        population: &population,
        applied: &[],
        levels: &levels,
        rules: &DEFAULT_RULES,
        conflicts: &conflicts,
        rolled_out: &rolled_out,
        settled_at: Some(t0 - D),
    };
    let report = |d: u32, at: i64| StatusReport {
        device: org.device_id(d).unwrap().to_string(),
        policy: policy.clone(),
        state: DeviceState::Succeeded,
        reported_at: ts(at),
        wave: Some(0),
    };
    let store = ringmaster_store::open("sqlite::memory:").await.unwrap();
    let first: Vec<StatusReport> = (0..90).map(|d| report(d, t0 - H)).collect();
    store.ingest_status("late", &first).await.unwrap();

    let mut watch = Watch::new("late");
    let checked = watch.check(store.as_ref(), &inputs, ts(t0)).await.unwrap();
    assert_eq!(checked.state.succeeded, 90);

    // Four hours on, ten devices' reports arrive, stamped three days before
    // the last check (an export someone ingested late).
    let late: Vec<StatusReport> = (90..100).map(|d| report(d, t0 - 3 * D)).collect();
    store.ingest_status("late", &late).await.unwrap();
    let checked = watch
        .check(store.as_ref(), &inputs, ts(t0 + 4 * H))
        .await
        .unwrap();
    assert_eq!(checked.state.succeeded, 100);
    assert_eq!(checked.state.unreported, 0);

    // The same ten sent again change nothing.
    store.ingest_status("late", &late).await.unwrap();
    let checked = watch
        .check(store.as_ref(), &inputs, ts(t0 + 8 * H))
        .await
        .unwrap();
    assert_eq!(checked.state.succeeded, 100);
}
