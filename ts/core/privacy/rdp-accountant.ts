/**
 * Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism (the mechanism DP-SGD runs once per
 * step), reporting (ε, δ) the way Opacus 1.6 does, so the numbers an envoy reports can be compared with
 * any Opacus or TF-Privacy run:
 *
 *  - RDP of one step at order α: Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the Sampled
 *    Gaussian Mechanism" (arXiv:1908.10530), Section 3.3: log A_α as a finite binomial sum for integer α
 *    and as two convergent series of erfc terms for fractional α, all in log space. This is a line-by-line
 *    port of `opacus/accountants/analysis/rdp.py` (itself from TF Privacy); keep it that way, the test
 *    compares against values Opacus computed (test/fixtures/dp-accountant.json).
 *  - Composition: RDP adds up over steps and over rounds, at each order separately.
 *  - (ε, δ): Balle et al. 2020, "Hypothesis testing interpretations and Rényi differential privacy",
 *    Theorem 21, minimised over the orders: the conversion Opacus's `get_privacy_spent` uses.
 *
 * Pure arithmetic, no TensorFlow: the accountant runs in the envoy after every round.
 */

/** Opacus's `RDPAccountant.DEFAULT_ALPHAS`: 1.1, 1.2, …, 10.9, then 12, 13, …, 63. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10.0),
  ...Array.from({ length: 52 }, (_, k) => 12 + k),
]);

/** One run of identical DP-SGD steps: `steps` steps with noise multiplier σ and sampling rate q. */
export interface MechanismRun {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
}

export interface PrivacySpent {
  /** ε of the (ε, δ)-DP guarantee; Infinity without noise (σ = 0). */
  epsilon: number;
  /** The Rényi order α whose bound gave ε (0 when nothing has been spent, as in Opacus). */
  order: number;
}

/**
 * Accumulates the DP-SGD steps one envoy has taken, across rounds, and converts them to (ε, δ).
 * q is the probability that a given example is in a step's batch: batch_size / n for this envoy.
 */
export class RdpAccountant {
  private readonly runs: MechanismRun[] = [];
  /** Σ over the runs of their RDP at each order, kept up to date by step() so epsilon() stays cheap. */
  private readonly total: number[];

  constructor(history: readonly MechanismRun[] = [], readonly orders: readonly number[] = DEFAULT_ORDERS) {
    this.total = orders.map(() => 0);
    for (const run of history) this.step(run.noiseMultiplier, run.sampleRate, run.steps);
  }

  /** Records `steps` steps of the sampled Gaussian mechanism (merged with the last run if σ and q match). */
  step(noiseMultiplier: number, sampleRate: number, steps = 1): void {
    checkStep(noiseMultiplier, sampleRate, steps);
    if (steps === 0) return;
    const last = this.runs.at(-1);
    if (last && last.noiseMultiplier === noiseMultiplier && last.sampleRate === sampleRate) last.steps += steps;
    else this.runs.push({ noiseMultiplier, sampleRate, steps });
    computeRdp(sampleRate, noiseMultiplier, steps, this.orders).forEach((v, i) => { this.total[i] += v; });
  }

  /** The runs so far, to persist the accountant across envoy restarts (`new RdpAccountant(history)`). */
  get history(): readonly MechanismRun[] {
    return this.runs.map((r) => ({ ...r }));
  }

  /** Total RDP at each of `orders`. */
  rdp(): number[] {
    return [...this.total];
  }

  /** The smallest ε such that everything recorded so far is (ε, δ)-DP. */
  epsilon(delta: number): PrivacySpent {
    if (this.runs.length === 0) return { epsilon: 0, order: 0 };
    return epsilonFromRdp(this.orders, this.rdp(), delta);
  }
}

