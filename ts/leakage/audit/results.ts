/**
 * The privacy–utility audit's results: one row per configuration of the sweep, with the utility of the
 * federated model and the leakage the attacks measured on what the director received. Written as
 * audit.json / audit.csv by the sweep (sweep.ts) and read by the report (report.ts).
 */

/** One attack's scores on one round's probe update(s), per image and summarized. */
export interface AttackScore {
  attack: string;
  /** 1-based, as people count rounds. */
  round: number;
  /** Whose update was attacked: one envoy, or every envoy in a secure aggregate. */
  envoys: string[];
  psnr: number[];
  ssim: number[];
  floor_psnr: number[];
  floor_ssim: number[];
  /** Files of the reconstruction grid and summary, relative to the sweep's output folder. */
  grid?: string;
  /**
   * What chance alone scores on a batch this size under the same pairing (ts/leakage/score.ts chanceGap): 0 for
   * one image. The attack's worst-case gap counts only above it. Absent in results from before it was kept.
   */
  chance_gap_db?: number;
}

/** An attack's worst image: its PSNR gap above the floor, less what chance scores on a batch that size. */
export function gapOverChance(a: AttackScore): number {
  return Math.max(...a.psnr.map((p, i) => p - a.floor_psnr[i])) - (a.chance_gap_db ?? 0);
}

export interface ConfigurationResult {
  name: string;
  description: string;
  /** The defenses as the experiment's YAML set them (model.precode, training.dp, training.pruning, secagg). */
  defenses: Record<string, unknown>;
  envoys: number;
  rounds: number;
  utility: { roc_auc: number; accuracy: number; sensitivity: number; specificity: number };
  /** The largest per-envoy epsilon reported under DP-SGD (at the experiment's delta), if DP was on. */
  dp_epsilon?: number;
  attacks: AttackScore[];
  /** Over every attack (analytic and adaptive ones included), round and image. */
  leakage: {
    psnr_mean: number;
    /** The best-reconstructed image: the worst case for the envoys. */
    psnr_worst_case: number;
    ssim_mean: number;
    ssim_worst_case: number;
    /** Largest per-image PSNR minus that image's floor (the mean image), before the chance correction. */
    psnr_gap_max_db: number;
    psnr_gap_mean_db: number;
  };
  /**
   * What the configuration is judged by: over every attack, round and image, the largest PSNR gap above the
   * image's floor, less what chance scores on a batch of that size (0 for single images), and the attack that reached it.
   */
  worst_gap_db: number;
  worst_attack: string;
  /** Each attack's own worst gap (over chance, as worst_gap_db) and best PSNR. */
  by_attack: Record<string, { psnr_gap_max_db: number; psnr_worst_case: number }>;
  /** The attack with the largest gap in each round. */
  round_winners: { round: number; attack: string; gap_db: number }[];
  /** Whether an envoy on the default privacy policy would train this configuration's tasks, or which rule refuses. */
  default_policy?: { round: string; probe: string };
  run_dir: string;
  seconds: number;
}

export interface AuditResults {
  sweep: string;
  created_at: string;
  data: string;
  configurations: ConfigurationResult[];
}
