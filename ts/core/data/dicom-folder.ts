/**
 * A hospital's DICOM export as a training set: <root>/<CLASS>/... (labels from sub-folders, any depth, any
 * file name: DICOM files often have no extension) or any layout with a labels CSV (`file,label`, the label a
 * class name or its index). Files are read by their content (xray-image.ts); one that is no image is named, not skipped.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCsv } from '../csv.ts';
import { DataFileError } from './npz.ts';
import type { ImageDataset } from './dataset.ts';
import { loadLabelledImages, type XrayFolderOptions } from './xray-folder.ts';

export interface DicomFolderOptions extends XrayFolderOptions { labelsCsv?: string }

export function loadDicomFolder(options: DicomFolderOptions): ImageDataset {
  const items = options.labelsCsv ? listFromCsv(options.root, options.labelsCsv, options.classes) : listFromFolders(options.root, options.classes);
  return loadLabelledImages(items, options);
}

function listFromFolders(root: string, classes: string[]): { file: string; label: number }[] {
  if (!existsSync(root)) throw new DataFileError(`${root}: the DICOM folder does not exist`);
  const present = classes.filter((c) => existsSync(join(root, c)) && statSync(join(root, c)).isDirectory());
  if (!present.length) throw new DataFileError(`${root}: none of the class folders ${classes.join(', ')} exists (or give labels_csv)`);
  return present.flatMap((cls) => filesUnder(join(root, cls)).map((file) => ({ file, label: classes.indexOf(cls) })));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).filter((n) => !n.startsWith('.')).sort().flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function listFromCsv(root: string, csvPath: string, classes: string[]): { file: string; label: number }[] {
  let text: string;
  try {
    text = readFileSync(csvPath, 'utf8');
  } catch (error) {
    throw new DataFileError(`${csvPath}: cannot read the labels CSV (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const [header, ...rows] = parseCsv(text);
  const fileColumn = header?.findIndex((h) => ['file', 'path'].includes(h.trim().toLowerCase())) ?? -1;
  const labelColumn = header?.findIndex((h) => ['label', 'class'].includes(h.trim().toLowerCase())) ?? -1;
  if (fileColumn < 0 || labelColumn < 0) throw new DataFileError(`${csvPath}: the header must name a 'file' and a 'label' column, got '${header?.join(',') ?? ''}'`);
  return rows.map((row, i) => {
    const where = `${csvPath} line ${i + 2}`;
    const name = row[fileColumn]?.trim();
    const label = labelOf(row[labelColumn]?.trim() ?? '', classes);
    if (!name) throw new DataFileError(`${where}: no file`);
    if (label === undefined) throw new DataFileError(`${where}: label '${row[labelColumn] ?? ''}' is not one of ${classes.join(', ')} (or 0-${classes.length - 1})`);
    const file = resolve(root, name);
    if (!existsSync(file)) throw new DataFileError(`${where}: ${file} does not exist`);
    return { file, label };
  });
}

function labelOf(text: string, classes: string[]): number | undefined {
  const byName = classes.indexOf(text);
  if (byName >= 0) return byName;
  return /^\d+$/.test(text) && Number(text) < classes.length ? Number(text) : undefined;
}
