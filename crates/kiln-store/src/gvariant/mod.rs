//! GVariant serialization (the binary format of GLib's `GVariant`), as OSTree
//! stores its objects.
//!
//! Everything kiln needs from GVariant lives behind this module: a type
//! model ([`Type`]), an owned value model ([`Value`]), the normal-form encoder
//! and a strict decoder that never panics on hostile bytes. OSTree-specific
//! helpers (big-endian integers, checksums as `ay`) live in `crate::object`.

mod decode;
mod encode;
pub mod text;

pub use decode::{decode, offset_size, read_offset};
pub use encode::{encode, offset_size_for};

use std::fmt;

/// Errors from parsing a GVariant type string or data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VariantError {
    #[error("invalid GVariant type string {0:?}")]
    BadType(String),
    #[error("malformed GVariant of type {ty}: {why}")]
    Malformed { ty: String, why: &'static str },
    #[error("GVariant nesting too deep")]
    TooDeep,
    #[error("value does not match type {0}")]
    TypeMismatch(String),
}

/// A GVariant type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Byte,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Uint64,
    Handle,
    Double,
    String,
    ObjectPath,
    Signature,
    Variant,
    Array(Box<Type>),
    Maybe(Box<Type>),
    Tuple(Vec<Type>),
    DictEntry(Box<Type>, Box<Type>),
}

pub(crate) const MAX_DEPTH: usize = 64;

impl Type {
    /// Parse a complete type string such as `(a{sv}aya(say)sstayay)`.
    pub fn parse(s: &str) -> Result<Type, VariantError> {
        let bytes = s.as_bytes();
        let (ty, used) =
            Self::parse_prefix(bytes, 0).ok_or_else(|| VariantError::BadType(s.into()))?;
        if used != bytes.len() {
            return Err(VariantError::BadType(s.into()));
        }
        Ok(ty)
    }

    /// Parse one type at the start of `b`, returning it and the bytes used.
    pub(crate) fn parse_prefix(b: &[u8], depth: usize) -> Option<(Type, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let c = *b.first()?;
        let simple = match c {
            b'b' => Some(Type::Bool),
            b'y' => Some(Type::Byte),
            b'n' => Some(Type::Int16),
            b'q' => Some(Type::Uint16),
            b'i' => Some(Type::Int32),
            b'u' => Some(Type::Uint32),
            b'x' => Some(Type::Int64),
            b't' => Some(Type::Uint64),
            b'h' => Some(Type::Handle),
            b'd' => Some(Type::Double),
            b's' => Some(Type::String),
            b'o' => Some(Type::ObjectPath),
            b'g' => Some(Type::Signature),
            b'v' => Some(Type::Variant),
            _ => None,
        };
        if let Some(t) = simple {
            return Some((t, 1));
        }
        match c {
            b'a' => {
                let (t, n) = Self::parse_prefix(&b[1..], depth + 1)?;
                Some((Type::Array(Box::new(t)), n + 1))
            }
            b'm' => {
                let (t, n) = Self::parse_prefix(&b[1..], depth + 1)?;
                Some((Type::Maybe(Box::new(t)), n + 1))
            }
            b'(' => {
                let mut i = 1;
                let mut members = Vec::new();
                loop {
                    if *b.get(i)? == b')' {
                        return Some((Type::Tuple(members), i + 1));
                    }
                    let (t, n) = Self::parse_prefix(&b[i..], depth + 1)?;
                    members.push(t);
                    i += n;
                }
            }
            b'{' => {
                let (k, n1) = Self::parse_prefix(&b[1..], depth + 1)?;
                if !k.is_basic() {
                    return None;
                }
                let (v, n2) = Self::parse_prefix(&b[1 + n1..], depth + 1)?;
                if *b.get(1 + n1 + n2)? != b'}' {
                    return None;
                }
                Some((Type::DictEntry(Box::new(k), Box::new(v)), n1 + n2 + 2))
            }
            _ => None,
        }
    }

