//! Numbers in GVariant text, read as GLib reads them: C's `strtoull`
//! (decimal, `0x` hex, `0` octal) and `strtod` rules, then GLib's range
//! checks for the type inferred.

use super::TextErrorKind as K;
use crate::gvariant::{Type, Value};

pub(super) fn number(tok: &str, ty: &Type) -> Result<Value, K> {
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
        Ok(if negative {
            (abs as i64).wrapping_neg()
        } else {
            abs as i64
        })
    };
    let unsigned = |max: u64| {
        if negative || abs > max {
            Err(out_of_range())
        } else {
            Ok(abs)
        }
    };
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
        match value
            .checked_mul(radix.into())
            .and_then(|v| v.checked_add(d.into()))
        {
            Some(v) if !overflow => value = v,
            _ => overflow = true,
        }
        i += 1;
    }
    if i == digits_start {
        // No digits: nothing converted, except the "0" of a bare "0x".
        return if radix == 16 {
            (0, false, digits_start - 1)
        } else {
            (0, false, 0)
        };
    }
    if overflow {
        // C's strtoull gives its maximum, which the sign then negates.
        return (if negative { 1 } else { u64::MAX }, true, i);
    }
    (
        if negative {
            value.wrapping_neg()
        } else {
            value
        },
        false,
        i,
    )
}

/// `g_ascii_strtod` over a whole token; a result that overflows is "too
/// big". (GLib also refuses results that underflow to a subnormal, so it
/// can not read back what it prints for them; kiln accepts them.)
fn strtod(tok: &str) -> Result<f64, K> {
    let (negative, body) = match tok.as_bytes().first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(hex) = lower.strip_prefix("0x") {
        hex_float(hex).ok_or(K::BadNumber)?
    } else {
        // Rust's grammar is C's for decimal numbers, inf, infinity and nan,
        // once the sign is read.
        if body.starts_with(['+', '-']) {
            return Err(K::BadNumber);
        }
        let v: f64 = body.parse().map_err(|_| K::BadNumber)?;
        if v.is_infinite() && !lower.starts_with("inf") {
            return Err(K::NumberTooBig);
        }
        v
    };
    if v.is_infinite() && lower.starts_with("0x") {
        return Err(K::NumberTooBig);
    }
    Ok(if negative { -v } else { v })
}

/// A C99 hex float after its `0x`: hex digits with an optional point and
/// an optional binary exponent.
fn hex_float(s: &str) -> Option<f64> {
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
            e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                -100_000
            } else {
                100_000
            })
        }
        None => 0,
    };
    // The first 60 significant bits are plenty for a 53-bit double.
    let mut m: u64 = 0;
    for (k, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = u64::from(c.to_digit(16)?);
        if k >= int.len() {
            exp2 -= 4;
        }
        if m >> 56 == 0 {
            m = (m << 4) | d;
        } else {
            exp2 += 4;
        }
    }
    // Scale in steps that can not overflow or underflow on the way.
    let mut v = m as f64;
    let mut rest = exp2.clamp(-100_000, 100_000) as i32;
    while rest != 0 && v != 0.0 && v.is_finite() {
        let step = rest.clamp(-1000, 1000);
        v *= 2f64.powi(step);
        rest -= step;
    }
    Some(v)
}
