//! Round trips and hostile-input checks of the parsers (a cheap, always-run
//! cousin of the `delta` fuzz target).

use super::superblock::{Endianness, FallbackEntry, PartHeader, Superblock};
use super::{ops, parse_superblock, part, varint};
use kiln_store::gvariant::{Value, VarDict};
use kiln_store::object::{Commit, ObjectType};
use kiln_store::Checksum;

fn sample() -> Superblock {
    let commit = Commit {
        metadata: VarDict::new(),
        parent: None,
        related: vec![],
        subject: "s".into(),
        body: String::new(),
        timestamp: 1_609_459_200,
        root_tree: Checksum([1; 32]),
        root_meta: Checksum([2; 32]),
    };
    let commit_bytes = commit.to_bytes();
    let mut metadata = VarDict::new();
    metadata.push("ostree.endianness", Value::Byte(b'l'));
    Superblock {
        metadata,
        timestamp: 1_700_000_000,
        from: Some(Checksum([7; 32])),
        to: Checksum::of(&commit_bytes),
        commit_bytes,
        commit,
        dependencies: vec![],
        parts: vec![PartHeader {
            version: 0,
            checksum: Checksum([9; 32]),
            size: 1234,
            usize: 5678,
            objects: vec![
                (ObjectType::DirTree, Checksum([3; 32])),
                (ObjectType::File, Checksum([4; 32])),
            ],
        }],
        fallback: vec![FallbackEntry {
            objtype: ObjectType::File,
            checksum: Checksum([5; 32]),
            size: 10,
            usize: 20,
        }],
        endianness: Endianness::Little,
        endianness_heuristic: false,
        signatures: None,
    }
}

#[test]
fn superblock_round_trips_in_both_byte_orders() {
    for e in [Endianness::Little, Endianness::Big] {
        let mut sb = sample();
        sb.endianness = e;
        sb.metadata = VarDict::new();
        sb.metadata.push(
            "ostree.endianness",
            Value::Byte(if e == Endianness::Big { b'B' } else { b'l' }),
        );
        let back = parse_superblock(&sb.to_bytes()).unwrap();
        assert_eq!(back.parts, sb.parts);
        assert_eq!(back.fallback, sb.fallback);
        assert_eq!(back.endianness, e);
        assert_eq!(
            (back.from, back.to, back.timestamp),
            (sb.from, sb.to, sb.timestamp)
        );
        assert_eq!(back.to_bytes(), sb.to_bytes());
    }
}

#[test]
fn endianness_heuristic_without_the_key() {
    let mut sb = sample();
    sb.metadata = VarDict::new();
    sb.endianness = if Endianness::host() == Endianness::Little {
        Endianness::Big
    } else {
        Endianness::Little
    };
    sb.parts[0].size = 100;
    sb.parts[0].usize = 1000;
    let back = parse_superblock(&sb.to_bytes()).unwrap();
    assert!(back.endianness_heuristic);
    assert_eq!(back.endianness, sb.endianness);
    assert_eq!(back.parts[0].size, 100);
}

#[test]
fn a_commit_that_does_not_match_to_is_refused() {
    let mut sb = sample();
    sb.to = Checksum([0; 32]);
    assert!(parse_superblock(&sb.to_bytes()).is_err());
}

#[test]
fn mutated_superblocks_never_panic() {
    let bytes = sample().to_bytes();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let _ = parse_superblock(&b);
        }
        let _ = parse_superblock(&bytes[..i]);
    }
}

fn sample_payload() -> Vec<u8> {
    let mut ops_b = Vec::new();
    let blob = b"0123456789abcdef".to_vec();
    ops_b.push(ops::OP_OPEN_SPLICE_AND_CLOSE);
    for v in [4, 0] {
        varint::write(&mut ops_b, v);
    }
    ops_b.push(ops::OP_OPEN_SPLICE_AND_CLOSE);
    for v in [0, 0, 6, 4] {
        varint::write(&mut ops_b, v);
    }
    part::encode_payload(
        &[(0, 0, 0o100644)],
        &[vec![(b"user.a".to_vec(), b"b".to_vec())]],
        &blob,
        &ops_b,
    )
}

#[test]
fn payload_and_ops_decode_and_reject_hostile_streams() {
    let objs = [
        (ObjectType::DirMeta, Checksum([1; 32])),
        (ObjectType::File, Checksum([2; 32])),
    ];
    let raw = sample_payload();
    let p = part::parse_payload(&raw).unwrap();
    assert_eq!(p.modes, vec![(0, 0, 0o100644)]);
    let (jobs, stats) = ops::decode(&p, &objs).unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(stats.openspliceclose, 2);
    // too few / too many objects, wrong types
    assert!(ops::decode(&p, &objs[..1]).is_err());
    assert!(ops::decode(&p, &[objs[1], objs[0]]).is_err());
    for i in 0..raw.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = raw.clone();
            b[i] ^= flip;
            if let Ok(p) = part::parse_payload(&b) {
                let _ = ops::decode(&p, &objs);
            }
        }
        if let Ok(p) = part::parse_payload(&raw[..i]) {
            let _ = ops::decode(&p, &objs);
        }
    }
    // compression byte
    assert!(part::decompress_part(&[b'q', 1, 2]).is_err());
    assert!(part::decompress_part(&[b'x', 1, 2, 3]).is_err());
    assert!(part::decompress_part(&[]).is_err());
}
