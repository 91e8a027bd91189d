/**
 * Chest X-rays stored as DICOM (PS3.3 / PS3.5), the way hospitals keep them. The file is parsed by
 * cornerstone's dicom-parser (which also inflates the deflated transfer syntax); the pixels become what a
 * radiologist's viewer shows, in this order (PS3.4 N.2):
 *
 *   stored values (8/16-bit, signed or not, BitsStored masked)
 *   -> Modality LUT: rescale slope / intercept
 *   -> VOI: the first window centre / width (linear, C.11.2.1.2), else a VOI LUT sequence, else the values
 *      as they are when they already fit 0-255, else their min-max range
 *   -> Presentation: MONOCHROME1 (white = low) inverted
 *
 * giving 0-255 greys (or RGB) like a decoded JPEG. Pixel data: native (uncompressed), RLE Lossless (decoded
 * here: PackBits segments, PS3.5 Annex G) and JPEG Baseline (the encapsulated JPEG handed to TensorFlow's own
 * decoder, as for a .jpeg file). Other compressed syntaxes are refused by name.
 *
 * De-identification: nothing here puts a patient's name, ID, birth date or any UID into an error or a log;
 * errors name the file and the technical attribute at fault only.
 */
import type * as TF from '@tensorflow/tfjs';
import dicomParser from 'dicom-parser';
import { tf } from '../tf.ts';
import { DataFileError } from './npz.ts';

const TRANSFER_SYNTAXES: Record<string, { name: string; pixels: 'native' | 'rle' | 'jpeg_baseline' | 'unsupported' }> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian', pixels: 'native' },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian', pixels: 'native' },
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', pixels: 'native' },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian (retired)', pixels: 'native' },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', pixels: 'rle' },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1)', pixels: 'jpeg_baseline' },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4)', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless (Process 14)', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless SV1', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Near-Lossless', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Lossless', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000', pixels: 'unsupported' },
  '1.2.840.10008.1.2.4.201': { name: 'HTJ2K Lossless', pixels: 'unsupported' },
};
const READABLE = Object.values(TRANSFER_SYNTAXES).filter((t) => t.pixels !== 'unsupported').map((t) => t.name);

/** Projection radiography and secondary captures of it; CT, MR, ultrasound and the rest are not chest X-rays. */
export const XRAY_MODALITIES = ['CR', 'DX', 'DR', 'RG', 'PX', 'OT'];

const TAG = {
  transferSyntax: 'x00020010', modality: 'x00080060', samples: 'x00280002', photometric: 'x00280004',
  frames: 'x00280008', planar: 'x00280006', rows: 'x00280010', columns: 'x00280011', bitsAllocated: 'x00280100',
  bitsStored: 'x00280101', pixelRepresentation: 'x00280103', windowCentre: 'x00281050', windowWidth: 'x00281051',
  slope: 'x00281053', intercept: 'x00281052', voiLutSequence: 'x00283010', lutDescriptor: 'x00283002', lutData: 'x00283006',
  pixelData: 'x7fe00010',
} as const;

