//! Pseudo-random generator that expands a 32-byte seed into mask words.
//!
//! The PRG is AES-256 in counter mode (NIST SP 800-38A; 128-bit big-endian
//! counter starting from the all-zero block), keyed by the seed, via the
//! audited RustCrypto `aes` + `ctr` crates. `aes` uses AES-NI when the CPU
//! has it (detected at run time) and a constant-time bitsliced fallback
//! otherwise. AES-CTR was chosen over ChaCha20 because PRG expansion
//! dominates the director's unmasking cost, and on this machine class
//! AES-256-CTR runs at ~5.5 GB/s per core versus ~1.6 GB/s for the
//! `chacha20` crate's AVX2 backend (measured with 4 KiB blocks).
//! A zero IV is safe because every seed is derived fresh per round, owner
//! pair and purpose (see `keys.rs`) and is only ever used as this PRG key.
//!
//! Word `i` of the mask is keystream bytes `4i..4i+4` read little-endian, so
//! any window of the mask can be produced independently by seeking; the
//! parallel unmasking in `masking.rs` relies on that.

use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// A 32-byte PRG seed.
pub type Seed = [u8; 32];

/// Streaming mask generator positioned at a given word offset.
pub struct MaskStream {
    cipher: Aes256Ctr,
}

impl MaskStream {
    /// A generator for the mask of `seed`, starting at word `word_offset`.
    pub fn new(seed: &Seed, word_offset: u64) -> Self {
        let mut cipher = Aes256Ctr::new(seed.into(), &[0u8; 16].into());
        cipher.seek(word_offset * 4);
        Self { cipher }
    }

    /// Overwrite `out` with the next `out.len()` mask words.
    pub fn fill(&mut self, out: &mut [u32]) {
        out.fill(0);
        // XOR-ing the keystream into zeros yields the keystream itself.
        self.cipher.apply_keystream(bytemuck::cast_slice_mut(out));
        if cfg!(target_endian = "big") {
            out.iter_mut().for_each(|w| *w = u32::from_le(*w));
        }
    }
}

/// The first `len` words of the mask expanded from `seed`.
pub fn expand_mask(seed: &Seed, len: usize) -> Vec<u32> {
    let mut out = vec![0u32; len];
    MaskStream::new(seed, 0).fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(hex_str: &str) -> Vec<u32> {
        hex::decode(hex_str)
            .unwrap()
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt), block #1, through the
    /// exact cipher type we use (the vector's IV is not ours, so this checks
    /// the primitive and counter convention; the next test checks our IV).
    #[test]
    fn known_answer_sp800_38a_ctr_aes256() {
        let key = hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .unwrap();
        let iv = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").unwrap();
        let mut block =
            hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
                .unwrap();
        let mut c = Aes256Ctr::new(key.as_slice().into(), iv.as_slice().into());
        c.apply_keystream(&mut block);
        // Second block exercises the big-endian counter increment.
        assert_eq!(
            hex::encode(block),
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        );
    }

    /// All-zero seed: the first block is AES-256_0(0^128) = dc95c078...,
    /// the standard known value; all four blocks were cross-checked with
    /// Python `cryptography` (AES-256-CTR, zero key and IV).
    #[test]
    fn known_answer_zero_seed() {
        let expected = words(
            "dc95c078a2408989ad48a21492842087530f8afbc74536b9a963b4f1c4cb738b\
             cea7403d4d606b6e074ec5d3baf39d18726003ca37a62a74d1a2f58e7506358e",
        );
        assert_eq!(expand_mask(&[0u8; 32], 16), expected);
        assert_eq!(
            expand_mask(&[0u8; 32], 4),
            vec![0x78c095dc, 0x898940a2, 0x14a248ad, 0x87208492]
        );
    }

    /// Seed 00 01 .. 1f, cross-checked with Python `cryptography`.
    #[test]
    fn known_answer_counting_seed() {
        let seed: Seed = core::array::from_fn(|i| i as u8);
        assert_eq!(
            expand_mask(&seed, 4),
            vec![3053490418, 3500099882, 1788539817, 2155294429]
        );
    }

    #[test]
    fn seeking_matches_sequential_expansion() {
        let seed = [7u8; 32];
        let full = expand_mask(&seed, 5000);
        for offset in [0usize, 1, 15, 16, 17, 1023, 4095] {
            let mut window = vec![0u32; 600];
            MaskStream::new(&seed, offset as u64).fill(&mut window);
            assert_eq!(window, &full[offset..offset + 600], "offset {offset}");
        }
        // Filling in odd-sized pieces continues the same stream.
        let mut s = MaskStream::new(&seed, 0);
        let mut a = vec![0u32; 3];
        let mut b = vec![0u32; 29];
        s.fill(&mut a);
        s.fill(&mut b);
        assert_eq!([a, b].concat(), &full[..32]);
    }
}
