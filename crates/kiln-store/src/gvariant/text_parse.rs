//! Parser of the GVariant text format, in GLib's two passes: the text is
//! read into a syntax tree; then each node offers a type *pattern*, the
//! patterns of array elements are unified, and the resolved type is pushed
//! back down to build the values.
//!
//! Patterns are type strings with four extra letters: `*` (any type), `N`
//! (some number type), `S` (some string type) and `M` (possibly wrapped in
//! maybes, which a bare `5` is when it sits next to a `nothing`).

use super::{TextError, TextErrorKind as K};
use crate::gvariant::{Type, Value, MAX_DEPTH};

/// Parse GVariant text into a value, inferring its type as
/// `g_variant_parse (NULL, text, NULL, NULL, &error)` does.
pub fn parse(text: &str) -> Result<Value, TextError> {
    // C strings end at the first NUL.
    let text = text.split('\0').next().unwrap_or("");
    let mut p = Parser { src: text.as_bytes(), pos: 0, tok: None };
    let ast = p.value(0)?;
    let v = resolve(&ast)?;
    p.skip_space();
    if p.pos < p.src.len() {
        return Err(err(p.pos, p.pos, K::InputNotAtEnd));
    }
    Ok(v)
}

fn err(start: usize, end: usize, kind: K) -> TextError {
    TextError { start, end, other: None, kind }
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
                while at(end).is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')) {
                    end += 1;
                }
            }
            b'b' if matches!(at(start + 1), Some(b'\'' | b'"')) => end = scan_quoted(src, start + 1),
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
        } else if matches!(first, Some(b'0'..=b'9' | b'-' | b'+' | b'.')) || tok == b"inf" || tok == b"nan" {
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
        } else if first == Some(b'@') || (tok.len() >= 2 && tok[..2].iter().all(u8::is_ascii_alphabetic)) {
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
        Ok(Node { ast, start, end: self.pos })
    }

    fn type_decl(&mut self, tok: &[u8]) -> Result<Type, TextError> {
        let ty = match tok {
            [b'@', rest @ ..] => std::str::from_utf8(rest).ok().and_then(|s| Type::parse(s).ok()),
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
    fn sequence(&mut self, depth: usize, close: &str, purpose: &'static str) -> Result<Vec<Node>, TextError> {
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
            return Ok(Ast::Dict { entries: Vec::new(), single: false });
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
        let n = digits.iter().take(len).take_while(|c| c.is_ascii_hexdigit()).count();
        let bad = err(start + i + 1, start + i + 1 + n, K::BadUnicodeEscape(len));
        if n < len {
            return Err(bad);
        }
        let hex = std::str::from_utf8(&digits[..len]).map_err(|_| bad.clone())?;
        let c = u32::from_str_radix(hex, 16).ok().filter(|&v| v != 0).and_then(char::from_u32).ok_or(bad)?;
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
        let octal = |j: usize| tok.get(j).filter(|c| (b'0'..b'8').contains(c)).map(|c| c - b'0');
        let Some(first) = octal(i) else { return Ok(None) };
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

// ------------------------------------------------------------------ tree

struct Node {
    ast: Ast,
    start: usize,
    end: usize,
}

enum Ast {
    Array(Vec<Node>),
    Tuple(Vec<Node>),
    Variant(Box<Node>),
    /// `single` for one bare dictionary entry `{k, v}`.
    Dict { entries: Vec<(Node, Node)>, single: bool },
    Str(String),
    ByteStr(Vec<u8>),
    Number(String),
    Bool(bool),
    Maybe(Option<Box<Node>>),
    TypeDecl(Type, Box<Node>),
}

impl Node {
    fn error(&self, kind: K) -> TextError {
        err(self.start, self.end, kind)
    }

    fn type_error(&self, ty: &Type) -> TextError {
        self.error(K::TypeMismatch(ty.to_string()))
    }

    fn pattern(&self) -> Result<Vec<u8>, TextError> {
        Ok(match &self.ast {
            Ast::Array(elems) if elems.is_empty() => b"Ma*".to_vec(),
            Ast::Array(elems) => [&b"Ma"[..], &common_pattern(elems.iter())?].concat(),
            Ast::Tuple(members) => {
                let mut p = b"M(".to_vec();
                for m in members {
                    p.extend(m.pattern()?);
                }
                p.push(b')');
                p
            }
            Ast::Variant(_) => b"Mv".to_vec(),
            Ast::Dict { entries, .. } if entries.is_empty() => b"Ma{**}".to_vec(),
            Ast::Dict { entries, single } => {
                let keys = common_pattern(entries.iter().map(|(k, _)| k))?;
                // Keys can not be maybes; the key type is a single letter.
                let key = if keys.first() == Some(&b'M') { keys.get(1) } else { keys.first() };
                let key = key.copied().filter(|c| b"bynqiuxthdsogNS".contains(c));
                let Some(key) = key else { return Err(self.error(K::BasicTypeExpected)) };
                let mut p = if *single { b"M{".to_vec() } else { b"Ma{".to_vec() };
                p.push(key);
                // As GLib does, the value type comes from the first entry.
                p.extend(entries[0].1.pattern()?);
                p.push(b'}');
                p
            }
            Ast::Str(_) => b"MS".to_vec(),
            Ast::ByteStr(_) => b"May".to_vec(),
            Ast::Number(tok) => {
                let float = tok.contains('.')
                    || (!tok.starts_with("0x") && tok.contains('e'))
                    || tok.contains("inf")
                    || tok.contains("nan");
                if float { b"Md".to_vec() } else { b"MN".to_vec() }
            }
            Ast::Bool(_) => b"Mb".to_vec(),
            Ast::Maybe(Some(child)) => [&b"m"[..], &child.pattern()?].concat(),
            Ast::Maybe(None) => b"m*".to_vec(),
            Ast::TypeDecl(ty, _) => ty.to_string().into_bytes(),
        })
    }

    /// Build the value of this node as type `ty`.
    fn value(&self, ty: &Type) -> Result<Value, TextError> {
        match &self.ast {
            Ast::TypeDecl(_, child) => child.value(ty),
            Ast::Maybe(child) => {
                let Type::Maybe(elem) = ty else { return Err(self.type_error(ty)) };
                let child = match child {
                    Some(c) => Some(Box::new(c.value(elem)?)),
                    None => None,
                };
                Ok(Value::Maybe((**elem).clone(), child))
            }
            _ => {
                // Any other value fits a maybe type too, as "just" it.
                let mut wrappers = Vec::new();
                let mut base = ty;
                while let Type::Maybe(elem) = base {
                    wrappers.push(&**elem);
                    base = elem;
                }
                let mut v = self.base_value(base)?;
                for elem in wrappers.into_iter().rev() {
                    v = Value::Maybe(elem.clone(), Some(Box::new(v)));
                }
                Ok(v)
            }
        }
    }

    fn base_value(&self, ty: &Type) -> Result<Value, TextError> {
        let mismatch = || self.type_error(ty);
        match &self.ast {
            Ast::Array(elems) => {
                let Type::Array(elem) = ty else { return Err(mismatch()) };
                let vals = elems.iter().map(|e| e.value(elem)).collect::<Result<Vec<_>, _>>()?;
                Ok(array_value(elem, vals))
            }
            Ast::Tuple(members) => {
                let Type::Tuple(types) = ty else { return Err(mismatch()) };
                if types.len() != members.len() {
                    return Err(mismatch());
                }
                let vals = members.iter().zip(types).map(|(m, t)| m.value(t));
                Ok(Value::Tuple(vals.collect::<Result<_, _>>()?))
            }
            Ast::Variant(child) => {
                if *ty != Type::Variant {
                    return Err(mismatch());
                }
                Ok(Value::Variant(Box::new(resolve(child)?)))
            }
            Ast::Dict { entries, single: true } => {
                let Type::DictEntry(kt, vt) = ty else { return Err(mismatch()) };
                let (k, v) = &entries[0];
                Ok(Value::DictEntry(Box::new(k.value(kt)?), Box::new(v.value(vt)?)))
            }
            Ast::Dict { entries, single: false } => {
                let Type::Array(entry) = ty else { return Err(mismatch()) };
                let Type::DictEntry(kt, vt) = &**entry else { return Err(mismatch()) };
                let mut vals = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    vals.push(Value::DictEntry(Box::new(k.value(kt)?), Box::new(v.value(vt)?)));
                }
                Ok(Value::Array((**entry).clone(), vals))
            }
            Ast::Str(s) => match ty {
                Type::String => Ok(Value::String(s.clone())),
                Type::ObjectPath if is_object_path(s) => Ok(Value::ObjectPath(s.clone())),
                Type::ObjectPath => Err(self.error(K::InvalidObjectPath)),
                Type::Signature if is_signature(s) => Ok(Value::Signature(s.clone())),
                Type::Signature => Err(self.error(K::InvalidSignature)),
                _ => Err(mismatch()),
            },
            Ast::ByteStr(b) => match ty {
                Type::Array(e) if **e == Type::Byte => Ok(Value::Bytes(b.clone())),
                _ => Err(mismatch()),
            },
            Ast::Number(tok) => number(tok, ty).map_err(|kind| self.error(kind)),
            Ast::Bool(b) if *ty == Type::Bool => Ok(Value::Bool(*b)),
            Ast::Bool(_) => Err(mismatch()),
            Ast::Maybe(_) | Ast::TypeDecl(..) => self.value(ty),
        }
    }
}

/// `ay` is kept compact as [`Value::Bytes`].
fn array_value(elem: &Type, vals: Vec<Value>) -> Value {
    if *elem == Type::Byte {
        let bytes: Option<Vec<u8>> = vals
            .iter()
            .map(|v| match v {
                Value::Byte(b) => Some(*b),
                _ => None,
            })
            .collect();
        if let Some(bytes) = bytes {
            return Value::Bytes(bytes);
        }
    }
    Value::Array(elem.clone(), vals)
}

/// Infer the type of a whole (sub)tree and build its value: unknown
/// numbers become `int32`, unknown strings `string`, optional maybes are
/// dropped; anything left undecided is an error.
fn resolve(node: &Node) -> Result<Value, TextError> {
    let pattern = node.pattern()?;
    let mut ty = String::with_capacity(pattern.len());
    for c in pattern {
        match c {
            b'*' => return Err(node.error(K::CannotInferType)),
            b'M' => {}
            b'S' => ty.push('s'),
            b'N' => ty.push('i'),
            c => ty.push(char::from(c)),
        }
    }
    let ty = Type::parse(&ty).map_err(|_| node.error(K::TooDeep))?;
    node.value(&ty)
}

/// Unify the patterns of array elements (or dictionary keys). On failure,
/// report the first pair of elements that disagree.
fn common_pattern<'n>(mut nodes: impl Iterator<Item = &'n Node> + Clone) -> Result<Vec<u8>, TextError> {
    let all = nodes.clone();
    let Some(first) = nodes.next() else { return Ok(b"*".to_vec()) };
    let mut acc = first.pattern()?;
    for (i, node) in nodes.enumerate() {
        let p = node.pattern()?;
        match coalesce(&acc, &p) {
            Some(merged) => acc = merged,
            None => {
                for earlier in all.clone().take(i + 1) {
                    if coalesce(&p, &earlier.pattern()?).is_none() {
                        let mut e = earlier.error(K::NoCommonType);
                        e.other = Some((node.start, node.end));
                        return Err(e);
                    }
                }
                return Err(node.error(K::NoCommonType));
            }
        }
    }
    Ok(acc)
}

/// One complete type (with its maybe/array prefixes) at the start of `p`.
fn one_type(p: &[u8]) -> &[u8] {
    let mut i = p.iter().take_while(|c| matches!(c, b'a' | b'm' | b'M')).count();
    let mut depth = 0usize;
    while let Some(&c) = p.get(i) {
        i += 1;
        match c {
            b'(' | b'{' => depth += 1,
            b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 {
            break;
        }
    }
    &p[..i]
}

/// The most general pattern both `a` and `b` fit, if any.
fn coalesce(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0usize, 0usize);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x == y {
            out.push(x);
            i += 1;
            j += 1;
            continue;
        }
        // Try each rule with `a` as the vaguer side, then with `b`.
        let mut stepped = false;
        for swap in [false, true] {
            let (one, other, oi, oj) = if swap { (b, a, &mut j, &mut i) } else { (a, b, &mut i, &mut j) };
            let (c1, c2) = (one[*oi], other[*oj]);
            if c1 == b'*' && c2 != b')' {
                let t = one_type(&other[*oj..]);
                out.extend_from_slice(t);
                *oj += t.len();
                *oi += 1;
            } else if c1 == b'M' && c2 == b'm' {
                out.push(b'm');
                *oj += 1;
            } else if c1 == b'M' {
                *oi += 1;
            } else if (c1 == b'N' && b"ynqiuxthd".contains(&c2)) || (c1 == b'S' && b"sog".contains(&c2)) {
                out.push(c2);
                *oi += 1;
                *oj += 1;
            } else {
                continue;
            }
            stepped = true;
            break;
        }
        if !stepped {
            return None;
        }
    }
    (i == a.len() && j == b.len()).then_some(out)
}