function checkStep(noiseMultiplier: number, sampleRate: number, steps: number): void {
  if (!(noiseMultiplier >= 0)) throw new Error(`noise multiplier must be ≥ 0, got ${noiseMultiplier}`);
  if (!(sampleRate >= 0 && sampleRate <= 1)) throw new Error(`sample rate must be in [0, 1], got ${sampleRate}`);
  if (!Number.isInteger(steps) || steps < 0) throw new Error(`steps must be a non-negative integer, got ${steps}`);
}

/** RDP of `steps` compositions of the sampled Gaussian mechanism at each order (Opacus `compute_rdp`). */
export function computeRdp(sampleRate: number, noiseMultiplier: number, steps: number, orders: readonly number[]): number[] {
  return orders.map((alpha) => rdpOfOneStep(sampleRate, noiseMultiplier, alpha) * steps);
}

/** RDP at order α of one step (Opacus `_compute_rdp`). */
export function rdpOfOneStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity; // no noise, no privacy
  if (q === 1) return alpha / (2 * sigma ** 2); // the plain Gaussian mechanism
  if (!Number.isFinite(alpha)) return Infinity;
  return logA(q, sigma, alpha) / (alpha - 1);
}

/**
 * Balle et al. 2020, Theorem 21: an (α, r)-RDP mechanism is (ε, δ)-DP with
 *   ε = r − (log δ + log α)/(α − 1) + log((α − 1)/α),
 * minimised over the orders (NaNs ignored, as numpy's nanargmin does).
 */
export function epsilonFromRdp(orders: readonly number[], rdp: readonly number[], delta: number): PrivacySpent {
  if (orders.length !== rdp.length) throw new Error(`${orders.length} orders but ${rdp.length} RDP values`);
  if (!(delta > 0 && delta < 1)) throw new Error(`delta must be in (0, 1), got ${delta}`);
  let best: PrivacySpent = { epsilon: Infinity, order: NaN };
  orders.forEach((alpha, i) => {
    const eps = rdp[i] - (Math.log(delta) + Math.log(alpha)) / (alpha - 1) + Math.log((alpha - 1) / alpha);
    if (eps < best.epsilon || (Number.isNaN(best.order) && !Number.isNaN(eps))) best = { epsilon: eps, order: alpha };
  });
  return best;
}

// ---- log A_α (Mironov, Talwar, Zhang 2019, Section 3.3) ----

function logA(q: number, sigma: number, alpha: number): number {
  return Number.isInteger(alpha) ? logAIntegerOrder(q, sigma, alpha) : logAFractionalOrder(q, sigma, alpha);
}

/** A_α = Σ_{i=0..α} C(α, i) q^i (1−q)^(α−i) exp((i² − i)/(2σ²)), summed in log space. */
function logAIntegerOrder(q: number, sigma: number, alpha: number): number {
  let logSum = -Infinity;
  let binom = 1; // C(alpha, i), exact in doubles for the orders used (α ≤ 63 gives ≤ 1e18, 1 ulp at worst)
  for (let i = 0; i <= alpha; i++) {
    const logCoef = Math.log(binom) + i * Math.log(q) + (alpha - i) * Math.log1p(-q);
    logSum = logAdd(logSum, logCoef + (i * i - i) / (2 * sigma ** 2));
    binom = (binom * (alpha - i)) / (i + 1);
  }
  return logSum;
}

/**
 * For fractional α the sum becomes two infinite series (integrals split at z0 = σ² log(1/q − 1) + 1/2),
 * with generalised binomial coefficients whose sign alternates once i > α; summed until both terms fall
 * below e^−30, as Opacus does.
 */