    pub fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Array(_) | Type::Maybe(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// Alignment in bytes (1, 2, 4 or 8).
    pub fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::String | Type::ObjectPath | Type::Signature => 1,
            Type::Int16 | Type::Uint16 => 2,
            Type::Int32 | Type::Uint32 | Type::Handle => 4,
            Type::Int64 | Type::Uint64 | Type::Double | Type::Variant => 8,
            Type::Array(t) | Type::Maybe(t) => t.alignment(),
            Type::Tuple(ms) => ms.iter().map(|m| m.alignment()).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size in bytes when every value of the type has the same size.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::Int16 | Type::Uint16 => Some(2),
            Type::Int32 | Type::Uint32 | Type::Handle => Some(4),
            Type::Int64 | Type::Uint64 | Type::Double => Some(8),
            Type::String
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Array(_)
            | Type::Maybe(_) => None,
            Type::Tuple(ms) => Self::fixed_struct_size(ms.iter(), self.alignment()),
            Type::DictEntry(k, v) => {
                Self::fixed_struct_size([k.as_ref(), v.as_ref()].into_iter(), self.alignment())
            }
        }
    }

    fn fixed_struct_size<'a>(
        members: impl Iterator<Item = &'a Type>,
        align: usize,
    ) -> Option<usize> {
        let mut off = 0usize;
        let mut any = false;
        for m in members {
            any = true;
            let s = m.fixed_size()?;
            off = align_up(off, m.alignment()) + s;
        }
        if !any {
            return Some(1); // the unit tuple
        }
        Some(align_up(off, align))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("b"),
            Type::Byte => f.write_str("y"),
            Type::Int16 => f.write_str("n"),
            Type::Uint16 => f.write_str("q"),
            Type::Int32 => f.write_str("i"),
            Type::Uint32 => f.write_str("u"),
            Type::Int64 => f.write_str("x"),
            Type::Uint64 => f.write_str("t"),
            Type::Handle => f.write_str("h"),
            Type::Double => f.write_str("d"),
            Type::String => f.write_str("s"),
            Type::ObjectPath => f.write_str("o"),
            Type::Signature => f.write_str("g"),
            Type::Variant => f.write_str("v"),
            Type::Array(t) => write!(f, "a{t}"),
            Type::Maybe(t) => write!(f, "m{t}"),
            Type::Tuple(ms) => {
                f.write_str("(")?;
                for m in ms {
                    write!(f, "{m}")?;
                }
                f.write_str(")")
            }
            Type::DictEntry(k, v) => write!(f, "{{{k}{v}}}"),
        }
    }
}

/// Round `off` up to a multiple of `align` (a power of two).
pub fn align_up(off: usize, align: usize) -> usize {
    (off + align - 1) & !(align - 1)
}

/// An owned GVariant value. Integers are held in host order; OSTree's
/// big-endian fields are converted by the object layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Byte(u8),
    Int16(i16),
    Uint16(u16),
    Int32(i32),
    Uint32(u32),
    Int64(i64),
    Uint64(u64),
    Handle(i32),
    Double(f64),
    String(String),
    ObjectPath(String),
    Signature(String),
    Variant(Box<Value>),
    /// An array of bytes (`ay`), kept compact.
    Bytes(Vec<u8>),
    /// Any other array: its element type and elements.
    Array(Type, Vec<Value>),
    Maybe(Type, Option<Box<Value>>),
    Tuple(Vec<Value>),
    DictEntry(Box<Value>, Box<Value>),
}

