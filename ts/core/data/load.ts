import type { DataSource } from '../config/data-source.ts';
import type { ImageDataset } from './dataset.ts';
import { loadPneumoniaMnist } from './npz.ts';
import { loadXrayFolder } from './xray-folder.ts';
import { loadDicomFolder } from './dicom-folder.ts';

export function loadDataSource(source: DataSource, onProgress?: (done: number, total: number) => void): ImageDataset {
  if (source.kind === 'pneumoniamnist') return loadPneumoniaMnist(source.path, source.split, source.limit);
  if (source.kind === 'dicom_folder') {
    return loadDicomFolder({
      root: source.root, classes: source.classes, labelsCsv: source.labels_csv, imageSize: source.image_size,
      channels: source.channels, limit: source.limit, onProgress,
    });
  }
  return loadXrayFolder({
    root: source.root, classes: source.classes, imageSize: source.image_size,
    channels: source.channels, limit: source.limit, onProgress,
  });
}
