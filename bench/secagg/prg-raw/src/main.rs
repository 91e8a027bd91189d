//! Prints JSON: bytes per second of thread CPU time (CLOCK_THREAD_CPUTIME_ID, so time the core spent on other jobs of
//! a shared machine does not count), best of 5, on one thread, for
//!  - keystream: MaskStream::fill into a 4 KiB L1-resident block (what masking.rs folds per step), i.e. the PRG alone;
//!  - unmask_1core: masking::apply_masks_window over a 4 MiB window (keystream + u32 add), one thread;
//!  - expand_mask: prg::expand_mask of 1 Mi words (allocates, like the addon's expandMask).
use secagg::masking::{apply_masks_window, MaskOp, MaskTerm};
use secagg::prg::{expand_mask, MaskStream};
use std::time::Instant;

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// (best bytes per CPU-second, best bytes per wall-second) over 5 runs.
fn best<F: FnMut() -> usize>(mut f: F) -> (f64, f64) {
    let (mut cpu, mut wall) = (0f64, 0f64);
    for _ in 0..5 {
        let (c0, t) = (thread_cpu_s(), Instant::now());
        let bytes = f() as f64;
        wall = wall.max(bytes / t.elapsed().as_secs_f64());
        cpu = cpu.max(bytes / (thread_cpu_s() - c0));
    }
    (cpu, wall)
}

fn main() {
    let seed = [7u8; 32];
    let keystream = best(|| {
        let mut s = MaskStream::new(&seed, 0);
        let mut block = [0u32; 1024];
        let mut acc = 0u32;
        for _ in 0..(1 << 15) {
            s.fill(&mut block);
            acc ^= block[0];
        }
        std::hint::black_box(acc);
        (1 << 15) * 4096
    });
    let terms: Vec<MaskTerm> = (0..8u8).map(|i| MaskTerm { seed: [i; 32], op: if i % 2 == 0 { MaskOp::Add } else { MaskOp::Sub } }).collect();
    let mut window = vec![0u32; 1 << 20];
    let unmask = best(|| {
        apply_masks_window(&mut window, 0, &terms);
        std::hint::black_box(&window);
        terms.len() * window.len() * 4
    });
    let expand = best(|| {
        let v = expand_mask(&seed, 1 << 20);
        std::hint::black_box(&v);
        v.len() * 4
    });
    println!(
        "{{\"rust_keystream_4KiB_bytes_per_s\":{:.0},\"rust_apply_masks_window_1core_bytes_per_s\":{:.0},\"rust_expand_mask_4MiB_bytes_per_s\":{:.0},\"rust_keystream_4KiB_bytes_per_wall_s\":{:.0},\"rust_apply_masks_window_1core_bytes_per_wall_s\":{:.0}}}",
        keystream.0, unmask.0, expand.0, keystream.1, unmask.1
    );
}
