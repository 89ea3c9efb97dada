//! GVariant text format (what `g_variant_print` writes and `g_variant_parse`
//! reads), for `--add-metadata`, `show` and `ls -X`.
//!
//! [`print`] matches GLib 2.74's `g_variant_print` byte for byte; [`parse`]
//! accepts what `g_variant_parse (NULL, text, …)` accepts and infers types
//! the same way (a bare integer is an `int32`, a bare string a `string`, an
//! empty array needs an annotation such as `@as []`).
//!
//! Differences from GLib, all on the side of refusing:
//! - nesting deeper than 64 containers is refused (GLib allows 128);
//! - a `\u`/`\U` escape that does not name a Unicode scalar value is an
//!   error (GLib builds an invalid string and fails an assertion);
//! - as in C, text stops at the first NUL character.

#[path = "text_infer.rs"]
mod infer;
#[path = "text_number.rs"]
mod number;
#[path = "text_parse.rs"]
mod parse_impl;
#[path = "text_unicode.rs"]
mod unicode;

use super::{Type, Value};
use std::fmt::Write as _;

pub use parse_impl::parse;

/// Where in the text a parse error was found, and what it was. Positions
/// are byte offsets, reported like GLib does (`start-end:message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{kind}", span(*.start, *.end, .other))]
pub struct TextError {
    pub start: usize,
    pub end: usize,
    /// A second range involved in the error (the other element of an
    /// array whose elements have no common type).
    pub other: Option<(usize, usize)>,
    pub kind: TextErrorKind,
}

fn span(start: usize, end: usize, other: &Option<(usize, usize)>) -> String {
    let mut s = if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    };
    if let Some((a, b)) = other {
        let _ = write!(s, ",{a}-{b}");
    }
    s
}

/// What went wrong while parsing GVariant text. The messages are GLib's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextErrorKind {
    #[error("expected value")]
    ValueExpected,
    #[error("expected '{token}'{purpose}")]
    UnexpectedToken {
        token: &'static str,
        purpose: &'static str,
    },
    #[error("unknown keyword")]
    UnknownKeyword,
    #[error("expected end of input")]
    InputNotAtEnd,
    #[error("unterminated string constant")]
    UnterminatedString,
    #[error("invalid {0}-character unicode escape")]
    BadUnicodeEscape(usize),
    #[error("invalid character in number")]
    BadNumber,
    #[error("number out of range for type '{0}'")]
    NumberOutOfRange(char),
    #[error("integer too big for any type")]
    IntegerTooBig,
    #[error("number too big for any type")]
    NumberTooBig,
    #[error("unable to infer type")]
    CannotInferType,
    #[error("unable to find a common type")]
    NoCommonType,
    #[error("dictionary keys must have basic types")]
    BasicTypeExpected,
    #[error("can not parse as value of type '{0}'")]
    TypeMismatch(String),
    #[error("invalid type declaration")]
    InvalidTypeString,
    #[error("not a valid object path")]
    InvalidObjectPath,
    #[error("not a valid signature")]
    InvalidSignature,
    #[error("variant nested too deeply")]
    TooDeep,
}

/// Print `v` in GVariant text format, exactly as GLib's
/// `g_variant_print (v, type_annotate)` does.
pub fn print(v: &Value, type_annotate: bool) -> String {
    let mut out = String::new();
    print_into(&mut out, v, type_annotate);
    out
}