// --------------------------------------------------------------- numbers

fn number(tok: &str, ty: &Type) -> Result<Value, K> {
    if *ty == Type::Double {
        return strtod(tok).map(Value::Double);
    }
    let (negative, digits) = match tok.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, tok),
    };
    let (abs, overflow, used) = strtoull(digits);
    if abs == u64::MAX && overflow {
        return Err(K::IntegerTooBig);
    }
    if used != digits.len() {
        return Err(K::BadNumber);
    }
    let negative = negative && abs != 0;
    let out_of_range = || K::NumberOutOfRange(ty.to_string().chars().next().unwrap_or('?'));
    // A signed value: |v| may reach MAX + 1 when negative.
    let signed = |max: u64| -> Result<i64, K> {
        if abs - u64::from(negative) > max {
            return Err(out_of_range());
        }
        Ok(if negative { (abs as i64).wrapping_neg() } else { abs as i64 })
    };
    let unsigned = |max: u64| if negative || abs > max { Err(out_of_range()) } else { Ok(abs) };
    Ok(match ty {
        Type::Byte => Value::Byte(unsigned(u8::MAX.into())? as u8),
        Type::Int16 => Value::Int16(signed(i16::MAX as u64)? as i16),
        Type::Uint16 => Value::Uint16(unsigned(u16::MAX.into())? as u16),
        Type::Int32 => Value::Int32(signed(i32::MAX as u64)? as i32),
        Type::Handle => Value::Handle(signed(i32::MAX as u64)? as i32),
        Type::Uint32 => Value::Uint32(unsigned(u32::MAX.into())? as u32),
        Type::Int64 => Value::Int64(signed(i64::MAX as u64)?),
        Type::Uint64 => Value::Uint64(unsigned(u64::MAX)?),
        _ => return Err(K::TypeMismatch(ty.to_string())),
    })
}

