/** Where a dataset comes from: PneumoniaMNIST's .npz layout, a Kermany-style <root>/<CLASS>/*.jpeg folder, or a folder of DICOM files. */
import { z } from 'zod';
import { resolveFrom } from './load.ts';

export const PneumoniaMnistSourceSchema = z.object({
  kind: z.literal('pneumoniamnist'),
  path: z.string().min(1).describe('a MedMNIST-layout .npz file (e.g. ../shared/data/pneumoniamnist.npz)'),
  split: z.enum(['train', 'val', 'test']),
  limit: z.number().int().positive().optional().describe('use only the first N examples (tests, quick demos)'),
}).strict();

export const XrayFolderSourceSchema = z.object({
  kind: z.literal('xray_folder'),
  root: z.string().min(1).describe('folder with one sub-folder per class, e.g. NORMAL/ and PNEUMONIA/'),
  classes: z.array(z.string().min(1)).min(1).default(['NORMAL', 'PNEUMONIA'])
    .describe('class folder names in label order: the first is label 0'),
  image_size: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([28, 28]),
  channels: z.union([z.literal(1), z.literal(3)]).default(1),
  limit: z.number().int().positive().optional(),
}).strict();

export const DicomFolderSourceSchema = z.object({
  kind: z.literal('dicom_folder'),
  root: z.string().min(1).describe('folder of DICOM files: one sub-folder per class, or any layout with labels_csv'),
  classes: z.array(z.string().min(1)).min(1).default(['NORMAL', 'PNEUMONIA'])
    .describe('class names in label order (sub-folder names, or the labels used in labels_csv): the first is label 0'),
  labels_csv: z.string().min(1).optional()
    .describe('CSV with a header naming columns file (a path under root) and label (a class name or its index); default: labels from sub-folders'),
  image_size: z.tuple([z.number().int().positive(), z.number().int().positive()]).default([28, 28]),
  channels: z.union([z.literal(1), z.literal(3)]).default(1),
  limit: z.number().int().positive().optional(),
}).strict();

export const DataSourceSchema = z.discriminatedUnion('kind', [PneumoniaMnistSourceSchema, XrayFolderSourceSchema, DicomFolderSourceSchema]);
export type DataSource = z.infer<typeof DataSourceSchema>;

export const PartitionSchema = z.object({
  scheme: z.enum(['iid', 'dirichlet', 'quantity']).describe('iid; label skew by Dirichlet(alpha); quantity skew'),
  num_shards: z.number().int().min(1),
  index: z.number().int().min(0).describe('which shard this envoy keeps, 0-based'),
  alpha: z.number().positive().default(0.5).describe('Dirichlet concentration (dirichlet) or size skew (quantity)'),
  seed: z.number().int().default(0),
}).strict().refine((p) => p.index < p.num_shards, { message: 'partition.index must be below num_shards' });
export type Partition = z.infer<typeof PartitionSchema>;

/** Make a source's paths relative to the config file that named them. */
export function resolveSourcePaths(source: DataSource, configPath: string): DataSource {
  if (source.kind === 'pneumoniamnist') return { ...source, path: resolveFrom(configPath, source.path) };
  if (source.kind === 'dicom_folder') {
    return { ...source, root: resolveFrom(configPath, source.root), ...(source.labels_csv ? { labels_csv: resolveFrom(configPath, source.labels_csv) } : {}) };
  }
  return { ...source, root: resolveFrom(configPath, source.root) };
}
