//! The sans-IO contract (BRIEF §3), checked on the source: the protocol crates never read a
//! clock, spawn a thread, take a lock, draw OS randomness, or touch files or the network.
//! Clippy's `disallowed-methods`/`disallowed-types` (clippy.toml) enforce the same at the call
//! sites it can see; this test also catches imports and macros.

use std::path::{Path, PathBuf};

/// The crates bound by the contract. A crate listed here that does not exist yet is skipped;
/// every crate that exists must be listed (checked below).
const CORE_CRATES: &[&str] = &["demls-wire", "demls-consensus", "demls-core"];

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime",
    "UNIX_EPOCH",
    "std::thread",
    "thread::spawn",
    "Mutex",
    "RwLock",
    "OsRng",
    "thread_rng",
    "getrandom",
    "std::fs",
    "std::net",
    "tokio",
    "async_std",
    "async fn",
    ".await",
    "std::env",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The forbidden patterns on non-comment lines of `source`, with their line numbers.
fn violations(source: &str) -> Vec<(usize, &'static str)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let t = line.trim_start();
            !(t.starts_with("//") || t.starts_with("/*") || t.starts_with('*'))
        })
        .flat_map(|(i, line)| {
            FORBIDDEN
                .iter()
                .filter(move |p| line.contains(*p))
                .map(move |p| (i + 1, *p))
        })
        .collect()
}

#[test]
fn core_crates_make_no_clock_thread_lock_entropy_or_io_calls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut checked = 0;
    for name in CORE_CRATES {
        let src = root.join("crates").join(name).join("src");
        if !src.exists() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            checked += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, pattern) in violations(&text) {
                found.push(format!("{}:{line}: {pattern}", file.display()));
            }
        }
    }
    assert!(
        checked >= 2,
        "no core sources found under {}",
        root.display()
    );
    assert!(
        found.is_empty(),
        "forbidden calls in the sans-IO core:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_guard_detects_what_it_forbids() {
    let bad =
        "fn f() {\n    let t = std::time::Instant::now();\n}\n// Mutex in a comment is fine\n";
    assert_eq!(violations(bad), vec![(2, "Instant::now")]);
    assert!(violations("let m = Mutex::new(0);").contains(&(1, "Mutex")));
}

#[test]
fn every_protocol_crate_is_guarded() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    for entry in std::fs::read_dir(crates).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        // The simulator is a host: it may read a clock for CPU-time reporting.
        if name == "demls-sim" {
            continue;
        }
        assert!(
            CORE_CRATES.contains(&name.as_str()),
            "crate {name} is not covered by the sans-IO guard"
        );
    }
}