/// `g_ascii_strtoull (s, &end, 0)`: an optional sign (a `-` negates, with
/// wrap-around), then hex after `0x`, octal after `0`, else decimal.
/// Returns the value, whether it overflowed, and the bytes used.
fn strtoull(s: &str) -> (u64, bool, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut negative = false;
    if let Some(&c @ (b'+' | b'-')) = b.first() {
        negative = c == b'-';
        i = 1;
    }
    let radix = if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        16
    } else if b.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let digits_start = i;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(i).and_then(|&c| char::from(c).to_digit(radix)) {
        match value.checked_mul(radix.into()).and_then(|v| v.checked_add(d.into())) {
            Some(v) if !overflow => value = v,
            _ => overflow = true,
        }
        i += 1;
    }
    if i == digits_start {
        // No digits: nothing converted, except the "0" of a bare "0x".
        return if radix == 16 { (0, false, digits_start - 1) } else { (0, false, 0) };
    }
    if overflow {
        // C's strtoull gives its maximum, which the sign then negates.
        return (if negative { 1 } else { u64::MAX }, true, i);
    }
    (if negative { value.wrapping_neg() } else { value }, false, i)
}

/// `g_ascii_strtod` over a whole token, with GLib's range checks: a
/// result that overflows, or underflows to a (inexact) subnormal, is
/// "too big"; one that underflows to zero is zero.
fn strtod(tok: &str) -> Result<f64, K> {
    let (negative, body) = match tok.as_bytes().first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let lower = body.to_ascii_lowercase();
    let (v, exact) = if lower.starts_with("0x") {
        hex_float(&lower[2..]).ok_or(K::BadNumber)?
    } else {
        // Rust's grammar is C's for decimal numbers, inf, infinity and nan,
        // with no sign left to read.
        if body.starts_with(['+', '-']) {
            return Err(K::BadNumber);
        }
        let v: f64 = body.parse().map_err(|_| K::BadNumber)?;
        if lower.starts_with("inf") || lower.starts_with("nan") {
            return Ok(if negative { -v } else { v });
        }
        (v, false)
    };
    if v.is_infinite() || (v != 0.0 && !v.is_normal() && !exact) {
        return Err(K::NumberTooBig);
    }
    Ok(if negative { -v } else { v })
}

