//! Parse arbitrary key files; what parses must write out text that reads
//! back to the same keys and values and writes out the same again.
#![no_main]

use kiln_store::keyfile::KeyFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kf) = KeyFile::parse(text) else { return };
    let out = kf.to_string();
    let back = KeyFile::parse(&out).expect("written key file does not read back");
    assert_eq!(back.to_string(), out, "writing is not stable");
    let groups: Vec<_> = kf.groups().collect();
    assert_eq!(back.groups().collect::<Vec<_>>(), groups);
    for g in groups {
        assert_eq!(back.keys(g), kf.keys(g));
        for k in kf.keys(g) {
            assert_eq!(back.get_raw(g, k), kf.get_raw(g, k));
            assert_eq!(back.get(g, k), kf.get(g, k));
            assert_eq!(back.get_list(g, k), kf.get_list(g, k));
            let _ = kf.get_bool(g, k);
            let _ = kf.get_locale(g, k, "de_DE.UTF-8@euro");
        }
    }
    // Setting what we read gives the same file.
    let mut copy = kf.clone();
    for g in kf.groups() {
        for k in kf.keys(g) {
            if let (Some(v), Ok(Some(_))) = (kf.get(g, k), kf.get_checked(g, k)) {
                if copy.try_set(g, k, v).is_ok() {
                    assert_eq!(copy.get(g, k), Some(v));
                }
            }
        }
    }
});
