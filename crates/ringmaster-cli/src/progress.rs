//! Progress on stderr for work that takes over a second: one mechanism for
//! every command (gen, import, snapshot, conflicts, plan, bench).
//!
//! The work runs on the caller's thread and counts into a
//! [`Progress`]; a display thread draws it with indicatif once a second has
//! passed, and only when stderr is a terminal, so pipes, files and tests
//! see exactly the output they saw before.

use ringmaster_core::progress::Progress;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Work shorter than this shows nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// Runs `work`, drawing what it counts into `progress` while it runs.
pub fn watch<T>(progress: &Arc<Progress>, work: impl FnOnce() -> T) -> T {
    if !shown() {
        return work();
    }
    let (done, wait) = mpsc::channel::<()>();
    let seen = progress.clone();
    let drawer = std::thread::spawn(move || draw(&seen, &wait));
    let out = work();
    drop(done);
    let _ = drawer.join();
    out
}

/// Runs `work` as one step named `what` (a spinner with the time spent).
pub fn step<T>(what: &'static str, work: impl FnOnce() -> T) -> T {
    let p = Arc::new(Progress::default());
    p.begin(what, "", 0);
    watch(&p, work)
}

fn shown() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("RINGMASTER_NO_PROGRESS").is_none_or(|v| v.is_empty())
}

/// The display thread: waits a second, then redraws ten times a second
/// until the work ends (its sender is dropped).
fn draw(p: &Progress, wait: &mpsc::Receiver<()>) {
    if wait.recv_timeout(QUIET_FOR) != Err(mpsc::RecvTimeoutError::Timeout) {
        return;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(10),
    );
    let mut shape = None;
    loop {
        let s = p.seen();
        let counted = s.total > 0;
        if shape != Some((s.step, counted)) {
            shape = Some((s.step, counted));
            bar.set_style(style(counted, s.unit));
            bar.set_message(s.step);
            bar.reset_elapsed();
        }
        if counted {
            bar.set_length(s.total);
            bar.set_position(s.done.min(s.total));
        } else {
            bar.tick();
        }
        if wait.recv_timeout(Duration::from_millis(100)) != Err(mpsc::RecvTimeoutError::Timeout) {
            break;
        }
    }
    bar.finish_and_clear();
}

fn style(counted: bool, unit: &str) -> indicatif::ProgressStyle {
    let template = match (counted, unit) {
        (false, _) => "{spinner} {msg} {elapsed}",
        (true, "bytes") => "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes}, {eta} left",
        (true, _) => "{msg} [{wide_bar}] {human_pos}/{human_len}, {eta} left",
    };
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
        .progress_chars("=> ")
}
