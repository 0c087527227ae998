//! Replays every input stored under `test_data/fuzz-regressions/<target>/`: each was once a fuzz finding (or a
//! seed worth keeping), and must now pass the same checks as the fuzz target (`crates/graph/FUZZING.md`).

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/fuzz-regressions").join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    entries.sort();
    for path in &entries {
        let data = std::fs::read(path).expect("regression file is readable");
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "fuzz regression {} fails again", path.display());
    }
    entries.len()
}

#[test]
fn scim_filter_regressions() {
    assert!(replay("scim_filter", tenantsync_scim::fuzzing::check_filter) > 0);
}

#[test]
fn scim_path_regressions() {
    assert!(replay("scim_path", tenantsync_scim::fuzzing::check_path) > 0);
}
