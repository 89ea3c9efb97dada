//! Decode arbitrary bytes as each OSTree object type (and a few more);
//! whatever decodes must encode and decode back to the same value.
//!
//! The first byte picks the type, the rest is the data.
#![no_main]

use kiln_store::gvariant::{decode, encode, Type, Value};
use libfuzzer_sys::fuzz_target;

const TYPES: &[&str] = &[
    "(a{sv}aya(say)sstayay)", // commit
    "(a(say)a(sayay))",       // dirtree
    "(uuua(ayay))",           // dirmeta
    "(tuuuusa(ayay))",        // file header
    "a{sv}",                  // commit metadata, summary metadata
    "(a(s(taya{sv}))a{sv})",  // summary
    "(ayaaya(uayttay))",      // static delta superblock-ish
    "mav",
    "(yqnuxthdbog)",
    "v",
];

/// Equality that treats NaN as equal to itself (a double's bits survive
/// the round trip; `==` on NaN does not).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Variant(x), Value::Variant(y)) => same(x, y),
        (Value::Array(t, xs), Value::Array(u, ys)) => {
            t == u && xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (Value::Tuple(xs), Value::Tuple(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (Value::Maybe(t, x), Value::Maybe(u, y)) => {
            t == u
                && match (x, y) {
                    (Some(x), Some(y)) => same(x, y),
                    (None, None) => true,
                    _ => false,
                }
        }
        (Value::DictEntry(k, v), Value::DictEntry(l, w)) => same(k, l) && same(v, w),
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let Some(tystr) = TYPES.get(usize::from(pick) % TYPES.len()) else {
        return;
    };
    let Ok(ty) = Type::parse(tystr) else { return };
    let Ok(v) = decode(&ty, data) else { return };
    assert_eq!(v.type_of(), ty, "decoded value has the wrong type");
    let bytes = encode(&v);
    let back = decode(&ty, &bytes).expect("re-encoded value does not decode");
    assert!(same(&back, &v), "decode(encode(v)) != v");
    // Normal form is a fixed point.
    assert_eq!(encode(&back), bytes, "encoding is not stable");
});
