//! Reading GVariant text into a syntax tree: GLib's tokens, grammar and
//! string escapes. The types are inferred afterwards (`text_infer.rs`).

use super::infer::{resolve, Ast, Node};
use super::{TextError, TextErrorKind as K};
use crate::gvariant::{Type, Value, MAX_DEPTH};

/// Parse GVariant text into a value, inferring its type as
/// `g_variant_parse (NULL, text, NULL, NULL, &error)` does.
pub fn parse(text: &str) -> Result<Value, TextError> {
    // C strings end at the first NUL.
    let text = text.split('\0').next().unwrap_or("");
    let mut p = Parser {
        src: text.as_bytes(),
        pos: 0,
        tok: None,
    };
    let ast = p.value(0)?;
    let v = resolve(&ast)?;
    p.skip_space();
    if p.pos < p.src.len() {
        return Err(err(p.pos, p.pos, K::InputNotAtEnd));
    }
    Ok(v)
}

pub(super) fn err(start: usize, end: usize, kind: K) -> TextError {
    TextError {
        start,
        end,
        other: None,
        kind,
    }
}

// ---------------------------------------------------------------- tokens

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    /// The current token, once scanned: its byte range.
    tok: Option<(usize, usize)>,
}

/// `g_ascii_isspace`: unlike `u8::is_ascii_whitespace` it includes `\v`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

