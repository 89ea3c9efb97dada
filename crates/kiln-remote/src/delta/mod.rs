//! OSTree static deltas: generate, apply, list, show, delete — byte for
//! byte compatible with libostree 2022.7.
//!
//! # Format
//!
//! A delta from `FROM` to `TO` lives in `deltas/XX/FROMREST-TOB64/` of a
//! repo (`deltas/XX/TOREST/` for a from-scratch delta); see [`name`]. It
//! holds a `superblock` ([`Superblock`]: metadata, timestamp, the two
//! checksums, the to-commit object itself, and one [`PartHeader`] per part
//! plus the [`FallbackEntry`]s) and the parts `0`, `1`, …. A part is one
//! compression byte (`0` or `x` for xz) and the payload
//! `(a(uuu)aa(ayay)ayay)`: mode table, xattr table, data blob and opcodes
//! (see [`ops`]). With `--inline` the parts live in the superblock
//! metadata under the key `deltas/…/N`, and the file is self-contained.
//!
//! # Applying a delta during a pull
//!
//! A pull that finds a delta (in the summary's `ostree.static-deltas` or
//! in `delta-indexes/`) does:
//!
//! 1. fetch `deltas/…/superblock` ([`name::delta_path`]`(from, to,
//!    "superblock")`), check it against the digest the summary gives, and
//!    [`parse_superblock`] it (this also checks that the embedded commit
//!    hashes to `to`); check its signature if the remote wants one;
//! 2. for each part `i` with `!`[`part_is_present`]: take
//!    [`Superblock::inline_part`]`(i)` or fetch `deltas/…/i`, and call
//!    [`apply_part`]`(repo, &sb.parts[i], &bytes, PartCheck::Verify,
//!    &i.to_string())`. Parts are independent: they may be applied in any
//!    order or in parallel. A part whose bytes do not hash to its header
//!    checksum is refused before anything is written; every object a part
//!    creates is verified before it is installed;
//! 3. fetch each [`FallbackEntry`] as a plain object (it is not in any
//!    part);
//! 4. [`write_commit`] (the to-commit and its detached metadata, last, so
//!    the commit never names a missing tree), then one `syncfs`, then the
//!    ref.
//!
//! [`apply_offline`] does exactly this from local files.
//!
//! # Generating
//!
//! [`generate`] writes into the repo's `deltas/` (or `filename`), with
//! ostree's options and defaults ([`GenerateOptions`]).

pub mod apply;
pub mod bsdiff;
mod compress;
pub mod error;
mod framing;
pub mod generate;
pub mod manage;
pub mod name;
pub mod ops;
pub mod part;
pub mod superblock;
pub mod varint;

pub use apply::{
    apply_offline, apply_offline_with, apply_part, part_is_present, write_commit, ApplyInfo,
    ApplyOptions, PartCheck, PartStats,
};
pub use error::{DeltaError, Result};
pub use generate::{generate, Compression, DeltaInfo, GenerateOptions, PartInfo};
pub use manage::{delete, list, show, PartShow, ShowInfo};
pub use superblock::{parse_superblock, Endianness, FallbackEntry, PartHeader, Superblock};

#[cfg(test)]
mod tests;
