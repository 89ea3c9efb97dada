//! Strict GVariant decoder: hostile input gives an error, never a panic.
//!
//! Unlike GLib, which substitutes default values for malformed data, kiln
//! refuses it: every object it reads is also checked against its checksum,
//! so a malformed object is a corrupt (or hostile) one.

use super::{align_up, Type, Value, VariantError, MAX_DEPTH};

/// Decode `data` as a value of type `ty`.
pub fn decode(ty: &Type, data: &[u8]) -> Result<Value, VariantError> {
    read(ty, data, 0)
}

fn bad(ty: &Type, why: &'static str) -> VariantError {
    VariantError::Malformed {
        ty: ty.to_string(),
        why,
    }
}

/// Size of one framing offset in a container of `len` bytes.
pub fn offset_size(len: usize) -> usize {
    if len == 0 {
        0
    } else if len <= u8::MAX as usize {
        1
    } else if len <= u16::MAX as usize {
        2
    } else if len as u64 <= u32::MAX as u64 {
        4
    } else {
        8
    }
}

/// Read a little-endian framing offset of `size` bytes at `at`.
pub fn read_offset(data: &[u8], at: usize, size: usize) -> Option<usize> {
    let bytes = data.get(at..at.checked_add(size)?)?;
    let mut buf = [0u8; 8];
    buf[..size].copy_from_slice(bytes);
    usize::try_from(u64::from_le_bytes(buf)).ok()
}

fn fixed<const N: usize>(ty: &Type, data: &[u8]) -> Result<[u8; N], VariantError> {
    data.try_into()
        .map_err(|_| bad(ty, "wrong size for a fixed-size value"))
}

fn read_str<'a>(ty: &Type, data: &'a [u8]) -> Result<&'a str, VariantError> {
    let (last, body) = data
        .split_last()
        .ok_or_else(|| bad(ty, "empty string data"))?;
    if *last != 0 || body.contains(&0) {
        return Err(bad(ty, "string not NUL-terminated or contains NUL"));
    }
    std::str::from_utf8(body).map_err(|_| bad(ty, "string is not UTF-8"))
}

fn read(ty: &Type, data: &[u8], depth: usize) -> Result<Value, VariantError> {
    if depth > MAX_DEPTH {
        return Err(VariantError::TooDeep);
    }
    Ok(match ty {
        Type::Bool => match fixed::<1>(ty, data)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(bad(ty, "boolean is neither 0 nor 1")),
        },
        Type::Byte => Value::Byte(fixed::<1>(ty, data)?[0]),
        Type::Int16 => Value::Int16(i16::from_le_bytes(fixed(ty, data)?)),
        Type::Uint16 => Value::Uint16(u16::from_le_bytes(fixed(ty, data)?)),
        Type::Int32 => Value::Int32(i32::from_le_bytes(fixed(ty, data)?)),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(ty, data)?)),
        Type::Uint32 => Value::Uint32(u32::from_le_bytes(fixed(ty, data)?)),
        Type::Int64 => Value::Int64(i64::from_le_bytes(fixed(ty, data)?)),
        Type::Uint64 => Value::Uint64(u64::from_le_bytes(fixed(ty, data)?)),
        Type::Double => Value::Double(f64::from_le_bytes(fixed(ty, data)?)),
        Type::String => Value::String(read_str(ty, data)?.to_string()),
        Type::ObjectPath => Value::ObjectPath(read_str(ty, data)?.to_string()),
        Type::Signature => Value::Signature(read_str(ty, data)?.to_string()),
        Type::Variant => {
            let sep = data
                .iter()
                .rposition(|&b| b == 0)
                .ok_or_else(|| bad(ty, "variant without type"))?;
            let tystr = std::str::from_utf8(&data[sep + 1..])
                .map_err(|_| bad(ty, "variant type not UTF-8"))?;
            let (child_ty, used) = Type::parse_prefix(tystr.as_bytes(), depth + 1)
                .ok_or_else(|| bad(ty, "variant has a bad type string"))?;
            if used != tystr.len() {
                return Err(bad(ty, "variant has a bad type string"));
            }
            Value::Variant(Box::new(read(&child_ty, &data[..sep], depth + 1)?))
        }
        Type::Maybe(t) => {
            if data.is_empty() {
                Value::Maybe((**t).clone(), None)
            } else if t.fixed_size().is_some() {
                Value::Maybe((**t).clone(), Some(Box::new(read(t, data, depth + 1)?)))
            } else {
                let (last, body) = data.split_last().ok_or_else(|| bad(ty, "empty maybe"))?;
                if *last != 0 {
                    return Err(bad(ty, "maybe without trailing NUL"));
                }
                Value::Maybe((**t).clone(), Some(Box::new(read(t, body, depth + 1)?)))
            }
        }
        Type::Array(t) => read_array(ty, t, data, depth)?,
        Type::Tuple(ms) => Value::Tuple(read_struct(ty, ms, data, depth)?),
        Type::DictEntry(k, v) => {
            let members = [(**k).clone(), (**v).clone()];
            let mut vals = read_struct(ty, &members, data, depth)?;
            let v = vals.pop().ok_or_else(|| bad(ty, "dict entry"))?;
            let k = vals.pop().ok_or_else(|| bad(ty, "dict entry"))?;
            Value::DictEntry(Box::new(k), Box::new(v))
        }
    })
}

