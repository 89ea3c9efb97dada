//! GVariant container framing on raw bytes.
//!
//! Deltas carry large byte blobs (part payloads, embedded commits) inside
//! GVariant tuples. Splitting and building those tuples here, without
//! going through `gvariant::Value`, keeps the blobs zero-copy and lets the
//! embedded commit keep its exact bytes (its checksum covers them). Nested
//! small values are decoded with `kiln_store::gvariant::decode`, which is
//! just as strict.

use kiln_store::gvariant::{align_up, offset_size, offset_size_for, read_offset, Type};

/// The byte ranges of a tuple's members (a tuple that has at least one
/// variable-size member).
pub(crate) fn split_tuple<'a>(
    members: &[Type],
    data: &'a [u8],
) -> Result<Vec<&'a [u8]>, &'static str> {
    let osz = offset_size(data.len());
    let n_offsets = members
        .iter()
        .enumerate()
        .filter(|(i, m)| m.fixed_size().is_none() && i + 1 < members.len())
        .count();
    let table_start = data
        .len()
        .checked_sub(n_offsets * osz)
        .ok_or("tuple framing table larger than the tuple")?;
    let mut out = Vec::with_capacity(members.len());
    let mut pos = 0usize;
    let mut next = 0usize;
    for (i, m) in members.iter().enumerate() {
        let start = align_up(pos, m.alignment());
        let end = if let Some(size) = m.fixed_size() {
            start.checked_add(size).ok_or("tuple overflow")?
        } else if i + 1 == members.len() {
            table_start
        } else {
            next += 1;
            read_offset(data, data.len() - next * osz, osz).ok_or("tuple framing")?
        };
        if start > end || end > table_start {
            return Err("tuple member out of range");
        }
        out.push(&data[start..end]);
        pos = end;
    }
    Ok(out)
}

/// The byte ranges of an array's elements, for variable-size elements.
pub(crate) fn split_array<'a>(elem: &Type, data: &'a [u8]) -> Result<Vec<&'a [u8]>, &'static str> {
    if elem.fixed_size().is_some() {
        return Err("split_array is for variable-size elements");
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let osz = offset_size(data.len());
    let last_end = read_offset(data, data.len() - osz, osz).ok_or("array framing")?;
    if last_end > data.len() {
        return Err("array framing offset out of range");
    }
    let table = data.len() - last_end;
    if !table.is_multiple_of(osz) {
        return Err("array framing table has a bad size");
    }
    let n = table / osz;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    let mut start = 0usize;
    for i in 0..n {
        let end = read_offset(data, last_end + i * osz, osz).ok_or("array framing")?;
        let s = align_up(start, elem.alignment());
        if s > end || end > last_end {
            return Err("array element offsets out of order");
        }
        out.push(&data[s..end]);
        start = end;
    }
    Ok(out)
}

fn write_offsets(out: &mut Vec<u8>, body: usize, offsets: &[usize]) {
    let size = offset_size_for(body, offsets.len());
    for &o in offsets {
        out.extend_from_slice(&(o as u64).to_le_bytes()[..size]);
    }
}

/// Build a tuple in normal form from its members' serialized bytes.
pub(crate) fn build_tuple(members: &[(&Type, &[u8])]) -> Vec<u8> {
    let total: usize = members.iter().map(|(_, b)| b.len() + 8).sum();
    let mut out = Vec::with_capacity(total + 16);
    let mut offsets = Vec::new();
    for (i, (t, b)) in members.iter().enumerate() {
        out.resize(align_up(out.len(), t.alignment()), 0);
        out.extend_from_slice(b);
        if t.fixed_size().is_none() && i + 1 < members.len() {
            offsets.push(out.len());
        }
    }
    let tuple = Type::Tuple(members.iter().map(|(t, _)| (*t).clone()).collect());
    if let Some(size) = tuple.fixed_size() {
        out.resize(size, 0);
    } else {
        offsets.reverse();
        let body = out.len();
        write_offsets(&mut out, body, &offsets);
    }
    out
}

/// Build an array of variable-size elements from their serialized bytes.
pub(crate) fn build_array(elem: &Type, elems: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(elems.iter().map(|e| e.len() + 8).sum());
    if elem.fixed_size().is_some() {
        for e in elems {
            out.extend_from_slice(e);
        }
        return out;
    }
    let mut offsets = Vec::with_capacity(elems.len());
    for e in elems {
        out.resize(align_up(out.len(), elem.alignment()), 0);
        out.extend_from_slice(e);
        offsets.push(out.len());
    }
    let body = out.len();
    write_offsets(&mut out, body, &offsets);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_store::gvariant::{self, Value};

    #[test]
    fn agrees_with_the_store_encoder() {
        let ty = Type::parse("(a{sv}tayay(uayttay)a(yaytt))").unwrap();
        let v = Value::Tuple(vec![
            Value::Array(gvariant::vardict_entry_type(), vec![]),
            Value::Uint64(7),
            Value::Bytes(vec![1, 2, 3]),
            Value::Bytes(vec![]),
            Value::Tuple(vec![
                Value::Uint32(0),
                Value::Bytes(vec![9; 32]),
                Value::Uint64(1),
                Value::Uint64(2),
                Value::Bytes(vec![5; 33]),
            ]),
            Value::Array(Type::parse("(yaytt)").unwrap(), vec![]),
        ]);
        let enc = gvariant::encode(&v);
        let Type::Tuple(members) = &ty else {
            unreachable!()
        };
        let parts = split_tuple(members, &enc).unwrap();
        assert_eq!(parts[2], &[1, 2, 3]);
        let rebuilt = build_tuple(
            &members
                .iter()
                .zip(parts.iter())
                .map(|(t, b)| (t, *b))
                .collect::<Vec<_>>(),
        );
        assert_eq!(rebuilt, enc);

        let arr_ty = Type::parse("(say)").unwrap();
        let elems: Vec<Value> = (0..300)
            .map(|i| {
                Value::Tuple(vec![
                    Value::str(format!("n{i}")),
                    Value::Bytes(vec![i as u8; i % 7]),
                ])
            })
            .collect();
        let enc = gvariant::encode(&Value::Array(arr_ty.clone(), elems.clone()));
        let split = split_array(&arr_ty, &enc).unwrap();
        assert_eq!(split.len(), 300);
        let owned: Vec<Vec<u8>> = split.iter().map(|s| s.to_vec()).collect();
        assert_eq!(build_array(&arr_ty, &owned), enc);
    }

    #[test]
    fn hostile_framing_is_an_error() {
        let members = [Type::parse("ay").unwrap(), Type::parse("ay").unwrap()];
        assert!(split_tuple(&members, &[1, 2, 0xff]).is_err());
        assert!(split_array(&Type::parse("ay").unwrap(), &[0xff]).is_err());
    }
}
