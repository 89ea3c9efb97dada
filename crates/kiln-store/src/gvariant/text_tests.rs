//! Tests of the GVariant text format. Every expected string below was
//! printed by GLib 2.74 itself (`GLib.Variant.parse (None, text)` and
//! `Variant.print_ ()` through PyGObject, or `ostree show`/`ls -X`).

use super::*;
use crate::gvariant::{decode, encode, VarDict};

type Expect = Result<(&'static str, &'static str, &'static str), &'static str>;

/// (text, Ok((type, print(v, true), print(v, false))) or Err(GLib's message)).
/// An empty message: GLib gives no error but fails an assertion.
#[rustfmt::skip]
const ORACLE: &[(&str, Expect)] = &[
    ("0", Ok(("i", "0", "0"))),
    ("-1", Ok(("i", "-1", "-1"))),
    ("+7", Ok(("i", "7", "7"))),
    ("2147483647", Ok(("i", "2147483647", "2147483647"))),
    ("2147483648", Err("number out of range for type 'i'")),
    ("-2147483648", Ok(("i", "-2147483648", "-2147483648"))),
    ("-2147483649", Err("number out of range for type 'i'")),
    ("-", Ok(("i", "0", "0"))),
    ("+", Err("invalid character in number")),
    ("--5", Err("number out of range for type 'i'")),
    ("-+5", Ok(("i", "-5", "-5"))),
    ("010", Ok(("i", "8", "8"))),
    ("08", Err("invalid character in number")),
    ("0x10", Ok(("i", "16", "16"))),
    ("0X1f", Ok(("i", "31", "31"))),
    ("0x", Err("invalid character in number")),
    ("0x1g", Err("invalid character in number")),
    ("-0", Ok(("i", "0", "0"))),
    ("1.5", Ok(("d", "1.5", "1.5"))),
    ("-1.5", Ok(("d", "-1.5", "-1.5"))),
    (".5", Ok(("d", "0.5", "0.5"))),
    ("5.", Ok(("d", "5.0", "5.0"))),
    ("1e5", Ok(("d", "100000.0", "100000.0"))),
    ("1E5", Err("invalid character in number")),
    ("1e-400", Ok(("d", "0.0", "0.0"))),
    // GLib refuses subnormal results (and so can not read back what it
    // prints for them); kiln reads them.
    ("1e-310", Ok(("d", "9.9999999999999694e-311", "9.9999999999999694e-311"))),
    ("1e309", Err("number too big for any type")),
    ("0.1", Ok(("d", "0.10000000000000001", "0.10000000000000001"))),
    ("100.0", Ok(("d", "100.0", "100.0"))),
    ("1e16", Ok(("d", "10000000000000000.0", "10000000000000000.0"))),
    ("1e17", Ok(("d", "1e+17", "1e+17"))),
    ("1e20", Ok(("d", "1e+20", "1e+20"))),
    ("1e-5", Ok(("d", "1.0000000000000001e-05", "1.0000000000000001e-05"))),
    ("0.0001", Ok(("d", "0.0001", "0.0001"))),
    ("1.7976931348623157e308", Ok(("d", "1.7976931348623157e+308", "1.7976931348623157e+308"))),
    ("2.2250738585072014e-308", Ok(("d", "2.2250738585072014e-308", "2.2250738585072014e-308"))),
    ("5e-324", Ok(("d", "4.9406564584124654e-324", "4.9406564584124654e-324"))),
    ("3.14159265358979", Ok(("d", "3.14159265358979", "3.14159265358979"))),
    ("1000000000000000.25", Ok(("d", "1000000000000000.2", "1000000000000000.2"))),
    ("-0.0", Ok(("d", "-0.0", "-0.0"))),
    ("inf", Ok(("d", "inf", "inf"))),
    ("-inf", Ok(("d", "-inf", "-inf"))),
    ("+inf", Ok(("d", "inf", "inf"))),
    ("nan", Ok(("d", "nan", "nan"))),
    ("-nan", Ok(("d", "-nan", "-nan"))),
    ("infinity", Err("unknown keyword")),
    ("-infinity", Ok(("d", "-inf", "-inf"))),
    ("NaN", Err("expected value")),
    ("-0x1ep3", Ok(("d", "-240.0", "-240.0"))),
    ("0x1.8p1", Ok(("d", "3.0", "3.0"))),
    ("0x1.0p-1070", Ok(("d", "7.9050503334599447e-323", "7.9050503334599447e-323"))),
    ("1.5e", Err("invalid character in number")),
    ("1e+5", Ok(("d", "100000.0", "100000.0"))),
    ("byte 0", Ok(("y", "byte 0x00", "0x00"))),
    ("byte 255", Ok(("y", "byte 0xff", "0xff"))),
    ("byte 256", Err("number out of range for type 'y'")),
    ("byte -1", Err("number out of range for type 'y'")),
    ("byte 0x2a", Ok(("y", "byte 0x2a", "0x2a"))),
    ("int16 -32768", Ok(("n", "int16 -32768", "-32768"))),
    ("int16 32768", Err("number out of range for type 'n'")),
    ("int16 -32769", Err("number out of range for type 'n'")),
    ("uint16 65535", Ok(("q", "uint16 65535", "65535"))),
    ("uint16 65536", Err("number out of range for type 'q'")),
    ("int32 5", Ok(("i", "5", "5"))),
    ("uint32 4294967295", Ok(("u", "uint32 4294967295", "4294967295"))),
    ("uint32 4294967296", Err("number out of range for type 'u'")),
    ("int64 -9223372036854775808", Ok(("x", "int64 -9223372036854775808", "-9223372036854775808"))),
    ("int64 9223372036854775808", Err("number out of range for type 'x'")),
    ("uint64 18446744073709551615", Ok(("t", "uint64 18446744073709551615", "18446744073709551615"))),
    ("uint64 18446744073709551616", Err("integer too big for any type")),
    ("uint64 -0", Ok(("t", "uint64 0", "0"))),
    ("uint64 -1", Err("number out of range for type 't'")),
    ("handle 5", Ok(("h", "handle 5", "5"))),
    ("handle -1", Ok(("h", "handle -1", "-1"))),
    ("double 5", Ok(("d", "5.0", "5.0"))),
    ("double 0x10", Ok(("d", "16.0", "16.0"))),
    ("@t 5", Ok(("t", "uint64 5", "5"))),
    ("@y 5", Ok(("y", "byte 0x05", "0x05"))),
    ("@d 1", Ok(("d", "1.0", "1.0"))),
    ("@n -3", Ok(("n", "int16 -3", "-3"))),
    ("@q 3", Ok(("q", "uint16 3", "3"))),
    ("@x 5", Ok(("x", "int64 5", "5"))),
    ("@u 5", Ok(("u", "uint32 5", "5"))),
    ("@h 3", Ok(("h", "handle 3", "3"))),
    ("'hello'", Ok(("s", "'hello'", "'hello'"))),
    ("\"hello\"", Ok(("s", "'hello'", "'hello'"))),
    ("'it\\'s'", Ok(("s", "\"it's\"", "\"it's\""))),
    ("\"it's\"", Ok(("s", "\"it's\"", "\"it's\""))),
    ("\"say \\\"hi\\\"\"", Ok(("s", "'say \"hi\"'", "'say \"hi\"'"))),
    ("'say \"hi\"'", Ok(("s", "'say \"hi\"'", "'say \"hi\"'"))),
    ("'back\\\\slash'", Ok(("s", "'back\\\\slash'", "'back\\\\slash'"))),
    ("'tab\\there'", Ok(("s", "'tab\\there'", "'tab\\there'"))),
    ("'nl\\nhere'", Ok(("s", "'nl\\nhere'", "'nl\\nhere'"))),
    ("'\\a\\b\\f\\v\\r'", Ok(("s", "'\\a\\b\\f\\v\\r'", "'\\a\\b\\f\\v\\r'"))),
    ("'\\u00e9'", Ok(("s", "'é'", "'é'"))),
    ("'\\u00E9t\\u00e9'", Ok(("s", "'été'", "'été'"))),
    ("'\\U0001F600'", Ok(("s", "'😀'", "'😀'"))),
    ("'\\u0000'", Err("invalid 4-character unicode escape")),
    ("'\\ud800'", Err("")),
    ("'\\U00110000'", Err("")),
    ("'\\u12'", Err("invalid 4-character unicode escape")),
    ("'\\u+0e9'", Err("invalid 4-character unicode escape")),
    ("'\\x41'", Ok(("s", "'x41'", "'x41'"))),
    ("'\\q'", Ok(("s", "'q'", "'q'"))),
    ("'line\\", Err("unterminated string constant")),
    ("cont'", Err("unknown keyword")),
    ("'unterminated", Err("unterminated string constant")),
    ("'trailing\\", Err("unterminated string constant")),
    ("''", Ok(("s", "''", "''"))),
    ("\"\"", Ok(("s", "''", "''"))),
    ("'é ü ñ 日本'", Ok(("s", "'é ü ñ 日本'", "'é ü ñ 日本'"))),
    ("'\\u0085\\u00a0\\u200b\\u2028\\ufeff\\uffff'", Ok(("s", "'\\u0085\u{a0}\\u200b\u{2028}\\ufeff\\uffff'", "'\\u0085\u{a0}\\u200b\u{2028}\\ufeff\\uffff'"))),
    ("'\\U000e0001\\U0010ffff'", Ok(("s", "'\\U000e0001\\U0010ffff'", "'\\U000e0001\\U0010ffff'"))),
    ("'\\u007f'", Ok(("s", "'\\u007f'", "'\\u007f'"))),
    ("string 'x'", Ok(("s", "'x'", "'x'"))),
    ("objectpath '/'", Ok(("o", "objectpath '/'", "'/'"))),
    ("objectpath '/a/b_c/D1'", Ok(("o", "objectpath '/a/b_c/D1'", "'/a/b_c/D1'"))),
    ("objectpath '/a/'", Err("not a valid object path")),
    ("objectpath 'a'", Err("not a valid object path")),
    ("objectpath '//'", Err("not a valid object path")),
    ("objectpath '/a//b'", Err("not a valid object path")),
    ("objectpath '/a-b'", Err("not a valid object path")),
    ("signature ''", Ok(("g", "signature ''", "''"))),
    ("signature 'a{sv}'", Ok(("g", "signature 'a{sv}'", "'a{sv}'"))),
    ("signature 'ii(s)'", Ok(("g", "signature 'ii(s)'", "'ii(s)'"))),
    ("signature 'm'", Err("not a valid signature")),
    ("signature 'a'", Err("not a valid signature")),
    ("signature '{sv}'", Ok(("g", "signature '{sv}'", "'{sv}'"))),
    ("@o '/x'", Ok(("o", "objectpath '/x'", "'/x'"))),
    ("@g 'ay'", Ok(("g", "signature 'ay'", "'ay'"))),
    ("@s \"x\"", Ok(("s", "'x'", "'x'"))),
    ("b'abc'", Ok(("ay", "b'abc'", "b'abc'"))),
    ("b\"abc\"", Ok(("ay", "b'abc'", "b'abc'"))),
    ("b''", Ok(("ay", "b''", "b''"))),
    ("b\"it's\"", Ok(("ay", "b\"it's\"", "b\"it's\""))),
    ("b'say \"hi\"'", Ok(("ay", "b'say \\\"hi\\\"'", "b'say \\\"hi\\\"'"))),
    ("b'a\\000b'", Ok(("ay", "b'a'", "b'a'"))),
    ("b'a\\400b'", Ok(("ay", "b'a'", "b'a'"))),
    ("b'\\777'", Ok(("ay", "b'\\377'", "b'\\377'"))),
    ("b'\\1\\12\\123\\1234'", Ok(("ay", "b'\\001\\nSS4'", "b'\\001\\nSS4'"))),
    ("b'\\xff'", Ok(("ay", "b'xff'", "b'xff'"))),
    ("b'\\n\\t\\r\\a\\b\\f\\v'", Ok(("ay", "b'\\n\\t\\r\\007\\b\\f\\v'", "b'\\n\\t\\r\\007\\b\\f\\v'"))),
    ("b'\\u00e9'", Ok(("ay", "b'u00e9'", "b'u00e9'"))),
    ("b'é'", Ok(("ay", "b'\\303\\251'", "b'\\303\\251'"))),
    ("b'\\\\'", Ok(("ay", "b'\\\\'", "b'\\\\'"))),
    ("[byte 0x61, 0x00, 0x62]", Ok(("ay", "[byte 0x61, 0x00, 0x62]", "[0x61, 0x00, 0x62]"))),
    ("[byte 0x61, 0x62, 0x00]", Ok(("ay", "b'ab'", "b'ab'"))),
    ("[byte 0x00]", Ok(("ay", "b''", "b''"))),
    ("[byte 0x61]", Ok(("ay", "[byte 0x61]", "[0x61]"))),
    ("@ay []", Ok(("ay", "@ay []", "[]"))),
    ("@ay [0x01, 2, 3]", Ok(("ay", "[byte 0x01, 0x02, 0x03]", "[0x01, 0x02, 0x03]"))),
    ("[b'a', b'']", Ok(("aay", "[b'a', b'']", "[b'a', b'']"))),
    ("[b'a', []]", Ok(("aay", "[b'a', []]", "[b'a', []]"))),
    ("[[], b'x']", Ok(("aay", "[@ay [], b'x']", "[[], b'x']"))),
    ("[]", Err("unable to infer type")),
    ("[1, 2, 3]", Ok(("ai", "[1, 2, 3]", "[1, 2, 3]"))),
    ("[1, 2,]", Err("expected value")),
    ("[,]", Err("expected value")),
    ("[1 2]", Err("expected ',' or ']' to follow array element")),
    ("[1, 'a']", Err("unable to find a common type")),
    ("[1, 2.5]", Ok(("ad", "[1.0, 2.5]", "[1.0, 2.5]"))),
    ("[2.5, 1]", Ok(("ad", "[2.5, 1.0]", "[2.5, 1.0]"))),
    ("[int32 5, byte 2]", Err("unable to find a common type")),
    ("[byte 2, 5]", Ok(("ay", "[byte 0x02, 0x05]", "[0x02, 0x05]"))),
    ("[uint64 1, 2]", Ok(("at", "[uint64 1, 2]", "[1, 2]"))),
    ("[@t 1, 2]", Ok(("at", "[uint64 1, 2]", "[1, 2]"))),
    ("['a', objectpath '/b']", Err("not a valid object path")),
    ("[objectpath '/b', 'a']", Err("not a valid object path")),
    ("[[1], [2, 3]]", Ok(("aai", "[[1], [2, 3]]", "[[1], [2, 3]]"))),
    ("[[1], ['a']]", Err("unable to find a common type")),
    ("[[], [1]]", Ok(("aai", "[@ai [], [1]]", "[[], [1]]"))),
    ("[[1], []]", Ok(("aai", "[[1], []]", "[[1], []]"))),
    ("[[[]], [[1]]]", Ok(("aaai", "[[@ai []], [[1]]]", "[[[]], [[1]]]"))),
    ("@aas [[], ['a']]", Ok(("aas", "[@as [], ['a']]", "[[], ['a']]"))),
    ("@as []", Ok(("as", "@as []", "[]"))),
    ("@a(ayay) []", Ok(("a(ayay)", "@a(ayay) []", "[]"))),
    ("@a{sv} []", Ok(("a{sv}", "@a{sv} {}", "{}"))),
    ("@a{sv} {}", Ok(("a{sv}", "@a{sv} {}", "{}"))),
    ("{}", Err("unable to infer type")),
    ("{'a': 1}", Ok(("a{si}", "{'a': 1}", "{'a': 1}"))),
    ("{'a': 1, 'b': 2}", Ok(("a{si}", "{'a': 1, 'b': 2}", "{'a': 1, 'b': 2}"))),
    ("{'a': 1, 'b': 'x'}", Err("can not parse as value of type 'i'")),
    ("{'a': <1>, 'b': <'x'>}", Ok(("a{sv}", "{'a': <1>, 'b': <'x'>}", "{'a': <1>, 'b': <'x'>}"))),
    ("{'a': <1>, 'b': <uint64 5>, 'c': <@as []>, 'd': <b'x'>}", Ok(("a{sv}", "{'a': <1>, 'b': <uint64 5>, 'c': <@as []>, 'd': <b'x'>}", "{'a': <1>, 'b': <uint64 5>, 'c': <@as []>, 'd': <b'x'>}"))),
    ("{1: 'a', 0x10: 'b'}", Ok(("a{is}", "{1: 'a', 16: 'b'}", "{1: 'a', 16: 'b'}"))),
    ("{byte 1: 'a', 2: 'b'}", Ok(("a{ys}", "{byte 0x01: 'a', 0x02: 'b'}", "{0x01: 'a', 0x02: 'b'}"))),
    ("{'k', 'v'}", Ok(("{ss}", "{'k', 'v'}", "{'k', 'v'}"))),
    ("{1, 'a'}", Ok(("{is}", "{1, 'a'}", "{1, 'a'}"))),
    ("@{ss} {'a', 'b'}", Ok(("{ss}", "{'a', 'b'}", "{'a', 'b'}"))),
    ("{'a', 1, 2}", Err("expected '}' at end of dictionary entry")),
    ("{'a': 1,}", Err("expected value")),
    ("{'a' 1}", Err("expected ':' or ',' to follow dictionary entry key")),
    ("{nothing: 1}", Err("dictionary keys must have basic types")),
    ("{<1>: 2}", Err("dictionary keys must have basic types")),
    ("{[1]: 2}", Err("dictionary keys must have basic types")),
    ("{true: false}", Ok(("a{bb}", "{true: false}", "{true: false}"))),
    ("{1.5: 2}", Ok(("a{di}", "{1.5: 2}", "{1.5: 2}"))),
    ("{@s 'a', 1}", Ok(("{si}", "{'a', 1}", "{'a', 1}"))),
    ("{'a': nothing, 'b': 5}", Err("unable to infer type")),
    ("{'a': 5, 'b': nothing}", Err("can not parse as value of type 'i'")),
    ("()", Ok(("()", "()", "()"))),
    ("(1)", Err("expected ',' after first tuple element")),
    ("(1,)", Ok(("(i)", "(1,)", "(1,)"))),
    ("(1, 2)", Ok(("(ii)", "(1, 2)", "(1, 2)"))),
    ("(1, 2,)", Err("expected value")),
    ("(1,,)", Err("expected value")),
    ("(1, 'a', true)", Ok(("(isb)", "(1, 'a', true)", "(1, 'a', true)"))),
    ("((1,), ('a', b'b'))", Ok(("((i)(say))", "((1,), ('a', b'b'))", "((1,), ('a', b'b'))"))),
    ("@(ii) (1, 2)", Ok(("(ii)", "(1, 2)", "(1, 2)"))),
    ("@(ii) (1,)", Err("can not parse as value of type '(ii)'")),
    ("@(i) (1, 2)", Err("can not parse as value of type '(i)'")),
    ("[(1, 'a'), (2, 'b')]", Ok(("a(is)", "[(1, 'a'), (2, 'b')]", "[(1, 'a'), (2, 'b')]"))),
    ("[(1, 'a'), ('b', 2)]", Err("unable to find a common type")),
    ("<1>", Ok(("v", "<1>", "<1>"))),
    ("<<1>>", Ok(("v", "<<1>>", "<<1>>"))),
    ("<'x'>", Ok(("v", "<'x'>", "<'x'>"))),
    ("<@as []>", Ok(("v", "<@as []>", "<@as []>"))),
    ("<[1, 2]>", Ok(("v", "<[1, 2]>", "<[1, 2]>"))),
    ("[<1>, <'a'>]", Ok(("av", "[<1>, <'a'>]", "[<1>, <'a'>]"))),
    ("<1", Err("expected '>' to follow variant value")),
    ("(1, <2>)", Ok(("(iv)", "(1, <2>)", "(1, <2>)"))),
    ("nothing", Err("unable to infer type")),
    ("just 5", Ok(("mi", "@mi 5", "5"))),
    ("just nothing", Err("unable to infer type")),
    ("just just 5", Ok(("mmi", "@mmi 5", "5"))),
    ("@mi 5", Ok(("mi", "@mi 5", "5"))),
    ("@mi nothing", Ok(("mi", "@mi nothing", "nothing"))),
    ("@mmi nothing", Ok(("mmi", "@mmi nothing", "nothing"))),
    ("@mmi just nothing", Ok(("mmi", "@mmi just nothing", "just nothing"))),
    ("@mmi 5", Ok(("mmi", "@mmi 5", "5"))),
    ("@ms 'a'", Ok(("ms", "@ms 'a'", "'a'"))),
    ("@mas []", Ok(("mas", "@mas []", "[]"))),
    ("@mas ['a']", Ok(("mas", "@mas ['a']", "['a']"))),
    ("[nothing, 5]", Ok(("ami", "[@mi nothing, 5]", "[nothing, 5]"))),
    ("[5, nothing]", Ok(("ami", "[@mi 5, nothing]", "[5, nothing]"))),
    ("[just 5, nothing]", Ok(("ami", "[@mi 5, nothing]", "[5, nothing]"))),
    ("[@mi 1, just 2]", Ok(("ami", "[@mi 1, 2]", "[1, 2]"))),
    ("[nothing, nothing]", Err("unable to infer type")),
    ("@ai [1, nothing]", Err("can not parse as value of type 'i'")),
    ("@mv <1>", Ok(("mv", "@mv <1>", "<1>"))),
    ("[nothing, [1]]", Ok(("amai", "[@mai nothing, [1]]", "[nothing, [1]]"))),
    ("[[1], nothing]", Ok(("amai", "[@mai [1], nothing]", "[[1], nothing]"))),
    ("(nothing, 1)", Err("unable to infer type")),
    ("just", Err("expected value")),
    ("null", Err("unknown keyword")),
    ("true", Ok(("b", "true", "true"))),
    ("false", Ok(("b", "false", "false"))),
    ("True", Err("expected value")),
    ("%i", Err("expected value")),
    ("foo", Err("unknown keyword")),
    ("int32", Err("expected value")),
    ("int32 'a'", Err("can not parse as value of type 'i'")),
    ("@ 5", Err("invalid type declaration")),
    ("@q", Err("expected value")),
    ("@z 5", Err("invalid type declaration")),
    ("@a 5", Err("invalid type declaration")),
    ("@i", Err("expected value")),
    ("booleans true", Err("unknown keyword")),
    ("boolean true", Ok(("b", "true", "true"))),
    ("boolean 1", Err("can not parse as value of type 'b'")),
    ("1 2", Err("expected end of input")),
    (" 1 ", Ok(("i", "1", "1"))),
    ("'a'  ", Ok(("s", "'a'", "'a'"))),
    ("<", Err("expected value")),
    (">", Err("expected value")),
    ("[", Err("expected value")),
    ("]", Err("expected value")),
    ("(", Err("expected value")),
    ("{", Err("expected value")),
    ("b", Err("expected value")),
    ("b'", Err("unterminated string constant")),
    ("'", Err("unterminated string constant")),
    ("@(ii)", Err("expected value")),
    ("[int32 int32 5]", Ok(("ai", "[5]", "[5]"))),
];

#[test]
fn parse_and_print_match_glib() {
    let mut failures = Vec::new();
    for (text, expect) in ORACLE {
        let got = parse(text);
        match (&got, expect) {
            (Ok(v), Ok((ty, annotated, plain))) => {
                let mine = (v.type_of().to_string(), print(v, true), print(v, false));
                if (mine.0.as_str(), mine.1.as_str(), mine.2.as_str()) != (*ty, *annotated, *plain)
                {
                    failures.push(format!("{text:?}: got {mine:?}, GLib {expect:?}"));
                }
                // What we print reads back as the same value.
                let again = parse(annotated).map(|v| print(&v, true));
                if again.as_deref() != Ok(*annotated) {
                    failures.push(format!("{text:?}: reparse of {annotated:?} gave {again:?}"));
                }
            }
            (Err(e), Err(msg)) => {
                if !msg.is_empty() && e.kind.to_string() != *msg {
                    failures.push(format!(
                        "{text:?}: error {:?}, GLib {msg:?}",
                        e.kind.to_string()
                    ));
                }
            }
            _ => failures.push(format!("{text:?}: got {got:?}, GLib {expect:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `%.17g` as glibc prints it, for doubles given by their bits.
#[rustfmt::skip]
const DOUBLES: &[(u64, &str)] = &[
    (0x0000000000000000, "0.0"),
    (0x8000000000000000, "-0.0"),
    (0x3ff0000000000000, "1.0"),
    (0xbff0000000000000, "-1.0"),
    (0x3fe0000000000000, "0.5"),
    (0x3fb999999999999a, "0.10000000000000001"),
    (0x3fc999999999999a, "0.20000000000000001"),
    (0x3fd3333333333333, "0.29999999999999999"),
    (0x3fd5555555555555, "0.33333333333333331"),
    (0x3fe5555555555555, "0.66666666666666663"),
    (0x3f1a36e2eb1c432d, "0.0001"),
    (0x3ee4f8b588e368f1, "1.0000000000000001e-05"),
    (0x3f1a36371ea531a8, "9.9989999999999996e-05"),
    (0x437b69b4ba630f35, "1.2345678901234568e+17"),
    (0x4341c37937e08000, "10000000000000000.0"),
    (0x4376345785d8a000, "1e+17"),
    (0x4376345785d89fff, "99999999999999984.0"),
    (0x7fefffffffffffff, "1.7976931348623157e+308"),
    (0x0010000000000000, "2.2250738585072014e-308"),
    (0x0000000000000001, "4.9406564584124654e-324"),
    (0x00000000000007e8, "9.9998886718268301e-321"),
    (0x400921fb54442d18, "3.1415926535897931"),
    (0x4005bf0a8b145769, "2.7182818284590451"),
    (0x430c6bf526340002, "1000000000000000.2"),
    (0x430c6bf526340006, "1000000000000000.8"),
    (0x4330000000000002, "4503599627370498.0"),
    (0x3fc0000000000000, "0.125"),
    (0x444b1ae4d6e2ef50, "1e+21"),
    (0x4480f0cf064dd592, "1e+22"),
    (0x44b52d02c7e14af6, "9.9999999999999992e+22"),
    (0x40c81cd6c8b43958, "12345.678"),
    (0x4059000000000000, "100.0"),
    (0x430c6bf526340000, "1000000000000000.0"),
    (0x3c36b082c2148b8e, "1.23e-18"),
    (0x44dfe185ca57c517, "6.0221407599999999e+23"),
    (0xc071126666666666, "-273.14999999999998"),
    (0xf2a74de452e6b438, "-1.989032661366619e+244"),
    (0x6513270e269e0d37, "7.761117632285041e+178"),
    (0x0c5c7fd0a6a3a450, "3.980498358697587e-249"),
    (0xd23f0824128b2f33, "-1.5432835417340557e+88"),
    (0x1818e811892f902b, "1.3647584518757569e-192"),
    (0x9531985d5d9dc9f8, "-1.3701135617873088e-206"),
    (0xe8e25d940ed90475, "-1.7160537630466207e+197"),
    (0x36f675cc81e74ef5, "6.2946752411953861e-44"),
    (0x1600a35a099950d8, "1.0613447212142254e-202"),
    (0x6b0d549b6f03675a, "4.7083251603875462e+207"),
    (0x3d9c172411e20b8f, "6.3870161585135632e-12"),
    (0x8d116ece1738f7d9, "-9.9731303785687331e-246"),
    (0x0f21ddb66cad4a26, "8.7797532256802712e-236"),
    (0x90c192cfd3ac94af, "-5.7955032484989932e-228"),
    (0xf28c105d1fb17c23, "-5.9881801593860111e+243"),
    (0xa170b33839263059, "-1.3060523885277959e-147"),
    (0x953f48f1a09f76b5, "-2.4361176994848409e-206"),
    (0x0fd630f1f29d0da9, "2.2333869991501741e-232"),
    (0x95e60af593bd04cf, "-3.5152797062666699e-203"),
    (0x0cb1e29c658cda14, "1.5987381841032883e-247"),
    (0x3898d190f9ebdacc, "4.6678633181812096e-36"),
    (0x8e81973e0becd7b0, "-8.4418727921054556e-239"),
    (0x2217beaddbc496cb, "1.9015657400796622e-144"),
    (0x6b4cb2424a23d596, "7.370437700706684e+208"),
    (0x8a6a63ec24ede6a4, "-1.7163996725272777e-258"),
    (0x922766581e27a1c0, "-3.2367190832119987e-221"),
    (0x8f6d05584ef8aa38, "-2.2818334634712625e-234"),
    (0xae97ba94d0eda82f, "-3.0536383926309363e-84"),
    (0x1a61dbe22e44158b, "1.3449551894627777e-181"),
    (0x923a736994e3bf91, "-7.3174959760626057e-221"),
    (0x301850c5a38fd547, "5.2498223088143036e-77"),
    (0x18f135d25f557203, "1.5450754142984396e-188"),
    (0xb64ce4228c38fb29, "-3.9536256982247919e-47"),
    (0x907a70c31012f037, "-2.7249126747649799e-229"),
    (0x9e7769b10f4205b4, "-6.5051418615487723e-162"),
    (0x7f15052434b9b5df, "1.4414848395559941e+304"),
    (0x881ed162ae2eb154, "-1.4583679262758548e-269"),
    (0xc6f877186d76b07e, "-7.9394166688077208e+33"),
    (0x7731af10506bf2ef, "1.4255183989699612e+266"),
    (0xec66a78795e761d1, "-1.5253157012324029e+214"),
    (0x5c90a9587403e430, "7.750545741548908e+137"),
    (0x3f98e2774cbd87ad, "0.024301399287089676"),
    (0x2e05319acb5c7427, "5.3269600817830169e-87"),
    (0xc7a2ea20b2f14c94, "-1.2570882301712172e+37"),
    (0x14f4733f3e7d1bfb, "9.9526840090024479e-208"),
    (0x4cdd2055930d6eaf, "1.8721667527122837e+62"),
    (0x7ebff20686734721, "3.4229783989470719e+302"),
    (0x57ee05cde00902c7, "3.6967297937384553e+115"),
    (0x72e6cc3ababced20, "3.1132849561694472e+245"),
    (0x9be4bcfc49b64a08, "-2.6202582260546103e-174"),
    (0x12bd4acefaecbd38, "2.0745096302730225e-218"),
    (0x830e07bc1e398f10, "-5.877500503097409e-294"),
    (0x2a3af4d46b0a18e8, "2.9383455973541661e-105"),
    (0x5790f82ec1d3fcff, "6.5295986747658322e+113"),
    (0xeeeacbe226e87555, "-1.9837344250050814e+226"),
    (0x6bf46c697d2caf82, "1.0743030475716402e+212"),
    (0xf646e1f40a097c97, "-5.629271400715247e+261"),
    (0x13deef86ab1031d0, "5.7433106149184849e-213"),
    (0x8ede0d7ac3baea9e, "-4.6151547070255599e-237"),
    (0xca02135e92b1d3f2, "-3.302201168194502e+48"),
    (0x4126ead73f5098ac, "750955.62366177654"),
    (0xc116bc63e5afe5a4, "-372504.97430380643"),
    (0x4117d6faee20e260, "390590.73254731856"),
    (0x41070a1e089f4598, "188739.75421003695"),
    (0x4103817344bdb7f0, "159790.40856498433"),
    (0xc0f5625565fa9438, "-87589.337397173862"),
    (0x4124bfff1f3eadfe, "679935.56102508283"),
    (0x412b24246163f9a4, "889362.19021587493"),
    (0xc0e94b6a67b76f80, "-51803.325160711072"),
    (0x411409c1a4cfe7f8, "328304.41094934894"),
    (0xc12ad08a4a23f456, "-878661.14480556059"),
    (0x411898a02ba1a760, "402984.04260884784"),
    (0x4111f5c6d6129a38, "294257.70905533759"),
    (0x412e189fc2038a94, "986191.87893326813"),
    (0x4123a613257d0460, "643849.5732194297"),
    (0xc11a4b63be456c36, "-430808.93581170158"),
    (0xc10be208ebbcff6c, "-228417.11510657833"),
    (0x41149665ba217d40, "337305.43176837638"),
    (0xc12d23f449abcbb9, "-954874.14388882287"),
    (0xc0f2b416d6a1df98, "-76609.427400468267"),
];

#[test]
fn doubles_print_like_glibc() {
    for (bits, expect) in DOUBLES {
        let d = f64::from_bits(*bits);
        assert_eq!(print(&Value::Double(d), true), *expect, "{d:e}");
        let back = parse(expect).unwrap();
        assert_eq!(back, Value::Double(d), "{expect}");
    }
    assert_eq!(print(&Value::Double(f64::NAN), false), "nan");
    assert_eq!(print(&Value::Double(-f64::NAN), false), "-nan");
    assert_eq!(print(&Value::Double(f64::NEG_INFINITY), false), "-inf");
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

#[test]
fn bytestrings_print_like_glib() {
    let cases: &[(&[u8], &str, &str)] = &[
        (b"abc\0", "b'abc'", "b'abc'"),
        (b"abc", "[byte 0x61, 0x62, 0x63]", "[0x61, 0x62, 0x63]"),
        (b"\0", "b''", "b''"),
        (b"", "@ay []", "[]"),
        (b"it's\0", "b\"it's\"", "b\"it's\""),
        (b"say \"hi\"\0", "b'say \\\"hi\\\"'", "b'say \\\"hi\\\"'"),
        (
            b"a\0b\0",
            "[byte 0x61, 0x00, 0x62, 0x00]",
            "[0x61, 0x00, 0x62, 0x00]",
        ),
    ];
    for (b, annotated, plain) in cases {
        assert_eq!(print(&bytes(b), true), *annotated);
        assert_eq!(print(&bytes(b), false), *plain);
        assert_eq!(parse(annotated).unwrap(), bytes(b));
    }
    let mut all: Vec<u8> = (1..32).collect();
    all.extend_from_slice(b"\x7f\x80\xff\\\0");
    assert_eq!(
        print(&bytes(&all), true),
        "b'\\001\\002\\003\\004\\005\\006\\007\\b\\t\\n\\v\\f\\r\\016\\017\\020\\021\\022\\023\\024\\025\\026\
         \\027\\030\\031\\032\\033\\034\\035\\036\\037\\177\\200\\377\\\\'"
    );
    assert_eq!(parse(&print(&bytes(&all), true)).unwrap(), bytes(&all));
    // An `ay` spelled as an array of `y` values prints the same.
    let spelled = Value::Array(Type::Byte, vec![Value::Byte(b'x'), Value::Byte(0)]);
    assert_eq!(print(&spelled, true), "b'x'");
}

#[test]
fn strings_escape_like_glib() {
    let s = "it's \"q\" \\ \x01\x07\x08\x0c\n\r\t\x0b\x7f\u{85}\u{a0}\u{200b}\u{2028}\u{feff}\u{1F600}\u{E0001}\u{ffff}\u{10FFFF} é";
    let expect = "\"it's \\\"q\\\" \\\\ \\u0001\\a\\b\\f\\n\\r\\t\\v\\u007f\\u0085\u{a0}\\u200b\u{2028}\\ufeff\u{1F600}\
                  \\U000e0001\\uffff\\U0010ffff é\"";
    assert_eq!(print(&Value::str(s), true), expect);
    assert_eq!(parse(expect).unwrap(), Value::str(s));
    assert_eq!(print(&Value::str("plain \"dq\""), false), "'plain \"dq\"'");
    assert_eq!(parse("'line\\\ncont'").unwrap(), Value::str("linecont"));
}

#[test]
fn ostree_object_types_print_like_glib() {
    let dirmeta = Value::Tuple(vec![
        Value::Uint32(0),
        Value::Uint32(0),
        Value::Uint32(0o40755),
        Value::Array(Type::parse("(ayay)").unwrap(), vec![]),
    ]);
    assert_eq!(
        print(&dirmeta, true),
        "(uint32 0, uint32 0, uint32 16877, @a(ayay) [])"
    );
    assert_eq!(print(&dirmeta, false), "(0, 0, 16877, [])");
    let header = Value::Tuple(vec![
        Value::Uint64(0),
        Value::Uint32(0),
        Value::Uint32(0),
        Value::Uint32(0),
        Value::Uint32(0),
        Value::str(""),
        Value::Array(Type::parse("(ayay)").unwrap(), vec![]),
    ]);
    assert_eq!(
        print(&header, true),
        "(uint64 0, uint32 0, uint32 0, uint32 0, uint32 0, '', @a(ayay) [])"
    );
    let xattrs = Value::Array(
        Type::parse("(ayay)").unwrap(),
        vec![Value::Tuple(vec![bytes(b"a\0"), bytes(b"\x01\x02")])],
    );
    assert_eq!(print(&xattrs, true), "[(b'a', [byte 0x01, 0x02])]");
    assert_eq!(print(&xattrs, false), "[(b'a', [0x01, 0x02])]");

    let mut d = VarDict::new();
    d.push("a", Value::Int32(1));
    d.push("b", Value::Uint64(5));
    d.push("c", Value::Array(Type::String, vec![]));
    d.push("d", bytes(b"x\0"));
    let text = "{'a': <1>, 'b': <uint64 5>, 'c': <@as []>, 'd': <b'x'>}";
    assert_eq!(print(&d.to_value(), true), text);
    assert_eq!(parse(text).unwrap(), d.to_value());
    assert_eq!(print(&VarDict::new().to_value(), true), "@a{sv} {}");
    assert_eq!(print(&VarDict::new().to_value(), false), "{}");
}

#[test]
fn every_type_prints_its_annotation() {
    let v = Value::Tuple(vec![
        Value::Byte(1),
        Value::Uint16(2),
        Value::Int16(-3),
        Value::Uint32(4),
        Value::Int64(-5),
        Value::Uint64(6),
        Value::Handle(7),
        Value::Double(1.0),
        Value::ObjectPath("/a/b".into()),
        Value::Signature("ab".into()),
        Value::Bool(true),
    ]);
    assert_eq!(
        print(&v, true),
        "(byte 0x01, uint16 2, int16 -3, uint32 4, int64 -5, uint64 6, handle 7, 1.0, objectpath '/a/b', \
         signature 'ab', true)"
    );
    assert_eq!(
        print(&v, false),
        "(0x01, 2, -3, 4, -5, 6, 7, 1.0, '/a/b', 'ab', true)"
    );
    assert_eq!(parse(&print(&v, true)).unwrap(), v);
    let dict = parse("{byte 0x01: 'x', 0x02: 'y'}").unwrap();
    assert_eq!(print(&dict, true), "{byte 0x01: 'x', 0x02: 'y'}");
    let ams = parse("@ams ['a', nothing]").unwrap();
    assert_eq!(print(&ams, true), "[@ms 'a', nothing]");
    assert_eq!(
        print(&parse("@mmi just nothing").unwrap(), true),
        "@mmi just nothing"
    );
    assert_eq!(print(&parse("<<'x'>>").unwrap(), false), "<<'x'>>");
    assert_eq!(
        print(&parse("@aay [b'a', []]").unwrap(), true),
        "[b'a', []]"
    );
}

#[test]
fn parsed_values_encode_and_decode() {
    for text in [
        "{'version': <'1.0'>, 'n': <int64 -2>}",
        "(uint32 0, uint32 0, uint32 16877, @a(ayay) [])",
        "[just 5, nothing]",
    ] {
        let v = parse(text).unwrap();
        let ty = v.type_of();
        assert_eq!(decode(&ty, &encode(&v)).unwrap(), v, "{text}");
    }
}

#[test]
fn errors_carry_positions() {
    let e = parse("[1, 'a']").unwrap_err();
    assert_eq!((e.start, e.end, e.other), (1, 2, Some((4, 7))));
    assert_eq!(e.to_string(), "1-2,4-7:unable to find a common type");
    assert_eq!(
        parse("1 2").unwrap_err().to_string(),
        "2:expected end of input"
    );
    assert_eq!(parse("").unwrap_err().to_string(), "0:expected value");
    // Text ends at a NUL, like a C string.
    assert_eq!(parse("5\0garbage").unwrap(), Value::Int32(5));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse(&deep).unwrap_err().kind, TextErrorKind::TooDeep);
    let deep = format!("{}1{}", "<".repeat(10_000), ">".repeat(10_000));
    assert_eq!(parse(&deep).unwrap_err().kind, TextErrorKind::TooDeep);
    let ok = format!("{}1{}", "<".repeat(40), ">".repeat(40));
    assert_eq!(print(&parse(&ok).unwrap(), true), ok);
}