fn read_array(ty: &Type, elem: &Type, data: &[u8], depth: usize) -> Result<Value, VariantError> {
    if *elem == Type::Byte {
        return Ok(Value::Bytes(data.to_vec()));
    }
    if let Some(size) = elem.fixed_size() {
        if !data.len().is_multiple_of(size) {
            return Err(bad(ty, "array size is not a multiple of its element size"));
        }
        let elems = data
            .chunks_exact(size)
            .map(|c| read(elem, c, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Value::Array(elem.clone(), elems));
    }
    if data.is_empty() {
        return Ok(Value::Array(elem.clone(), Vec::new()));
    }
    let osz = offset_size(data.len());
    let last_end =
        read_offset(data, data.len() - osz, osz).ok_or_else(|| bad(ty, "array framing"))?;
    if last_end > data.len() {
        return Err(bad(ty, "array framing offset out of range"));
    }
    let table = data.len() - last_end;
    if !table.is_multiple_of(osz) {
        return Err(bad(ty, "array framing table has a bad size"));
    }
    let n = table / osz;
    let align = elem.alignment();
    let mut elems = Vec::with_capacity(n.min(65536));
    let mut start = 0usize;
    for i in 0..n {
        let end =
            read_offset(data, last_end + i * osz, osz).ok_or_else(|| bad(ty, "array framing"))?;
        let s = align_up(start, align);
        if s > end || end > last_end {
            return Err(bad(ty, "array element offsets out of order"));
        }
        elems.push(read(elem, &data[s..end], depth + 1)?);
        start = end;
    }
    Ok(Value::Array(elem.clone(), elems))
}

fn read_struct(
    ty: &Type,
    members: &[Type],
    data: &[u8],
    depth: usize,
) -> Result<Vec<Value>, VariantError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(size) = ty.fixed_size() {
        if data.len() != size {
            return Err(bad(ty, "fixed-size tuple has the wrong size"));
        }
    }
    let osz = offset_size(data.len());
    let n_offsets = members
        .iter()
        .enumerate()
        .filter(|(i, m)| m.fixed_size().is_none() && i + 1 < members.len())
        .count();
    let table_start = data
        .len()
        .checked_sub(n_offsets * osz)
        .ok_or_else(|| bad(ty, "tuple framing table larger than the tuple"))?;
    let mut out = Vec::with_capacity(members.len());
    let mut pos = 0usize;
    let mut next_offset = 0usize; // offsets are read from the end backwards
    for (i, m) in members.iter().enumerate() {
        let start = align_up(pos, m.alignment());
        let end = if let Some(size) = m.fixed_size() {
            start
                .checked_add(size)
                .ok_or_else(|| bad(ty, "tuple overflow"))?
        } else if i + 1 == members.len() {
            table_start
        } else {
            next_offset += 1;
            let at = data.len() - next_offset * osz;
            read_offset(data, at, osz).ok_or_else(|| bad(ty, "tuple framing"))?
        };
        if start > end || end > table_start {
            return Err(bad(ty, "tuple member out of range"));
        }
        out.push(read(m, &data[start..end], depth + 1)?);
        pos = end;
    }
    Ok(out)
}