/// A C99 hex float after its `0x`: hex digits with an optional point and
/// an optional binary exponent. Returns the value and whether it is exact.
fn hex_float(s: &str) -> Option<(f64, bool)> {
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp2: i64 = match exp {
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            e.parse::<i64>().unwrap_or(if e.starts_with('-') { -100_000 } else { 100_000 })
        }
        None => 0,
    };
    // Keep the first 60 significant bits; note whether any bit was dropped.
    let mut m: u64 = 0;
    let mut dropped = false;
    for (k, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = u64::from(c.to_digit(16)?);
        if k >= int.len() {
            exp2 -= 4;
        }
        if m >> 56 == 0 {
            m = (m << 4) | d;
        } else {
            exp2 += 4;
            dropped |= d != 0;
        }
    }
    if m == 0 {
        return Some((0.0, true));
    }
    let exp2 = exp2.clamp(-100_000, 100_000) as i32;
    // Scale in steps that cannot overflow or underflow on the way.
    let mut v = m as f64;
    let mut rest = exp2;
    while rest != 0 {
        let step = rest.clamp(-1000, 1000);
        v *= 2f64.powi(step);
        rest -= step;
        if v == 0.0 || v.is_infinite() {
            break;
        }
    }
    // Exact iff the odd part of the mantissa fits a double's 53 bits at
    // an exponent a double can hold (subnormals included).
    let tz = m.trailing_zeros() as i32;
    let bits = 64 - (m >> tz).leading_zeros() as i32;
    let low = exp2 + tz;
    let exact = !dropped && bits <= 53 && low >= -1074 && low + bits - 1 <= 1023;
    Some((v, exact))
}

// ------------------------------------------------------- string checks

/// `g_variant_is_object_path`.
fn is_object_path(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    if b.len() == 1 {
        return true;
    }
    if b.last() == Some(&b'/') {
        return false;
    }
    b[1..].split(|&c| c == b'/').all(|part| !part.is_empty() && part.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_'))
}

/// `g_variant_is_signature`: zero or more complete types, none of them a
/// maybe.
fn is_signature(s: &str) -> bool {
    let mut rest = s.as_bytes();
    if !rest.iter().all(|c| b"ybnqiuxthdvasog(){}".contains(c)) {
        return false;
    }
    while !rest.is_empty() {
        match Type::parse_prefix(rest, 0) {
            Some((_, used)) => rest = &rest[used..],
            None => return false,
        }
    }
    true
}
