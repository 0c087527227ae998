//! Replays every input stored under `test_data/fuzz-regressions/<target>/`: each was once a fuzz
//! finding (or a seed worth keeping), and must now pass the same checks as the fuzz target.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/fuzz-regressions").join(target);
    let mut n_files = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && path.file_name().is_some_and(|name| name != ".gitkeep"))
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).expect("regression file is readable");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "fuzz regression {} fails again", path.display());
        n_files += 1;
    }
    n_files
}

#[test]
fn mapping_regressions() {
    replay("mapping", tenantsync_expr::fuzzing::check_mapping);
}

#[test]
fn scoping_regressions() {
    replay("scoping", tenantsync_expr::fuzzing::check_scoping);
}

#[test]
fn rule_regressions() {
    replay("rule", tenantsync_expr::fuzzing::check_rule);
}
