//! Arbitrary text through the `check` front end: `input::load_text` (YAML streams, JSON, Lists)
//! then `check::check_loaded` and the text and SARIF reports. No panic; every input error
//! names its file and says why. The last byte picks the options (forced JSON, controller
//! version, explanations) and stays part of the text, so manifests work as seeds unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollout_guard::check::{check_loaded, sarif, text};
use rollout_guard::finding::Severity;
use rollout_guard::input::{Loaded, load_text};
use rollout_guard::rules::Config;
use rollout_guard::version::ControllerVersion;

fuzz_target!(|data: &[u8]| {
    let flags = data.last().copied().unwrap_or(0);
    let Ok(text_in) = std::str::from_utf8(data) else {
        return;
    };
    let mut loaded = Loaded::default();
    load_text("fuzz.yaml", text_in, flags & 1 == 1, &mut loaded);
    for e in &loaded.errors {
        assert_eq!(e.file, "fuzz.yaml");
        assert!(
            !e.message.trim().is_empty(),
            "error without a message: {e:?}"
        );
        assert!(e.document.is_none_or(|d| d >= 1), "{e:?}");
        assert!(e.line.is_none_or(|l| l >= 1), "{e:?}");
    }
    for (loc, _) in &loaded.objects {
        assert_eq!(loc.file, "fuzz.yaml");
        assert!(loc.document >= 1 && loc.line >= 1, "{loc:?}");
    }
    let cfg = Config {
        version: if flags & 2 == 0 {
            ControllerVersion::DEFAULT
        } else {
            ControllerVersion::new(1, 8, 1)
        },
        explain: flags & 4 == 0,
    };
    let report = check_loaded(loaded, Loaded::default(), &cfg);
    for f in &report.findings {
        assert!(!f.finding.message.is_empty(), "{:?}", f.finding);
    }
    let _ = text(&report, flags & 4 == 4, Severity::Warning);
    let _ = serde_json::to_string(&sarif(&report)).unwrap();
    let _ = serde_json::to_string(&report).unwrap();
});
