//! The README's "Five-minute tour" as a test: every ```console block of that
//! section runs, in order, in one fresh temporary directory, each `$ ` line
//! through `sh -c` with the built `ringmaster` first on the PATH, and its
//! output (stdout, then stderr) is compared with the lines shown under it.
//!
//! In the expected output, a line `...` stands for any number of lines and
//! `[..]` inside a line for any text (times, paths, tokens). A command that
//! shows no output may print anything. A command is expected to exit 0
//! unless its line ends with `# exit N`.

use std::path::Path;
use std::process::Command;

struct Step {
    /// Line in the README, for messages.
    line: usize,
    command: String,
    expected: Vec<String>,
    exit: i32,
}

/// The steps of the console blocks between `## Five-minute tour` and the next `## `.
fn tour_steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let (mut in_tour, mut in_block) = (false, false);
    for (i, line) in readme.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            in_tour = h.trim() == "Five-minute tour";
            continue;
        }
        if !in_tour {
            continue;
        }
        if line.starts_with("```") {
            in_block = !in_block && line.trim() == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            let (command, exit) = match cmd.rsplit_once("# exit ") {
                Some((c, n)) => (c.trim_end(), n.trim().parse().expect("# exit N")),
                None => (cmd, 0),
            };
            steps.push(Step {
                line: i + 1,
                command: command.to_string(),
                expected: Vec::new(),
                exit,
            });
        } else if let Some(s) = steps.last_mut() {
            s.expected.push(line.to_string());
        }
    }
    steps
}

/// Whether `line` matches `pattern`, where `[..]` matches any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(p);
        }
        match rest.find(p) {
            Some(at) => rest = &rest[at + p.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether `lines` match `expected`, where a `...` line matches any run of lines.
fn lines_match(expected: &[String], lines: &[&str]) -> bool {
    match expected.split_first() {
        None => lines.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..]))
        }
        Some((e, rest)) => lines
            .split_first()
            .is_some_and(|(l, more)| line_matches(e, l) && lines_match(rest, more)),
    }
}

#[test]
fn matching_elides_lines_and_text() {
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "b", "c", "z"]));
    assert!(lines_match(&e(&["a", "...", "z"]), &["a", "z"]));
    assert!(!lines_match(&e(&["a", "z"]), &["a", "b", "z"]));
    assert!(!lines_match(&e(&["a"]), &["a", "b"]));
    assert!(line_matches("took [..] s", "took 1.2 s"));
    assert!(line_matches("[..]done", "2027-01-01 done"));
    assert!(!line_matches("took [..] s", "took 1.2 ms!"));
    assert!(line_matches("a [..] b [..] c", "a 1 b 2 c"));
}

#[test]
fn the_readme_tour_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = tour_steps(&readme);
    assert!(steps.len() > 10, "the tour has {} commands", steps.len());
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_ringmaster"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for s in &steps {
        let out = Command::new("sh")
            .arg("-c")
            .arg(&s.command)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("RUST_LOG")
            .env_remove("RINGMASTER_DATABASE_URL")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            out.status.code(),
            Some(s.exit),
            "README.md:{}: `{}` exited {:?}, not {}; it printed:\n{text}",
            s.line,
            s.command,
            out.status.code(),
            s.exit
        );
        if !s.expected.is_empty() {
            assert!(
                lines_match(&s.expected, &lines),
                "README.md:{}: `{}` printed\n{text}\nwhich does not match\n{}",
                s.line,
                s.command,
                s.expected.join("\n")
            );
        }
    }
}