impl<'a> Parser<'a> {
    fn skip_space(&mut self) {
        while self.src.get(self.pos).copied().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Scan the next token if not done yet; `None` at the end of input.
    fn token(&mut self) -> Option<&'a [u8]> {
        if let Some((s, e)) = self.tok {
            return Some(&self.src[s..e]);
        }
        self.skip_space();
        let src = self.src;
        let start = self.pos;
        let first = *src.get(start)?;
        let at = |i: usize| src.get(i).copied();
        let mut end = start + 1;
        match first {
            b'-' | b'+' | b'.' | b'0'..=b'9' => {
                while at(end)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    end += 1;
                }
            }
            b'b' if matches!(at(start + 1), Some(b'\'' | b'"')) => {
                end = scan_quoted(src, start + 1)
            }
            b'a'..=b'z' => {
                while at(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
                    end += 1;
                }
            }
            b'\'' | b'"' => end = scan_quoted(src, start),
            b'@' | b'%' => {
                // Up to a space, comma, colon, '>' or ']', or an unmatched
                // closing bracket.
                let mut depth = 0usize;
                while let Some(c) = at(end) {
                    if matches!(c, b',' | b':' | b'>' | b']') || is_space(c) {
                        break;
                    }
                    if matches!(c, b'(' | b'{') {
                        depth += 1;
                    } else if matches!(c, b')' | b'}') {
                        if depth == 0 {
                            break;
                        }
                        depth -= 1;
                    }
                    end += 1;
                }
            }
            _ => {}
        }
        self.pos = end;
        self.tok = Some((start, end));
        Some(&src[start..end])
    }

    fn next(&mut self) {
        self.tok = None;
    }

    /// Start offset of the current token (or of the end of input).
    fn here(&mut self) -> usize {
        self.token();
        self.tok.map_or(self.pos, |(s, _)| s)
    }

    fn peek_is(&mut self, s: &str) -> bool {
        self.token() == Some(s.as_bytes())
    }

    fn consume(&mut self, s: &str) -> bool {
        let yes = self.peek_is(s);
        if yes {
            self.next();
        }
        yes
    }

    fn require(&mut self, token: &'static str, purpose: &'static str) -> Result<(), TextError> {
        if self.consume(token) {
            return Ok(());
        }
        let at = self.here();
        Err(err(at, at, K::UnexpectedToken { token, purpose }))
    }

    /// An error about the whole current token.
    fn token_error(&mut self, kind: K) -> TextError {
        self.token();
        let (s, e) = self.tok.unwrap_or((self.pos, self.pos));
        err(s, e, kind)
    }

    // ------------------------------------------------------------ syntax

    fn value(&mut self, depth: usize) -> Result<Node, TextError> {
        let start = self.here();
        if depth >= MAX_DEPTH {
            return Err(err(start, start, K::TooDeep));
        }
        let d = depth + 1;
        let tok = self.token().unwrap_or(b"");
        let first = tok.first().copied();
        let ast = if first == Some(b'[') {
            self.next();
            Ast::Array(self.sequence(d, "]", " or ']' to follow array element")?)
        } else if first == Some(b'(') {
            self.next();
            Ast::Tuple(self.tuple(d)?)
        } else if first == Some(b'<') {
            self.next();
            let child = self.value(d)?;
            self.require(">", " to follow variant value")?;
            Ast::Variant(Box::new(child))
        } else if first == Some(b'{') {
            self.next();
            self.dict(d)?
        } else if tok == b"true" || tok == b"false" {
            self.next();
            Ast::Bool(tok == b"true")
        } else if matches!(first, Some(b'0'..=b'9' | b'-' | b'+' | b'.'))
            || tok == b"inf"
            || tok == b"nan"
        {
            self.next();
            Ast::Number(String::from_utf8_lossy(tok).into_owned())
        } else if matches!(first, Some(b'n' | b'j')) {
            if self.consume("just") {
                Ast::Maybe(Some(Box::new(self.value(d)?)))
            } else if self.consume("nothing") {
                Ast::Maybe(None)
            } else {
                return Err(self.token_error(K::UnknownKeyword));
            }
        } else if first == Some(b'@')
            || (tok.len() >= 2 && tok[..2].iter().all(u8::is_ascii_alphabetic))
        {
            let ty = self.type_decl(tok)?;
            self.next();
            Ast::TypeDecl(ty, Box::new(self.value(d)?))
        } else if matches!(first, Some(b'\'' | b'"')) {
            let s = unquote_string(tok, start)?;
            self.next();
            Ast::Str(s)
        } else if tok.len() >= 2 && tok[0] == b'b' && matches!(tok[1], b'\'' | b'"') {
            let b = unquote_bytes(&tok[1..], start)?;
            self.next();
            Ast::ByteStr(b)
        } else {
            return Err(err(start, start, K::ValueExpected));
        };
        Ok(Node {
            ast,
            start,
            end: self.pos,
        })
    }

    fn type_decl(&mut self, tok: &[u8]) -> Result<Type, TextError> {
        let ty = match tok {
            [b'@', rest @ ..] => std::str::from_utf8(rest)
                .ok()
                .and_then(|s| Type::parse(s).ok()),
            b"boolean" => Some(Type::Bool),
            b"byte" => Some(Type::Byte),
            b"int16" => Some(Type::Int16),
            b"uint16" => Some(Type::Uint16),
            b"int32" => Some(Type::Int32),
            b"handle" => Some(Type::Handle),
            b"uint32" => Some(Type::Uint32),
            b"int64" => Some(Type::Int64),
            b"uint64" => Some(Type::Uint64),
            b"double" => Some(Type::Double),
            b"string" => Some(Type::String),
            b"objectpath" => Some(Type::ObjectPath),
            b"signature" => Some(Type::Signature),
            _ => return Err(self.token_error(K::UnknownKeyword)),
        };
        ty.ok_or_else(|| self.token_error(K::InvalidTypeString))
    }

    /// Elements up to `close`, separated by commas.
    fn sequence(
        &mut self,
        depth: usize,
        close: &str,
        purpose: &'static str,
    ) -> Result<Vec<Node>, TextError> {
        let mut out = Vec::new();
        while !self.consume(close) {
            if !out.is_empty() {
                self.require(",", purpose)?;
            }
            out.push(self.value(depth)?);
        }
        Ok(out)
    }

    /// A tuple: the first element must be followed by a comma, `(1,)`.
    fn tuple(&mut self, depth: usize) -> Result<Vec<Node>, TextError> {
        let mut out = Vec::new();
        while !self.consume(")") {
            if out.len() >= 2 {
                self.require(",", " or ')' to follow tuple element")?;
            }
            out.push(self.value(depth)?);
            if out.len() == 1 {
                self.require(",", " after first tuple element")?;
            }
        }
        Ok(out)
    }

    /// `{}`, `{k: v, …}` (a dictionary) or `{k, v}` (one dictionary entry).
    fn dict(&mut self, depth: usize) -> Result<Ast, TextError> {
        if self.consume("}") {
            return Ok(Ast::Dict {
                entries: Vec::new(),
                single: false,
            });
        }
        let key = self.value(depth)?;
        let single = self.consume(",");
        if !single {
            self.require(":", " or ',' to follow dictionary entry key")?;
        }
        let val = self.value(depth)?;
        let mut entries = vec![(key, val)];
        if single {
            self.require("}", " at end of dictionary entry")?;
            return Ok(Ast::Dict { entries, single });
        }
        while !self.consume("}") {
            self.require(",", " or '}' to follow dictionary entry")?;
            let key = self.value(depth)?;
            self.require(":", " to follow dictionary entry key")?;
            entries.push((key, self.value(depth)?));
        }
        Ok(Ast::Dict { entries, single })
    }
}

