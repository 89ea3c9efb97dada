//! Parse arbitrary Flatpak `metadata` / override keyfiles (`;` lists, `!`
//! negation, localized keys). Must never panic; whatever parses must write
//! its permissions out as a keyfile that reads back to the same
//! permissions, and merging it over itself must change nothing.
#![no_main]

use kiln_apps::context::Context;
use kiln_apps::Metadata;
use kiln_store::keyfile::KeyFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(md) = Metadata::parse_bytes(data) {
        assert_eq!(md.text.as_bytes(), data);
        let _ = md.get_locale("name", "de_DE.UTF-8");
        roundtrip(&md.context);
    }
    // The same bytes as an override file.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kf) = KeyFile::parse(text) else { return };
    if let Ok(c) = Context::from_keyfile(&kf) {
        roundtrip(&c);
    }
});

fn roundtrip(c: &Context) {
    let text = c.to_keyfile_text();
    let kf = KeyFile::parse(&text).expect("written permissions do not parse");
    let back = Context::from_keyfile(&kf).expect("written permissions are refused");
    assert_eq!(&back, c, "permissions changed through a write: {text}");
    let mut m = c.clone();
    m.merge(c);
    assert_eq!(&m, c);
}