function logAFractionalOrder(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma ** 2 * Math.log(1 / q - 1) + 0.5;
  let binom = 1; // generalised C(alpha, i) = Π_{k<i} (alpha − k)/(k + 1)
  for (let i = 0; ; i++) {
    const logCoef = Math.log(Math.abs(binom));
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log1p(-q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log1p(-q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma ** 2) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma ** 2) + logE1;
    if (binom > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    binom = (binom * (alpha - i)) / (i + 1);
  }
  return logAdd(logA0, logA1);
}

/** log(e^x + e^y) without overflow. */
function logAdd(x: number, y: number): number {
  const [a, b] = x < y ? [x, y] : [y, x];
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(e^x − e^y) for x ≥ y. */
function logSub(x: number, y: number): number {
  if (x < y) throw new Error('log-space subtraction would go negative (RDP series did not converge)');
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const diff = Math.expm1(x - y);
  // Python's math.expm1 overflows into an exception there, which Opacus answers with x: do the same.
  return Number.isFinite(diff) ? Math.log(diff) + y : x;
}

// ---- log erfc ----

/*
 * log(erfc(x)) accurate far into the tail, where erfc itself underflows (x > 26.5) but the fractional-order
 * series still needs its logarithm (terms like q^(α−i) with i > α are huge and erfc(z0 − j) is tiny).
 * W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969; netlib specfun CALERF, public
 * domain), relative error below 1e-16: erf on |x| ≤ 0.46875, and the scaled erfcx(x) = e^(x²) erfc(x)
 * beyond, so that log erfc(x) = log erfcx(x) − x² never underflows. (JavaScript has no erfc; the project
 * has no special-functions dependency, and this one function is all the accountant needs.)
 */
const ERF_A = [3.16112374387056560e0, 1.13864154151050156e2, 3.77485237685302021e2, 3.20937758913846947e3, 1.85777706184603153e-1];
const ERF_B = [2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3, 2.84423683343917062e3];
const ERFCX_C = [5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1, 2.98635138197400131e2,
  8.81952221241769090e2, 1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8];
const ERFCX_D = [1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2, 1.62138957456669019e3,
  3.29079923573345963e3, 4.36261909014324716e3, 3.43936767414372164e3, 1.23033935480374942e3];
const ERFCX_P = [3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
  6.58749161529837803e-4, 1.63153871373020978e-2];
const ERFCX_Q = [2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1, 6.05183413124413191e-2,
  2.33520497626869185e-3];
const SMALL = 0.46875;

/** log(erfc(x)) for any real x (the quantity Opacus's `_log_erfc` computes with scipy's log_ndtr). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) <= SMALL) return Math.log1p(-erfSmall(x));
  if (x > 0) return Math.log(erfcxLarge(x)) - x * x;
  // erfc(x) = 2 − erfc(−x) ∈ (1, 2) for x < −0.46875: no cancellation, no underflow.
  return Math.log(2 - erfcxLarge(-x) * Math.exp(-x * x));
}

/** erf(x) for |x| ≤ 0.46875 (Cody's first interval). */
function erfSmall(x: number): number {
  const z = x * x;
  let num = ERF_A[4] * z;
  let den = z;
  for (let i = 0; i < 3; i++) {
    num = (num + ERF_A[i]) * z;
    den = (den + ERF_B[i]) * z;
  }
  return (x * (num + ERF_A[3])) / (den + ERF_B[3]);
}

/** erfcx(y) = e^(y²) erfc(y) for y > 0.46875 (Cody's second and third intervals). */
function erfcxLarge(y: number): number {
  if (y <= 4) {
    let num = ERFCX_C[8] * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + ERFCX_C[i]) * y;
      den = (den + ERFCX_D[i]) * y;
    }
    return (num + ERFCX_C[7]) / (den + ERFCX_D[7]);
  }
  const invSqrtPi = 0.5641895835477562869;
  if (y >= 6.71e7) return invSqrtPi / y; // the asymptotic series' first term is exact to double precision
  const z = 1 / (y * y);
  let num = ERFCX_P[5] * z;
  let den = z;
  for (let i = 0; i < 4; i++) {
    num = (num + ERFCX_P[i]) * z;
    den = (den + ERFCX_Q[i]) * z;
  }
  return (invSqrtPi - (z * (num + ERFCX_P[4])) / (den + ERFCX_Q[4])) / y;
}
