//! xz compression of delta parts (ostree uses liblzma's xz container,
//! preset 8, CRC64).

use super::error::{DeltaError, Result};
use std::io::{Read, Write};

/// Compress `data` as one xz stream. With `threads > 1` the stream is
/// cut into `block_size` blocks compressed in parallel (still one stream:
/// ostree's `lzma_stream_decoder` reads it).
pub fn xz_compress(data: &[u8], preset: u32, threads: u32, block_size: u64) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| DeltaError::Invalid(format!("xz compression failed: {e}"));
    let stream = if threads > 1 {
        liblzma::stream::MtStreamBuilder::new()
            .threads(threads)
            .block_size(block_size)
            .preset(preset)
            .check(liblzma::stream::Check::Crc64)
            .encoder()
    } else {
        liblzma::stream::Stream::new_easy_encoder(preset, liblzma::stream::Check::Crc64)
    }
    .map_err(|e| DeltaError::Invalid(format!("xz encoder: {e}")))?;
    let mut enc =
        liblzma::write::XzEncoder::new_stream(Vec::with_capacity(data.len() / 3 + 64), stream);
    enc.write_all(data).map_err(err)?;
    enc.finish().map_err(err)
}

/// Decompress an xz stream, refusing more than `limit` bytes of output.
pub fn xz_decompress(data: &[u8], limit: u64) -> Result<Vec<u8>> {
    let stream = liblzma::stream::Stream::new_stream_decoder(u64::MAX, 0)
        .map_err(|e| DeltaError::Invalid(format!("xz decoder: {e}")))?;
    let dec = liblzma::read::XzDecoder::new_stream(data, stream);
    let mut out = Vec::with_capacity((data.len() as u64 * 4).min(limit).min(1 << 28) as usize);
    let n = dec
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DeltaError::malformed("part", format!("xz decompression failed: {e}")))?;
    if n as u64 > limit {
        return Err(DeltaError::malformed(
            "part",
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(out)
}
