use super::*;

fn rt(tystr: &str, v: &Value) -> Vec<u8> {
    let ty = Type::parse(tystr).unwrap();
    assert_eq!(v.type_of(), ty);
    let bytes = encode(v);
    assert_eq!(&decode(&ty, &bytes).unwrap(), v, "round trip of {tystr}");
    bytes
}

#[test]
fn type_strings_round_trip() {
    for s in [
        "(a{sv}aya(say)sstayay)",
        "(a(say)a(sayay))",
        "(uuua(ayay))",
        "(tuuuusa(ayay))",
        "a{sv}",
        "mas",
        "()",
    ] {
        assert_eq!(Type::parse(s).unwrap().to_string(), s);
    }
    for bad in ["", "a", "(", "{vs}", "(s", "z", "ss"] {
        assert!(Type::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn known_encodings() {
    // 's' "ab" -> "ab\0"
    assert_eq!(rt("s", &Value::str("ab")), b"ab\0");
    // (ss) -> "a\0b\0" + offset 2
    let v = Value::Tuple(vec![Value::str("a"), Value::str("b")]);
    assert_eq!(rt("(ss)", &v), b"a\0b\0\x02");
    // as ["a","bc"] -> "a\0bc\0" + offsets [2,5]
    let v = Value::Array(Type::String, vec![Value::str("a"), Value::str("bc")]);
    assert_eq!(rt("as", &v), b"a\0bc\0\x02\x05");
    // v of u32 7: 4 bytes + \0 + 'u'
    let v = Value::Variant(Box::new(Value::Uint32(7)));
    assert_eq!(rt("v", &v), b"\x07\0\0\0\0u");
    // (uy) fixed size 8 with padding
    let v = Value::Tuple(vec![Value::Uint32(1), Value::Byte(2)]);
    assert_eq!(rt("(uy)", &v), b"\x01\0\0\0\x02\0\0\0");
    // empty array is empty
    assert_eq!(rt("as", &Value::Array(Type::String, vec![])), b"");
}

#[test]
fn vardict_round_trip() {
    let mut d = VarDict::new();
    d.push("version", Value::str("1.0"));
    d.push("n", Value::Int32(42));
    d.push(
        "ostree.ref-binding",
        Value::Array(Type::String, vec![Value::str("main")]),
    );
    let v = d.to_value();
    let bytes = rt("a{sv}", &v);
    let back =
        VarDict::from_value(&decode(&Type::parse("a{sv}").unwrap(), &bytes).unwrap()).unwrap();
    assert_eq!(back, d);
}

#[test]
fn large_containers_use_wider_offsets() {
    let big: Vec<Value> = (0..300).map(|i| Value::str(format!("entry-{i}"))).collect();
    rt("as", &Value::Array(Type::String, big));
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let ty = Type::parse("(a{sv}aya(say)sstayay)").unwrap();
    for data in [&b""[..], b"\xff", b"\x00\x00\x00\xff\xff", b"abc\xff\xfe"] {
        let _ = decode(&ty, data);
    }
    assert!(decode(&Type::String, b"abc").is_err());
    assert!(decode(&Type::String, b"a\0c\0").is_err());
    assert!(decode(&Type::Variant, b"\0((((").is_err());
}
