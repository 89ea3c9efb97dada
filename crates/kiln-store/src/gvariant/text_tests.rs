use super::*;

#[test]
fn smoke() {
    let v = parse("{'a': <uint64 5>}").unwrap();
    assert_eq!(print(&v, true), "{'a': <uint64 5>}");
}