fn print_into(out: &mut String, v: &Value, annotate: bool) {
    match v {
        Value::Maybe(elem, child) => {
            if annotate {
                let _ = write!(out, "@m{elem} ");
            }
            match child {
                None => out.push_str("nothing"),
                Some(child) => {
                    // "just" is only written where leaving it out would be
                    // ambiguous: in front of a nested "nothing".
                    let inner = print(child, false);
                    if inner.ends_with("nothing") {
                        out.push_str("just ");
                    }
                    out.push_str(&inner);
                }
            }
        }
        Value::Bytes(bytes) => print_bytes(out, bytes, annotate),
        Value::Array(Type::Byte, elems) => match byte_values(elems) {
            Some(bytes) => print_bytes(out, &bytes, annotate),
            None => print_array(out, &Type::Byte, elems, annotate),
        },
        Value::Array(elem, elems) => print_array(out, elem, elems, annotate),
        Value::Tuple(members) => {
            out.push('(');
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_into(out, m, annotate);
            }
            if members.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::DictEntry(k, val) => {
            out.push('{');
            print_into(out, k, annotate);
            out.push_str(", ");
            print_into(out, val, annotate);
            out.push('}');
        }
        Value::Variant(child) => {
            // The contents of a variant are always annotated.
            out.push('<');
            print_into(out, child, true);
            out.push('>');
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => print_string(out, s),
        Value::Byte(b) => {
            if annotate {
                out.push_str("byte ");
            }
            let _ = write!(out, "0x{b:02x}");
        }
        Value::Int16(n) => print_number(out, annotate.then_some("int16 "), n),
        Value::Uint16(n) => print_number(out, annotate.then_some("uint16 "), n),
        // int32 is the default type of a number: never annotated.
        Value::Int32(n) => print_number(out, None, n),
        Value::Handle(n) => print_number(out, annotate.then_some("handle "), n),
        Value::Uint32(n) => print_number(out, annotate.then_some("uint32 "), n),
        Value::Int64(n) => print_number(out, annotate.then_some("int64 "), n),
        Value::Uint64(n) => print_number(out, annotate.then_some("uint64 "), n),
        Value::Double(d) => out.push_str(&format_double(*d)),
        Value::ObjectPath(s) => {
            if annotate {
                out.push_str("objectpath ");
            }
            let _ = write!(out, "'{s}'");
        }
        Value::Signature(s) => {
            if annotate {
                out.push_str("signature ");
            }
            let _ = write!(out, "'{s}'");
        }
    }
}

fn print_number(out: &mut String, prefix: Option<&str>, n: &dyn std::fmt::Display) {
    if let Some(p) = prefix {
        out.push_str(p);
    }
    let _ = write!(out, "{n}");
}

fn byte_values(elems: &[Value]) -> Option<Vec<u8>> {
    elems
        .iter()
        .map(|e| match e {
            Value::Byte(b) => Some(*b),
            _ => None,
        })
        .collect()
}

/// Arrays (and dictionaries): only the first element carries annotations,
/// the others take their type from it.
fn print_array(out: &mut String, elem: &Type, elems: &[Value], annotate: bool) {
    let is_dict = matches!(elem, Type::DictEntry(..));
    if elems.is_empty() {
        if annotate {
            let _ = write!(out, "@a{elem} ");
        }
        out.push_str(if is_dict { "{}" } else { "[]" });
        return;
    }
    out.push(if is_dict { '{' } else { '[' });
    let mut annotate = annotate;
    for (i, e) in elems.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match e {
            Value::DictEntry(k, v) if is_dict => {
                print_into(out, k, annotate);
                out.push_str(": ");
                print_into(out, v, annotate);
            }
            other => print_into(out, other, annotate),
        }
        annotate = false;
    }
    out.push(if is_dict { '}' } else { ']' });
}

/// `ay`: printed as a `b'…'` bytestring when its only NUL is the last byte,
/// as an array of bytes otherwise.
fn print_bytes(out: &mut String, bytes: &[u8], annotate: bool) {
    if let Some((0, body)) = bytes.split_last() {
        if !body.contains(&0) {
            let quote = if body.contains(&b'\'') { '"' } else { '\'' };
            out.push('b');
            out.push(quote);
            strescape(out, body);
            out.push(quote);
            return;
        }
    }
    if bytes.is_empty() {
        out.push_str(if annotate { "@ay []" } else { "[]" });
        return;
    }
    out.push('[');
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        } else if annotate {
            out.push_str("byte ");
        }
        let _ = write!(out, "0x{b:02x}");
    }
    out.push(']');
}

/// GLib's `g_strescape (s, NULL)`: C escapes, octal for the rest of the
/// control bytes and everything from 0x7f up. `'` is left alone.
fn strescape(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'\x08' => out.push_str("\\b"),
            b'\x0c' => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\x0b' => out.push_str("\\v"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b if !(0x20..0x7f).contains(&b) => {
                let _ = write!(out, "\\{b:03o}");
            }
            b => out.push(char::from(b)),
        }
    }
}

/// A string: single quotes unless it holds one, then double quotes; the
/// quote and `\` escaped; non-printable characters escaped.
fn print_string(out: &mut String, s: &str) {
    let quote = if s.contains('\'') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        if c == quote || c == '\\' {
            out.push('\\');
        }
        if is_print(c) {
            out.push(c);
            continue;
        }
        out.push('\\');
        match c {
            '\x07' => out.push('a'),
            '\x08' => out.push('b'),
            '\x0c' => out.push('f'),
            '\n' => out.push('n'),
            '\r' => out.push('r'),
            '\t' => out.push('t'),
            '\x0b' => out.push('v'),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "U{:08x}", c as u32);
            }
        }
    }
    out.push(quote);
}

/// GLib's `g_unichar_isprint`.
fn is_print(c: char) -> bool {
    let c = c as u32;
    if (0x20..0x7f).contains(&c) {
        return true;
    }
    let table = unicode::NON_PRINTABLE;
    let i = table.partition_point(|&(_, hi)| hi < c);
    match table.get(i) {
        Some(&(lo, _)) => c < lo,
        None => true,
    }
}

/// `g_ascii_dtostr` (`%.17g`), plus the `.0` GLib adds so that the number
/// reads back as a double.
fn format_double(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    // 17 significant digits, correctly rounded: "d.dddddddddddddddde±x".
    let sci = format!("{:.16e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if d.is_sign_negative() {
        out.push('-');
    }
    if (-4..17).contains(&exp) {
        let (int_part, frac_part) = if exp >= 0 {
            let split = (exp as usize + 1).min(digits.len());
            (digits[..split].to_string(), digits[split..].to_string())
        } else {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-exp - 1) as usize), digits),
            )
        };
        let frac = frac_part.trim_end_matches('0');
        out.push_str(&int_part);
        if frac.is_empty() {
            out.push_str(".0");
        } else {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = rest.trim_end_matches('0');
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
    out
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod text_tests;
