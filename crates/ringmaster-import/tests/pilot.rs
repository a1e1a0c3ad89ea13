use ringmaster_core::model::{DeviceAttr, UserAttr};
use ringmaster_core::org::{NO_ROW, Org};
use ringmaster_core::pilot::{Dimension, barred, it_staff_devices, select, size_for};
use roaring::RoaringBitmap;

fn org(devices: u32, seed: u64) -> Org {
    let d = tempfile::tempdir().unwrap();
    ringmaster_gen::generate(d.path(), &ringmaster_gen::Options::new(devices, seed)).unwrap();
    ringmaster_import::load(&[d.path().to_path_buf()])
        .unwrap()
        .org
}

#[test]
fn pilot_mirrors_production_without_vips() {
    // Two 20,000-device organizations: pilots of 200 (1 %). A 6,000-device
    // one: a 60-device pilot, where shares move in steps of 1/60, so the TVD
    // bound is not asked of it; coverage and barring are.
    for (devices, seed) in [(20_000, 11), (20_000, 5), (6_000, 5)] {
        let o = org(devices, seed);
        let all: RoaringBitmap = (0..o.devices.rows).collect();
        let size = size_for(all.len(), 0.01, 50);
        let p = select(
            &o,
            &all,
            size,
            &Dimension::PILOT,
            "rollout-2026-q4",
            &it_staff_devices(&o),
            &RoaringBitmap::new(),
        );
        assert_eq!(p.size, size);
        for d in &p.devices {
            assert!(
                barred(&o, d).is_none(),
                "barred device {} in the pilot",
                o.device_label(d)
            );
            let u = o.device_user[d as usize];
            if u != NO_ROW {
                assert_ne!(o.user(UserAttr::IsVip, u), Some("true"));
                assert_ne!(o.user(UserAttr::Department, u), Some("Executive"));
            }
            assert_ne!(o.device(DeviceAttr::IsLab, d), Some("true"));
        }
        for dim in &p.dimensions {
            if devices >= 20_000 {
                assert!(
                    dim.tvd <= 0.05,
                    "{devices} devices: {} TVD {:.3}",
                    dim.dimension.name(),
                    dim.tvd
                );
            }
            assert!(
                dim.missing.is_empty(),
                "{devices} devices: {} strata missing: {:?}",
                dim.dimension.name(),
                dim.missing
            );
        }
        assert!(
            p.barred > 0,
            "the generated org has VIPs and lab devices to bar"
        );
        assert!(
            (p.detectable_failure_rate - (1.0 - 0.05f64.powf(1.0 / size as f64))).abs() < 1e-12
        );
    }
}

#[test]
fn pilot_is_stable_per_plan_and_widening_keeps_members() {
    let o = org(5_000, 3);
    let all: RoaringBitmap = (0..o.devices.rows).collect();
    let none = RoaringBitmap::new();
    let a = select(&o, &all, 60, &Dimension::PILOT, "plan-a", &none, &none);
    let again = select(&o, &all, 60, &Dimension::PILOT, "plan-a", &none, &none);
    assert_eq!(a.devices, again.devices, "same plan, same pilot");
    let b = select(&o, &all, 60, &Dimension::PILOT, "plan-b", &none, &none);
    assert_ne!(a.devices, b.devices, "another plan draws another pilot");
    let wider = select(
        &o,
        &all,
        150,
        &Dimension::PILOT,
        "plan-a",
        &none,
        &a.devices,
    );
    assert_eq!(wider.size, 150);
    assert!(
        a.devices.is_subset(&wider.devices),
        "widening never drops who is in"
    );
    // IT staff go first when preferred.
    let it = it_staff_devices(&o);
    let pref = select(&o, &all, 60, &[Dimension::Platform], "plan-a", &it, &none);
    assert!(pref.devices.intersection_len(&it) > a.devices.intersection_len(&it));
}
