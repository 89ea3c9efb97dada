//! Parse arbitrary GVariant text; whatever parses must print, and the
//! annotated print must parse back to a value of the same type that prints
//! the same. (The plain print may read back as other types: `[byte 1]`
//! prints as `[0x01]`, which reads back as an `ai`; GLib does the same.)
#![no_main]

use kiln_store::gvariant::text::{parse, print};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(v) = parse(text) else { return };
    let printed = print(&v, true);
    let back = match parse(&printed) {
        Ok(back) => back,
        Err(e) => panic!("print(v, true) does not parse: {printed:?} ({e}) from {text:?}"),
    };
    assert_eq!(
        back.type_of(),
        v.type_of(),
        "type changed through {printed:?}"
    );
    assert_eq!(
        print(&back, true),
        printed,
        "printing is not stable (from {text:?})"
    );
    let _ = parse(&print(&v, false));
});