/// End of a quoted token whose opening quote is at `open`: just past the
/// closing quote, or the end of input when unterminated. A backslash
/// protects the next byte.
fn scan_quoted(src: &[u8], open: usize) -> usize {
    let quote = src[open];
    let mut i = open + 1;
    while let Some(&c) = src.get(i) {
        if c == quote {
            return i + 1;
        }
        if c == b'\\' {
            i += 1;
        }
        i += 1;
    }
    src.len()
}

/// The C escapes both string forms share, after a backslash.
fn simple_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'a' => 0x07,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        _ => return None,
    })
}

/// Body of a quoted token (`tok` starts at its quote), unescaped into
/// bytes. `extra` handles escapes particular to one form; it returns how
/// many bytes after the backslash it used.
fn unquote(
    tok: &[u8],
    start: usize,
    mut extra: impl FnMut(&[u8], usize, &mut Vec<u8>) -> Result<Option<usize>, TextError>,
) -> Result<Vec<u8>, TextError> {
    let unterminated = || err(start, start + tok.len(), K::UnterminatedString);
    let quote = tok[0];
    let mut out = Vec::with_capacity(tok.len());
    let mut i = 1;
    loop {
        let c = *tok.get(i).ok_or_else(unterminated)?;
        if c == quote {
            return Ok(out);
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let e = *tok.get(i).ok_or_else(unterminated)?;
        if let Some(b) = simple_escape(e) {
            out.push(b);
            i += 1;
        } else if e == b'\n' {
            i += 1; // line continuation
        } else if let Some(used) = extra(tok, i, &mut out)? {
            i += used;
        } else {
            out.push(e); // any other character stands for itself
            i += 1;
        }
    }
}

fn unquote_string(tok: &[u8], start: usize) -> Result<String, TextError> {
    let bytes = unquote(tok, start, |tok, i, out| {
        let len = match tok[i] {
            b'u' => 4,
            b'U' => 8,
            _ => return Ok(None),
        };
        let digits = tok.get(i + 1..).unwrap_or(&[]);
        let n = digits
            .iter()
            .take(len)
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        let bad = err(start + i + 1, start + i + 1 + n, K::BadUnicodeEscape(len));
        if n < len {
            return Err(bad);
        }
        let hex = std::str::from_utf8(&digits[..len]).map_err(|_| bad.clone())?;
        let c = u32::from_str_radix(hex, 16)
            .ok()
            .filter(|&v| v != 0)
            .and_then(char::from_u32)
            .ok_or(bad)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(Some(len + 1))
    })?;
    String::from_utf8(bytes).map_err(|_| err(start, start + tok.len(), K::BadUnicodeEscape(4)))
}

/// A bytestring's bytes as `g_variant_new_bytestring` stores them: up to
/// the first NUL (an octal escape can make one), then a NUL.
fn unquote_bytes(tok: &[u8], start: usize) -> Result<Vec<u8>, TextError> {
    let mut bytes = unquote(tok, start + 1, |tok, i, out| {
        let octal = |j: usize| {
            tok.get(j)
                .filter(|c| (b'0'..b'8').contains(c))
                .map(|c| c - b'0')
        };
        let Some(first) = octal(i) else {
            return Ok(None);
        };
        let mut v = first;
        let mut used = 1;
        while used < 3 {
            let Some(d) = octal(i + used) else { break };
            v = (v << 3) | d; // wraps like C's guchar
            used += 1;
        }
        out.push(v);
        Ok(Some(used))
    })?;
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    bytes.push(0);
    Ok(bytes)
}