impl Value {
    /// The type of this value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Bool,
            Value::Byte(_) => Type::Byte,
            Value::Int16(_) => Type::Int16,
            Value::Uint16(_) => Type::Uint16,
            Value::Int32(_) => Type::Int32,
            Value::Uint32(_) => Type::Uint32,
            Value::Int64(_) => Type::Int64,
            Value::Uint64(_) => Type::Uint64,
            Value::Handle(_) => Type::Handle,
            Value::Double(_) => Type::Double,
            Value::String(_) => Type::String,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Bytes(_) => Type::Array(Box::new(Type::Byte)),
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Tuple(vs) => Type::Tuple(vs.iter().map(|v| v.type_of()).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.type_of()), Box::new(v.type_of())),
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint64(v) => Some(v),
            Value::Uint32(v) => Some(v as u64),
            Value::Byte(v) => Some(v as u64),
            Value::Uint16(v) => Some(v as u64),
            Value::Int64(v) if v >= 0 => Some(v as u64),
            Value::Int32(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    /// Members of a tuple, elements of an array.
    pub fn children(&self) -> &[Value] {
        match self {
            Value::Tuple(vs) | Value::Array(_, vs) => vs,
            _ => &[],
        }
    }

    /// Unwrap one `v` layer, if this is a variant.
    pub fn unvariant(&self) -> &Value {
        match self {
            Value::Variant(v) => v,
            other => other,
        }
    }

    /// The same value with every multi-byte integer byte-swapped, like
    /// `g_variant_byteswap`.
    pub fn byteswap(&self) -> Value {
        match self {
            Value::Int16(v) => Value::Int16(v.swap_bytes()),
            Value::Uint16(v) => Value::Uint16(v.swap_bytes()),
            Value::Int32(v) => Value::Int32(v.swap_bytes()),
            Value::Uint32(v) => Value::Uint32(v.swap_bytes()),
            Value::Int64(v) => Value::Int64(v.swap_bytes()),
            Value::Uint64(v) => Value::Uint64(v.swap_bytes()),
            Value::Handle(v) => Value::Handle(v.swap_bytes()),
            Value::Double(v) => Value::Double(f64::from_bits(v.to_bits().swap_bytes())),
            Value::Variant(v) => Value::Variant(Box::new(v.byteswap())),
            Value::Array(t, vs) => {
                Value::Array(t.clone(), vs.iter().map(|v| v.byteswap()).collect())
            }
            Value::Maybe(t, v) => {
                Value::Maybe(t.clone(), v.as_ref().map(|v| Box::new(v.byteswap())))
            }
            Value::Tuple(vs) => Value::Tuple(vs.iter().map(|v| v.byteswap()).collect()),
            Value::DictEntry(k, v) => {
                Value::DictEntry(Box::new(k.byteswap()), Box::new(v.byteswap()))
            }
            other => other.clone(),
        }
    }
}

/// An `a{sv}` dictionary kept in insertion order (order is part of an
/// OSTree commit's checksum).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarDict(pub Vec<(String, Value)>);

impl VarDict {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_str())
    }

    /// Insert or replace, keeping the position of an existing key.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.0.push((key, value));
        }
    }

    /// Append without checking for an existing key (what GVariantBuilder does).
    pub fn push(&mut self, key: impl Into<String>, value: Value) {
        self.0.push((key.into(), value));
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_value(&self) -> Value {
        Value::Array(
            vardict_entry_type(),
            self.0
                .iter()
                .map(|(k, v)| {
                    Value::DictEntry(
                        Box::new(Value::String(k.clone())),
                        Box::new(Value::Variant(Box::new(v.clone()))),
                    )
                })
                .collect(),
        )
    }

    pub fn from_value(v: &Value) -> Option<VarDict> {
        let Value::Array(_, entries) = v else {
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let Value::DictEntry(k, v) = e else {
                return None;
            };
            let k = k.as_str()?.to_string();
            let Value::Variant(v) = v.as_ref() else {
                return None;
            };
            out.push((k, (**v).clone()));
        }
        Some(VarDict(out))
    }
}

pub fn vardict_entry_type() -> Type {
    Type::DictEntry(Box::new(Type::String), Box::new(Type::Variant))
}

#[cfg(test)]
mod tests;