/** A DICOM file starts with a 128-byte preamble and "DICM". */
export function isDicom(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/** What can be said of a DICOM image in a log: technical attributes only, never who the patient is. */
export interface DicomSummary { modality: string; rows: number; columns: number; bitsStored: number; photometric: string; transferSyntax: string }

export interface DecodedDicom { pixels: TF.Tensor3D; summary: DicomSummary }

/** The image in `bytes` (read from `file`, named in errors) as 0-255 values, [rows, columns, channels]. */
export function decodeDicom(bytes: Uint8Array, file: string, channels: 1 | 3): DecodedDicom {
  const fail = (why: string): never => { throw new DataFileError(`${file}: ${why}`); };
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (error) {
    // dicom-parser throws strings or objects with an `exception` string; neither carries patient data.
    const reason = typeof error === 'string' ? error : (error as { exception?: string; message?: string }).exception ?? (error as Error).message;
    return fail(`corrupt or truncated DICOM file (${reason})`);
  }
  const syntaxUid = ds.string(TAG.transferSyntax) ?? '1.2.840.10008.1.2';
  const syntax = TRANSFER_SYNTAXES[syntaxUid];
  if (!syntax || syntax.pixels === 'unsupported') {
    fail(`transfer syntax ${syntax?.name ?? 'unknown'} (${syntaxUid}) is not supported; readable: ${READABLE.join(', ')}`);
  }
  const modality = ds.string(TAG.modality) ?? '';
  if (!XRAY_MODALITIES.includes(modality)) {
    fail(`modality '${modality || 'none'}' is not a projection X-ray (expected one of ${XRAY_MODALITIES.join(', ')})`);
  }
  const pixelElement = ds.elements[TAG.pixelData];
  if (!pixelElement || pixelElement.length === 0) fail('no pixel data (7FE0,0010): not an image');
  const image = imageAttributes(ds, fail);
  const summary: DicomSummary = { modality, rows: image.rows, columns: image.columns, bitsStored: image.bitsStored, photometric: image.photometric, transferSyntax: syntax!.name };
  if (syntax!.pixels === 'jpeg_baseline') {
    const frame = dicomParser.readEncapsulatedImageFrame(ds, pixelElement, 0, dicomParser.createJPEGBasicOffsetTable(ds, pixelElement));
    return { pixels: decodeJpegFrame(frame, file, channels), summary };
  }
  const stored = syntax!.pixels === 'rle' ? rleFrame(ds, pixelElement, image, fail) : nativeFrame(ds, pixelElement, image, syntaxUid, fail);
  const greys = image.samples === 1 ? presentationValues(ds, stored, image) : colourValues(stored, image);
  return { pixels: toChannels(greys, image, channels), summary };
}

interface ImageAttributes {
  rows: number; columns: number; samples: 1 | 3; bitsAllocated: 8 | 16; bitsStored: number; signed: boolean;
  photometric: string; planar: number;
}

function imageAttributes(ds: dicomParser.DataSet, fail: (why: string) => never): ImageAttributes {
  const rows = ds.uint16(TAG.rows) ?? 0;
  const columns = ds.uint16(TAG.columns) ?? 0;
  if (!rows || !columns) fail(`image size ${rows}x${columns} (Rows / Columns missing or zero)`);
  const frames = ds.intString(TAG.frames) ?? 1;
  if (frames > 1) fail(`${frames} frames: a chest radiograph is one frame (multi-frame objects are not read)`);
  const samples = ds.uint16(TAG.samples) ?? 1;
  const photometric = (ds.string(TAG.photometric) ?? '').trim();
  if (samples === 1 && !['MONOCHROME1', 'MONOCHROME2'].includes(photometric)) fail(`photometric interpretation '${photometric}' with one sample is not supported (MONOCHROME1 or MONOCHROME2)`);
  if (samples === 3 && !['RGB', 'YBR_FULL', 'YBR_FULL_422'].includes(photometric)) fail(`photometric interpretation '${photometric}' is not supported (RGB, YBR_FULL)`);
  if (samples !== 1 && samples !== 3) fail(`${samples} samples per pixel (expected 1 or 3)`);
  const bitsAllocated = ds.uint16(TAG.bitsAllocated) ?? 0;
  if (bitsAllocated !== 8 && bitsAllocated !== 16) fail(`${bitsAllocated} bits allocated per sample (8 or 16 are read)`);
  const bitsStored = ds.uint16(TAG.bitsStored) ?? bitsAllocated;
  if (bitsStored < 1 || bitsStored > bitsAllocated) fail(`${bitsStored} bits stored in ${bitsAllocated} allocated`);
  return {
    rows, columns, samples: samples as 1 | 3, bitsAllocated: bitsAllocated as 8 | 16, bitsStored,
    signed: ds.uint16(TAG.pixelRepresentation) === 1, photometric, planar: ds.uint16(TAG.planar) ?? 0,
  };
}

/** Native pixel data: stored values, one per sample, in file order. */
function nativeFrame(ds: dicomParser.DataSet, element: dicomParser.Element, image: ImageAttributes, syntaxUid: string, fail: (why: string) => never): Float64Array {
  const count = image.rows * image.columns * image.samples;
  const bytesPerSample = image.bitsAllocated / 8;
  if (element.length < count * bytesPerSample) fail(`pixel data holds ${element.length} bytes, ${count * bytesPerSample} needed for ${image.rows}x${image.columns}x${image.samples} at ${image.bitsAllocated} bits (truncated?)`);
  const view = new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + element.dataOffset, count * bytesPerSample);
  const bigEndian = syntaxUid === '1.2.840.10008.1.2.2';
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = image.bitsAllocated === 8 ? view.getUint8(i) : view.getUint16(2 * i, !bigEndian);
  return storedValues(values, image);
}

/** RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, one PackBits segment per byte plane. */
function rleFrame(ds: dicomParser.DataSet, element: dicomParser.Element, image: ImageAttributes, fail: (why: string) => never): Float64Array {
  const frame = dicomParser.readEncapsulatedPixelDataFromFragments(ds, element, 0, element.fragments?.length ?? 1);
  if (frame.length < 64) fail('RLE pixel data shorter than its 64-byte header');
  const header = new DataView(frame.buffer, frame.byteOffset, 64);
  const segments = header.getUint32(0, true);
  const bytesPerSample = image.bitsAllocated / 8;
  if (segments !== image.samples * bytesPerSample) fail(`RLE data has ${segments} segments, ${image.samples * bytesPerSample} expected`);
  const pixels = image.rows * image.columns;
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segments; s++) {
    const start = header.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? header.getUint32(8 + 4 * s, true) : frame.length;
    if (start < 64 || end > frame.length || end < start) fail(`RLE segment ${s + 1} lies outside the pixel data (corrupt)`);
    planes.push(unpackBits(frame.subarray(start, end), pixels, () => fail(`RLE segment ${s + 1} decodes to the wrong length (corrupt)`)));
  }
  // Segments are ordered sample by sample, most significant byte first; the result is sample-interleaved.
  const values = new Float64Array(pixels * image.samples);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < image.samples; c++) {
      let v = 0;
      for (let b = 0; b < bytesPerSample; b++) v = v * 256 + planes[c * bytesPerSample + b][p];
      values[p * image.samples + c] = v;
    }
  }
  return storedValues(values, { ...image, planar: 0 });
}

function unpackBits(segment: Uint8Array, length: number, corrupt: () => never): Uint8Array {
  const out = new Uint8Array(length);
  let i = 0, o = 0;
  while (i < segment.length && o < length) {
    const n = (segment[i++] << 24) >> 24; // signed byte
    if (n >= 0) {
      if (i + n + 1 > segment.length || o + n + 1 > length) corrupt();
      out.set(segment.subarray(i, i + n + 1), o); i += n + 1; o += n + 1;
    } else if (n !== -128) {
      if (i >= segment.length || o - n + 1 > length) corrupt();
      out.fill(segment[i++], o, o - n + 1); o += -n + 1;
    }
  }
  if (o !== length) corrupt();
  return out;
}

/** Masks to BitsStored and sign-extends when PixelRepresentation is 1. */
function storedValues(raw: Float64Array, image: ImageAttributes): Float64Array {
  const range = 2 ** image.bitsStored;
  for (let i = 0; i < raw.length; i++) {
    let v = raw[i] % range;
    if (image.signed && v >= range / 2) v -= range;
    raw[i] = v;
  }
  return raw;
}

