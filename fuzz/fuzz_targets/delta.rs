//! Static delta parsers: superblock, part payload and opcode stream.
//! Everything a server or a delta file hands kiln goes through these
//! before any byte is used; none may panic.
#![no_main]

use kiln_remote::delta::{ops, parse_superblock, part, superblock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = parse_superblock(data) {
        let _ = sb.to_bytes();
        for i in 0..sb.parts.len() {
            let _ = sb.inline_part(i);
        }
        let _ = sb.detached_metadata();
    }
    // The same bytes as an (uncompressed) part payload, decoded against an
    // object list taken from their head.
    if let Ok(p) = part::parse_payload(data) {
        let n = data.first().map(|b| (*b % 8) as usize * 33).unwrap_or(0);
        let objs =
            superblock::parse_object_list(data.get(..n).unwrap_or_default()).unwrap_or_default();
        let _ = ops::decode(&p, &objs);
    }
    let _ = part::decompress_part(data);
});
