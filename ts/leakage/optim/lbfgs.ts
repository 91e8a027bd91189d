/**
 * A small L-BFGS (Nocedal & Wright, algorithm 7.4/7.5) on flat vectors, for DLG. tfjs has no L-BFGS. The
 * objective is evaluated in float32 by tfjs; the optimizer's own arithmetic is float64 so the two-loop
 * recursion does not lose the curvature pairs to rounding near convergence.
 */

export type Objective = (x: Float64Array) => { value: number; grad: Float64Array };

export interface LbfgsOptions {
  maxIterations: number;
  /** Curvature pairs kept (PyTorch's default is 100; DLG uses PyTorch's L-BFGS). */
  history?: number;
  /** Stop when the gradient's max-norm falls below this. */
  gradientTolerance?: number;
  /**
   * 'armijo' backtracks until the value drops enough. 'none' takes the step as it comes (learning rate 1),
   * as PyTorch's L-BFGS does by default and DLG used: on a gradient-matching loss of a ReLU/max-pool net,
   * which jumps where an activation pattern switches, a line search gets stuck on the low side of a jump.
   */
  lineSearch?: 'armijo' | 'none';
  /** Called after every iteration with the iteration number and the objective value. */
  onIteration?: (iteration: number, value: number) => void;
}

export interface LbfgsResult { x: Float64Array; value: number; iterations: number; evaluations: number }

const dot = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
const maxAbs = (a: Float64Array) => { let m = 0; for (const v of a) m = Math.max(m, Math.abs(v)); return m; };

export function lbfgs(f: Objective, x0: Float64Array, options: LbfgsOptions): LbfgsResult {
  const m = options.history ?? 100;
  const tol = options.gradientTolerance ?? 1e-9;
  let x: Float64Array = Float64Array.from(x0);
  let { value, grad }: { value: number; grad: Float64Array } = f(x);
  let evaluations = 1;
  const pairs: Array<{ s: Float64Array; y: Float64Array; rho: number }> = [];
  let iteration = 0;
  for (; iteration < options.maxIterations; iteration++) {
    if (maxAbs(grad) <= tol || !Number.isFinite(value)) break;
    const direction = twoLoop(grad, pairs);
    let slope = dot(grad, direction);
    if (slope >= 0) {
      // Not a descent direction (curvature information went stale): restart from steepest descent.
      pairs.length = 0;
      direction.set(grad.map((g) => -g));
      slope = dot(grad, direction);
    }
    // First step: scale so it moves at most ~1 per coordinate, as PyTorch's L-BFGS does.
    const initial = pairs.length === 0 ? Math.min(1, 1 / Math.max(1e-12, grad.reduce((s, g) => s + Math.abs(g), 0))) : 1;
    let step = options.lineSearch === 'none' ? fixedStep(f, x, direction, initial) : backtrack(f, x, value, slope, direction, initial);
    evaluations += step.evaluations;
    if (!step.accepted && pairs.length) {
      // On a piecewise-smooth loss (ReLU, max-pool) stale curvature pairs can point across a kink:
      // forget them and retry from steepest descent before giving up.
      pairs.length = 0;
      const steepest = grad.map((g) => -g);
      step = backtrack(f, x, value, dot(grad, steepest), steepest, Math.min(1, 1 / Math.max(1e-12, Math.sqrt(dot(grad, grad)))));
      evaluations += step.evaluations;
    }
    if (!step.accepted) break;
    const s = step.x.map((v, i) => v - x[i]);
    const y = step.grad.map((v, i) => v - grad[i]);
    const sy = dot(s, y);
    // Keep only pairs with positive curvature, so the implicit Hessian stays positive definite.
    if (sy > 1e-20) {
      pairs.push({ s, y, rho: 1 / sy });
      if (pairs.length > m) pairs.shift();
    }
    ({ x, value, grad } = step);
    options.onIteration?.(iteration + 1, value);
  }
  return { x, value, iterations: iteration, evaluations };
}

function twoLoop(grad: Float64Array, pairs: Array<{ s: Float64Array; y: Float64Array; rho: number }>): Float64Array {
  const q = grad.map((g) => -g);
  const alphas: number[] = [];
  for (let k = pairs.length - 1; k >= 0; k--) {
    const { s, y, rho } = pairs[k];
    const a = rho * dot(s, q);
    alphas[k] = a;
    for (let i = 0; i < q.length; i++) q[i] -= a * y[i];
  }
  if (pairs.length) {
    const { s, y } = pairs[pairs.length - 1];
    const gamma = dot(s, y) / dot(y, y);
    for (let i = 0; i < q.length; i++) q[i] *= gamma;
  }
  for (let k = 0; k < pairs.length; k++) {
    const { s, y, rho } = pairs[k];
    const b = rho * dot(y, q);
    for (let i = 0; i < q.length; i++) q[i] += s[i] * (alphas[k] - b);
  }
  return q;
}

function fixedStep(f: Objective, x: Float64Array, direction: Float64Array, t: number) {
  const candidate = x.map((v, i) => v + t * direction[i]);
  const next = f(candidate);
  return { accepted: Number.isFinite(next.value), x: candidate, value: next.value, grad: next.grad, evaluations: 1 };
}

/** Armijo backtracking: halve the step until the value drops enough; give up after 30 halvings. */
function backtrack(f: Objective, x: Float64Array, value: number, slope: number, direction: Float64Array, initial: number) {
  let t = initial;
  for (let evaluations = 1; evaluations <= 30; evaluations++, t /= 2) {
    const candidate = x.map((v, i) => v + t * direction[i]);
    const next = f(candidate);
    if (Number.isFinite(next.value) && next.value <= value + 1e-4 * t * slope) {
      return { accepted: true, x: candidate, value: next.value, grad: next.grad, evaluations };
    }
  }
  return { accepted: false, x, value, grad: new Float64Array(0), evaluations: 30 };
}
