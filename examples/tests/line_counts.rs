//! docs/axum.md's table of line counts is true: each app's lines, without
//! blank lines and comments, as the guide says they are counted.

use std::{fs, path::Path};

fn code_lines(bin: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/bin/{bin}.rs"));
    let source = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    source
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .count()
}

#[test]
fn the_guide_counts_the_lines_of_the_apps() {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/axum.md");
    let guide = fs::read_to_string(&guide).expect("docs/axum.md");
    for (app, twin) in [
        ("standalone", "axum_only_standalone"),
        ("axum_embedded", "axum_only_embedded"),
        ("graceful", "axum_only_graceful"),
    ] {
        let row = guide
            .lines()
            .find(|line| line.starts_with(&format!("| `{app}`")))
            .unwrap_or_else(|| panic!("no row for {app} in docs/axum.md"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (rill, axum_only) = (cells[2], cells[3]);
        let want = (code_lines(app), code_lines(twin));
        assert_eq!(
            (rill.parse().ok(), axum_only.parse().ok()),
            (Some(want.0), Some(want.1)),
            "docs/axum.md's row for {app} says {rill} / {axum_only}; the files have {} / {}",
            want.0,
            want.1
        );
        assert!(want.0 < want.1, "{app}: the rill version is not shorter");
    }
}
