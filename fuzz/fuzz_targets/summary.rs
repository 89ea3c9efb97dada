//! Parse arbitrary summaries (as a hostile server would send them); what
//! parses must list its deltas without panicking, encode back to bytes
//! that parse to the same summary, and render `--view` text.
#![no_main]

use kiln_remote::summary::Summary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = Summary::parse(data) else { return };
    let _ = s.static_deltas();
    let _ = kiln_remote::summary::view(&s);
    for r in &s.refs {
        assert!(s.lookup(&r.name).is_some());
        let _ = r.timestamp();
    }
    let again = Summary::parse(&s.to_bytes()).expect("encoded summary does not parse");
    // (compare encodings: a NaN double in the metadata is not equal to itself)
    assert_eq!(again.to_bytes(), s.to_bytes());
});
