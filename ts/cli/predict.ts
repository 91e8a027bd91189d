/**
 * `secflow predict`: a finished experiment's model on chest X-rays (PNG, JPEG or DICOM).
 *   secflow predict --model runs/<federation>/<experiment> --out heatmaps/ chest1.jpeg chest2.dcm
 * prints, per image, the probability of pneumonia and the decision at the model card's threshold, and writes
 * a Grad-CAM heat map PNG per image into --out. Exit status 1 if any image could not be read.
 */
import type { Command } from 'commander';

export function registerPredictCommand(program: Command): void {
  program.command('predict').description('probability of pneumonia and a Grad-CAM heat map for each chest X-ray (PNG, JPEG or DICOM)')
    .requiredOption('--model <dir>', "a run folder (its model/ holds the exported model and card) or a model folder")
    .option('--out <dir>', 'where the heat-map PNGs go', 'predictions')
    .option('--json', 'one JSON object per image instead of a table')
    .argument('<images...>', 'X-ray files')
    .action(async (images: string[], opts: { model: string; out: string; json?: boolean }) => {
      // TensorFlow loads only when a prediction is asked for, so `--help` answers at once.
      const { loadPredictor, predictImages } = await import('../predict/predict.ts');
      const predictor = await loadPredictor(opts.model);
      if (!opts.json) console.log(`model ${predictor.dir}: threshold ${predictor.threshold} (${predictor.thresholdSource})`);
      const { failures } = await predictImages(predictor, images, opts.out, (r) => {
        if (opts.json) console.log(JSON.stringify(r));
        else if ('error' in r) console.error(`${r.image}: cannot predict: ${r.error}`);
        else console.log(`${r.image}: ${r.decision}, ${r.probability.toFixed(4)}  heat map ${r.heat_map}`);
      });
      if (failures.length) process.exitCode = 1;
    });
}
