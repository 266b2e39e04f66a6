//! The default detector on the Numenta Anomaly Benchmark (`../shared/nab`, beside the checkout
//! in CI): the floors the detection issue set, held as a regression guard. Outside CI, without
//! the corpus, the test says so and passes.

use zscope_core::DetectorConfig;
use zscope_host::batch::eval::{NabCandidate, nab_run};
use zscope_host::batch::nab::Corpus;
use zscope_tests::workspace_root;

#[test]
fn the_defaults_hold_their_nab_scores() {
    let dir = std::env::var_os("ZSCOPE_NAB_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/nab"));
    if !dir.join("labels/combined_windows.json").exists() {
        let msg = format!("no NAB corpus at {} (set ZSCOPE_NAB_DIR)", dir.display());
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED {msg}");
        return;
    }
    let corpus = Corpus::load(&dir).expect("the NAB corpus loads");
    assert_eq!((corpus.files.len(), corpus.windows), (58, 116));
    let run = nab_run(&corpus, NabCandidate::Detector(DetectorConfig::default()))
        .expect("the default config is valid");
    let standard = |list: &[zscope_host::batch::nab::ProfileScore]| {
        list.iter()
            .find(|p| p.profile == "standard")
            .expect("a standard profile")
            .clone()
    };
    let (optimised, configured) = (standard(&run.optimised), standard(&run.configured));
    assert!(optimised.normalized >= 60.0, "{optimised:?}");
    assert!(configured.normalized >= 45.0, "{configured:?}");
    // No ties: at most 0.1 % of scored rows share the top score.
    assert!(run.ties.0 * 1000 <= run.ties.1, "{:?}", run.ties);
    eprintln!(
        "NAB standard {:.2} optimised, {:.2} as configured",
        optimised.normalized, configured.normalized
    );
}
