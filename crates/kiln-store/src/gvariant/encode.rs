//! Normal-form GVariant encoder.

use super::{align_up, Type, Value};

/// Serialize `value` in GVariant normal form (little-endian host order).
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value);
    out
}

fn pad_to(out: &mut Vec<u8>, base: usize, align: usize) {
    let rel = out.len() - base;
    let target = align_up(rel, align);
    out.resize(base + target, 0);
}

/// Size in bytes of one framing offset for a container whose body is
/// `body` bytes long and needs `n` offsets.
pub fn offset_size_for(body: usize, n: usize) -> usize {
    if n == 0 && body == 0 {
        return 0;
    }
    if body + n <= u8::MAX as usize {
        1
    } else if body + 2 * n <= u16::MAX as usize {
        2
    } else if body as u64 + 4 * n as u64 <= u32::MAX as u64 {
        4
    } else {
        8
    }
}

fn write_offsets(out: &mut Vec<u8>, base: usize, offsets: &[usize]) {
    let body = out.len() - base;
    let size = offset_size_for(body, offsets.len());
    for &o in offsets {
        let bytes = (o as u64).to_le_bytes();
        out.extend_from_slice(&bytes[..size]);
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => out.push(*b as u8),
        Value::Byte(b) => out.push(*b),
        Value::Int16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Uint16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Int32(v) | Value::Handle(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Uint32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Int64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Uint64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Double(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::String(s) | Value::ObjectPath(s) | Value::Signature(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Variant(child) => {
            write_value(out, child);
            out.push(0);
            out.extend_from_slice(child.type_of().to_string().as_bytes());
        }
        Value::Bytes(b) => out.extend_from_slice(b),
        Value::Maybe(t, v) => {
            if let Some(v) = v {
                write_value(out, v);
                if t.fixed_size().is_none() {
                    out.push(0);
                }
            }
        }
        Value::Array(t, elems) => write_array(out, t, elems),
        Value::Tuple(members) => write_struct(out, members.iter(), &value.type_of()),
        Value::DictEntry(k, v) => {
            write_struct(out, [k.as_ref(), v.as_ref()].into_iter(), &value.type_of())
        }
    }
}

fn write_array(out: &mut Vec<u8>, elem: &Type, elems: &[Value]) {
    let base = out.len();
    if elem.fixed_size().is_some() {
        for e in elems {
            write_value(out, e);
        }
        return;
    }
    let align = elem.alignment();
    let mut offsets = Vec::with_capacity(elems.len());
    for e in elems {
        pad_to(out, base, align);
        write_value(out, e);
        offsets.push(out.len() - base);
    }
    write_offsets(out, base, &offsets);
}

fn write_struct<'a>(
    out: &mut Vec<u8>,
    members: impl ExactSizeIterator<Item = &'a Value>,
    ty: &Type,
) {
    let base = out.len();
    let n = members.len();
    if n == 0 {
        out.push(0); // unit tuple
        return;
    }
    let mut offsets = Vec::new();
    for (i, m) in members.enumerate() {
        let mt = m.type_of();
        pad_to(out, base, mt.alignment());
        write_value(out, m);
        if mt.fixed_size().is_none() && i + 1 < n {
            offsets.push(out.len() - base);
        }
    }
    if let Some(size) = ty.fixed_size() {
        out.resize(base + size, 0);
    } else {
        offsets.reverse();
        write_offsets(out, base, &offsets);
    }
}
