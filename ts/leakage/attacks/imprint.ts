/**
 * Robbing the Fed's imprint attack (Fowl et al., ICLR 2022): the director adds a dense layer with ReLU in
 * front of the model, every row measuring the same thing of the image (here its mean brightness, m·x) against
 * its own threshold tₖ, the thresholds at quantiles of public data. Row k is active for the images brighter
 * than tₖ, so its gradients are sums over those images:
 *     ∂L/∂Wₖ = Σ_{i: m·xᵢ > tₖ} δᵢ xᵢ,     ∂L/∂bₖ = Σ_{i: m·xᵢ > tₖ} δᵢ
 * (the layer after it weighs every row alike, so an image's δ is the same in every row it reaches). Two
 * neighbouring rows differ by exactly the images whose brightness lies between their thresholds: where that is
 * one image, (∂L/∂Wₖ − ∂L/∂Wₖ₊₁) / (∂L/∂bₖ − ∂L/∂bₖ₊₁) is that image, exactly, whatever the batch size.
 *
 * The registry has no such layer and an envoy's policy allows only registered architectures: the lab models it
 * to score what a director that adds one would obtain from an envoy that did not check (bench/malicious-director).
 */

export interface ImprintLayer {
  /** Thresholds on mean brightness, ascending: one row each. */
  thresholds: Float64Array;
}

/** `bins` rows with thresholds at evenly spaced quantiles of the public images' brightness. */
export function imprintLayerFor(publicImages: Float32Array, pixels: number, bins: number): ImprintLayer {
  const brightness = meanBrightness(publicImages, pixels).sort();
  const thresholds = new Float64Array(bins);
  for (let k = 0; k < bins; k++) thresholds[k] = brightness[Math.min(brightness.length - 1, Math.floor((k / bins) * brightness.length))];
  return { thresholds };
}

export interface ImprintGradients { weight: Float64Array[]; bias: Float64Array }

/**
 * What the victim's update carries for the imprint layer: its rows' weight and bias gradients on `images`,
 * each image weighed by its loss gradient `delta` (one number per image: the layer after weighs rows alike).
 */
export function imprintGradients(layer: ImprintLayer, images: Float32Array, pixels: number, delta: ArrayLike<number>): ImprintGradients {
  const brightness = meanBrightness(images, pixels);
  const bins = layer.thresholds.length;
  const weight = Array.from({ length: bins }, () => new Float64Array(pixels));
  const bias = new Float64Array(bins);
  brightness.forEach((b, i) => {
    for (let k = 0; k < bins && b > layer.thresholds[k]; k++) {
      bias[k] += delta[i];
      const row = weight[k];
      for (let p = 0; p < pixels; p++) row[p] += delta[i] * images[i * pixels + p];
    }
  });
  return { weight, bias };
}

/**
 * The images the gradients give back: one per pair of neighbouring rows that differ (an image alone between
 * two thresholds comes back exactly; several together come back as their δ-weighted mean).
 */
export function recoverImprinted(g: ImprintGradients, pixels: number): Float32Array[] {
  const out: Float32Array[] = [];
  const bins = g.bias.length;
  for (let k = 0; k < bins; k++) {
    const next = k + 1 < bins ? g.weight[k + 1] : undefined;
    const db = g.bias[k] - (k + 1 < bins ? g.bias[k + 1] : 0);
    if (Math.abs(db) < 1e-12) continue;
    const image = new Float32Array(pixels);
    for (let p = 0; p < pixels; p++) image[p] = (g.weight[k][p] - (next ? next[p] : 0)) / db;
    out.push(image);
  }
  return out;
}

function meanBrightness(images: Float32Array, pixels: number): Float64Array {
  const n = images.length / pixels;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let p = 0; p < pixels; p++) s += images[i * pixels + p];
    out[i] = s / pixels;
  }
  return out;
}
