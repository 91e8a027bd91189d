//! Vectorized arithmetic mod 2^b on u32 words, and mask application.
//!
//! All arithmetic is done mod 2^32 with wrapping ops (which LLVM turns into
//! packed SIMD adds); reducing mod 2^b with a bit mask at the end is correct
//! because 2^b divides 2^32, so reduction commutes with + and -.
//!
//! Masks are never materialized as full vectors: `apply_masks` walks the
//! accumulator in cache-sized chunks (one contiguous range per core) and, for each
//! chunk, seeks every mask's PRG to that chunk and adds its keystream into it
//! as it is generated (1 KiB at a time, in L1; see `prg.rs`). Memory traffic stays ~ one pass over the
//! accumulator regardless of the number of masks.

use crate::prg::{MaskStream, Seed};

/// Whether a mask is added to or subtracted from the accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskOp {
    Add,
    Sub,
}

impl MaskOp {
    pub fn inverse(self) -> Self {
        match self {
            MaskOp::Add => MaskOp::Sub,
            MaskOp::Sub => MaskOp::Add,
        }
    }
}

/// One PRG mask to fold into a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskTerm {
    pub seed: Seed,
    pub op: MaskOp,
}

/// Words per parallel work item (128 KiB: fits L2, amortizes PRG set-up).
const CHUNK_WORDS: usize = 32 * 1024;

/// `acc[i] += x[i]` mod 2^32.
#[inline]
pub fn add_assign(acc: &mut [u32], x: &[u32]) {
    assert_eq!(acc.len(), x.len(), "length mismatch");
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = a.wrapping_add(b);
    }
}

/// `acc[i] -= x[i]` mod 2^32.
#[inline]
pub fn sub_assign(acc: &mut [u32], x: &[u32]) {
    assert_eq!(acc.len(), x.len(), "length mismatch");
    for (a, &b) in acc.iter_mut().zip(x) {
        *a = a.wrapping_sub(b);
    }
}

/// Bit mask selecting the low `bits` bits (`bits` in 1..=32).
pub fn modulus_mask(bits: u32) -> u32 {
    debug_assert!((1..=32).contains(&bits));
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// Reduce every word mod 2^bits.
pub fn reduce(acc: &mut [u32], bits: u32) {
    let m = modulus_mask(bits);
    if m != u32::MAX {
        acc.iter_mut().for_each(|a| *a &= m);
    }
}

/// Fold the masks of `terms` into `acc[..]`, which is the window of the full
/// vector starting at word `offset`. Single-threaded.
pub fn apply_masks_window(acc: &mut [u32], offset: usize, terms: &[MaskTerm]) {
    for term in terms {
        // Keystream is generated into an L1-resident stack buffer and added
        // or subtracted as it is produced: one pass over `acc` per term.
        let mut stream = MaskStream::new(&term.seed, offset as u64);
        match term.op {
            MaskOp::Add => stream.add_to(acc),
            MaskOp::Sub => stream.sub_from(acc),
        }
    }
}

/// Fold all `terms` into the whole vector `acc` (mod 2^32), one contiguous
/// range per core.
///
/// A static split rather than rayon's work stealing: the work is perfectly
/// even (every word costs the same keystream), and idle rayon workers spin
/// before they sleep, which on a busy 2-core host cost up to a third of the
/// CPU time spent here. Scoped threads that only ever run their own range
/// spend every CPU-second on keystream.
pub fn apply_masks(acc: &mut [u32], terms: &[MaskTerm]) {
    if terms.is_empty() || acc.is_empty() {
        return;
    }
    let chunks = acc.len().div_ceil(CHUNK_WORDS);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, chunks);
    let per_worker = chunks.div_ceil(workers) * CHUNK_WORDS;
    std::thread::scope(|scope| {
        let mut ranges = acc.chunks_mut(per_worker).enumerate();
        // This thread takes the first range itself: one spawn fewer.
        let first = ranges.next();
        for (i, range) in ranges {
            scope.spawn(move || apply_masks_range(range, i * per_worker, terms));
        }
        if let Some((_, range)) = first {
            apply_masks_range(range, 0, terms);
        }
    });
}

/// `apply_masks_window` over a range, one cache-sized chunk at a time.
fn apply_masks_range(range: &mut [u32], offset: usize, terms: &[MaskTerm]) {
    for (i, chunk) in range.chunks_mut(CHUNK_WORDS).enumerate() {
        apply_masks_window(chunk, offset + i * CHUNK_WORDS, terms);
    }
}

/// Director-side unmasking: remove the given masks from the sum of masked
/// inputs and reduce mod 2^bits. `terms` must hold, for each surviving
/// client, `Sub` of its self mask and, for each (survivor, dropped
/// neighbour) pair, the inverse of the pairwise mask the survivor applied.
pub fn unmask_aggregate(masked_sum: &mut [u32], terms: &[MaskTerm], bits: u32) {
    apply_masks(masked_sum, terms);
    reduce(masked_sum, bits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::expand_mask;

    #[test]
    fn add_sub_wrap_mod_2_32() {
        let mut a = vec![u32::MAX, 0, 5];
        add_assign(&mut a, &[1, 1, 7]);
        assert_eq!(a, vec![0, 1, 12]);
        sub_assign(&mut a, &[1, 2, 12]);
        assert_eq!(a, vec![u32::MAX, u32::MAX, 0]);
        reduce(&mut a, 8);
        assert_eq!(a, vec![255, 255, 0]);
    }

    #[test]
    fn parallel_chunked_masking_matches_naive() {
        // Longer than several chunks and not a multiple of any block size.
        let len = 3 * CHUNK_WORDS + 1234;
        let terms = vec![
            MaskTerm {
                seed: [1; 32],
                op: MaskOp::Add,
            },
            MaskTerm {
                seed: [2; 32],
                op: MaskOp::Sub,
            },
            MaskTerm {
                seed: [3; 32],
                op: MaskOp::Add,
            },
        ];
        let base: Vec<u32> = (0..len as u32)
            .map(|i| i.wrapping_mul(2654435761))
            .collect();
        let mut naive = base.clone();
        for t in &terms {
            let m = expand_mask(&t.seed, len);
            match t.op {
                MaskOp::Add => add_assign(&mut naive, &m),
                MaskOp::Sub => sub_assign(&mut naive, &m),
            }
        }
        let mut fast = base.clone();
        apply_masks(&mut fast, &terms);
        assert_eq!(fast, naive);
        // Inverse terms cancel exactly.
        let inverse: Vec<MaskTerm> = terms
            .iter()
            .map(|t| MaskTerm {
                seed: t.seed,
                op: t.op.inverse(),
            })
            .collect();
        unmask_aggregate(&mut fast, &inverse, 32);
        assert_eq!(fast, base);
    }
}
