//! Type inference for GVariant text, in GLib's second pass: each node of
//! the syntax tree offers a type *pattern*, the patterns of array elements
//! are unified, and the resolved type is pushed back down to build values.
//!
//! Patterns are type strings with four extra letters: `*` (any type), `N`
//! (some number type), `S` (some string type) and `M` (possibly wrapped in
//! maybes, which a bare `5` is when it sits next to a `nothing`).

use super::number::number;
use super::parse_impl::err;
use super::{TextError, TextErrorKind as K};
use crate::gvariant::{Type, Value};

pub(super) struct Node {
    pub(super) ast: Ast,
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) enum Ast {
    Array(Vec<Node>),
    Tuple(Vec<Node>),
    Variant(Box<Node>),
    /// `single` for one bare dictionary entry `{k, v}`.
    Dict {
        entries: Vec<(Node, Node)>,
        single: bool,
    },
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
                let key = if keys.first() == Some(&b'M') {
                    keys.get(1)
                } else {
                    keys.first()
                };
                let key = key.copied().filter(|c| b"bynqiuxthdsogNS".contains(c));
                let Some(key) = key else {
                    return Err(self.error(K::BasicTypeExpected));
                };
                let mut p = if *single {
                    b"M{".to_vec()
                } else {
                    b"Ma{".to_vec()
                };
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
                if float {
                    b"Md".to_vec()
                } else {
                    b"MN".to_vec()
                }
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
                let Type::Maybe(elem) = ty else {
                    return Err(self.type_error(ty));
                };
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
                let Type::Array(elem) = ty else {
                    return Err(mismatch());
                };
                let vals = elems
                    .iter()
                    .map(|e| e.value(elem))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(array_value(elem, vals))
            }
            Ast::Tuple(members) => {
                let Type::Tuple(types) = ty else {
                    return Err(mismatch());
                };
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
            Ast::Dict {
                entries,
                single: true,
            } => {
                let Type::DictEntry(kt, vt) = ty else {
                    return Err(mismatch());
                };
                let (k, v) = &entries[0];
                Ok(Value::DictEntry(
                    Box::new(k.value(kt)?),
                    Box::new(v.value(vt)?),
                ))
            }
            Ast::Dict {
                entries,
                single: false,
            } => {
                let Type::Array(entry) = ty else {
                    return Err(mismatch());
                };
                let Type::DictEntry(kt, vt) = &**entry else {
                    return Err(mismatch());
                };
                let mut vals = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    vals.push(Value::DictEntry(
                        Box::new(k.value(kt)?),
                        Box::new(v.value(vt)?),
                    ));
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
pub(super) fn resolve(node: &Node) -> Result<Value, TextError> {
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
fn common_pattern<'n>(
    mut nodes: impl Iterator<Item = &'n Node> + Clone,
) -> Result<Vec<u8>, TextError> {
    let all = nodes.clone();
    let Some(first) = nodes.next() else {
        return Ok(b"*".to_vec());
    };
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
    let mut i = p
        .iter()
        .take_while(|c| matches!(c, b'a' | b'm' | b'M'))
        .count();
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
            let (one, other, oi, oj) = if swap {
                (b, a, &mut j, &mut i)
            } else {
                (a, b, &mut i, &mut j)
            };
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
            } else if (c1 == b'N' && b"ynqiuxthd".contains(&c2))
                || (c1 == b'S' && b"sog".contains(&c2))
            {
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
    b[1..].split(|&c| c == b'/').all(|part| {
        !part.is_empty() && part.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
    })
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