/** Modality LUT, VOI and presentation for a grey image: 0-255 values. */
function presentationValues(ds: dicomParser.DataSet, stored: Float64Array, image: ImageAttributes): Float64Array {
  const slope = ds.floatString(TAG.slope) ?? 1;
  const intercept = ds.floatString(TAG.intercept) ?? 0;
  const values = stored.map((v) => v * slope + intercept);
  const centre = ds.floatString(TAG.windowCentre, 0);
  const width = ds.floatString(TAG.windowWidth, 0);
  let out: Float64Array;
  if (centre !== undefined && width !== undefined && width >= 1) {
    out = values.map((x) => linearWindow(x, centre, width));
  } else if (ds.elements[TAG.voiLutSequence]?.items?.length) {
    out = voiLut(ds.elements[TAG.voiLutSequence].items![0].dataSet!, values);
  } else if (slope === 1 && intercept === 0 && image.bitsStored <= 8 && !image.signed) {
    out = values;
  } else {
    let low = Infinity, high = -Infinity;
    for (const v of values) { if (v < low) low = v; if (v > high) high = v; }
    out = values.map((v) => (high > low ? ((v - low) / (high - low)) * 255 : 0));
  }
  if (image.photometric === 'MONOCHROME1') for (let i = 0; i < out.length; i++) out[i] = 255 - out[i];
  return out;
}

/** PS3.3 C.11.2.1.2.1, the LINEAR function, to 0-255. */
function linearWindow(x: number, centre: number, width: number): number {
  if (x <= centre - 0.5 - (width - 1) / 2) return 0;
  if (x > centre - 0.5 + (width - 1) / 2) return 255;
  return ((x - (centre - 0.5)) / (width - 1) + 0.5) * 255;
}

/** A VOI LUT sequence item: descriptor [entries, first mapped value, bits per entry] and its table, to 0-255. */
function voiLut(item: dicomParser.DataSet, values: Float64Array): Float64Array {
  const entries = item.uint16(TAG.lutDescriptor, 0) || 65536;
  const first = item.uint16(TAG.lutDescriptor, 1) ?? 0;
  const bits = item.uint16(TAG.lutDescriptor, 2) ?? 16;
  const table = Array.from({ length: entries }, (_, k) => item.uint16(TAG.lutData, k) ?? 0);
  const top = 2 ** bits - 1;
  return values.map((v) => (table[Math.min(entries - 1, Math.max(0, Math.round(v) - first))] / top) * 255);
}

/** Native or RLE colour: interleave planar data, convert YBR_FULL to RGB (PS3.3 C.7.6.3.1.2). */
function colourValues(stored: Float64Array, image: ImageAttributes): Float64Array {
  const pixels = image.rows * image.columns;
  const out = new Float64Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    let [a, b, c] = image.planar === 1 ? [stored[p], stored[pixels + p], stored[2 * pixels + p]] : [stored[3 * p], stored[3 * p + 1], stored[3 * p + 2]];
    if (image.photometric.startsWith('YBR')) [a, b, c] = [a + 1.402 * (c - 128), a - 0.344136 * (b - 128) - 0.714136 * (c - 128), a + 1.772 * (b - 128)];
    out[3 * p] = a; out[3 * p + 1] = b; out[3 * p + 2] = c;
  }
  const scale = image.bitsStored > 8 ? 255 / (2 ** image.bitsStored - 1) : 1;
  return out.map((v) => Math.min(255, Math.max(0, v * scale)));
}

function toChannels(values: Float64Array, image: ImageAttributes, channels: 1 | 3): TF.Tensor3D {
  return tf.tidy(() => {
    const t = tf.tensor3d(Float32Array.from(values), [image.rows, image.columns, image.samples]);
    if (image.samples === channels) return t;
    // As TensorFlow's rgb_to_grayscale (and libjpeg's luma) does for an RGB image read as grey.
    return channels === 1 ? t.mul(tf.tensor1d([0.2989, 0.587, 0.114])).sum(2, true) : t.tile([1, 1, 3]);
  });
}

function decodeJpegFrame(frame: Uint8Array, file: string, channels: 1 | 3): TF.Tensor3D {
  const node = (tf as unknown as { node?: { decodeJpeg(b: Uint8Array, c: number): TF.Tensor3D } }).node;
  if (!node) throw new DataFileError(`${file}: decoding JPEG pixel data needs the tfjs-node backend (run npm run setup)`);
  try {
    return tf.tidy(() => node.decodeJpeg(frame, channels).toFloat() as TF.Tensor3D);
  } catch (error) {
    throw new DataFileError(`${file}: corrupt JPEG pixel data: ${(error as Error).message.split('\n')[0]}`);
  }
}
