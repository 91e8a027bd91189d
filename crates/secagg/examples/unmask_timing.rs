//! Rough throughput of the director's hot path. Run with
//! `cargo run --release -p secagg --example unmask_timing [words] [masks]`.

use secagg::masking::{add_assign, apply_masks_window};
use secagg::{expand_mask, unmask_aggregate, MaskOp, MaskTerm};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let words: usize = args.next().map_or(1 << 22, |a| a.parse().unwrap());
    let masks: usize = args.next().map_or(16, |a| a.parse().unwrap());
    let mb = (words * 4) as f64 / 1e6;

    let t = Instant::now();
    let m = expand_mask(&[1; 32], words);
    let dt = t.elapsed().as_secs_f64();
    println!(
        "expand_mask    {words} words: {:7.1} ms  {:7.0} MB/s (1 thread)",
        dt * 1e3,
        mb / dt
    );

    let mut acc = vec![0u32; words];
    let t = Instant::now();
    for _ in 0..10 {
        add_assign(&mut acc, &m);
    }
    let dt = t.elapsed().as_secs_f64() / 10.0;
    println!(
        "add_assign     {words} words: {:7.2} ms  {:7.0} MB/s",
        dt * 1e3,
        mb / dt
    );

    let terms: Vec<MaskTerm> = (0..masks)
        .map(|i| MaskTerm {
            seed: [i as u8; 32],
            op: if i % 2 == 0 { MaskOp::Add } else { MaskOp::Sub },
        })
        .collect();
    let t = Instant::now();
    apply_masks_window(&mut acc, 0, &terms);
    let dt = t.elapsed().as_secs_f64();
    println!(
        "masks serial   {masks} x {words}: {:7.1} ms  {:7.0} MB/s of mask",
        dt * 1e3,
        mb * masks as f64 / dt
    );

    // Repeated so the process CPU clock (10 ms ticks) can say how many cores the work kept busy.
    let reps = 50;
    let (t, cpu) = (Instant::now(), process_cpu_seconds());
    for _ in 0..reps {
        unmask_aggregate(&mut acc, &terms, 32);
    }
    let (dt, cpu_dt) = (
        t.elapsed().as_secs_f64() / reps as f64,
        (process_cpu_seconds() - cpu) / reps as f64,
    );
    println!(
        "unmask_aggregate {masks} x {words}: {:7.1} ms  {:7.0} MB/s of mask, {:.2} cores used, {:7.0} MB/s per CPU-second",
        dt * 1e3,
        mb * masks as f64 / dt,
        cpu_dt / dt,
        mb * masks as f64 / cpu_dt
    );
}

/// Process CPU seconds (user + system) from /proc/self/stat; Linux only, 10 ms resolution.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
