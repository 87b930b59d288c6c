//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same harnesses the cargo-fuzz targets run, so the corpus keeps guarding the
//! parsers on the stable toolchain, in `cargo test`.

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

#[test]
fn every_committed_corpus_input_passes_its_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0;
    for (name, run) in harness::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir);
        assert!(entries.is_ok(), "no corpus for target `{name}` at {dir:?}");
        let mut count = 0;
        for entry in entries.into_iter().flatten().flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                run(&data);
                count += 1;
            }
        }
        assert!(count > 0, "the corpus of `{name}` is empty");
        replayed += count;
    }
    assert!(replayed >= harness::TARGETS.len());
}
