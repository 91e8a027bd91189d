/**
 * One CSV field (RFC 4180): a field with a comma, quote or line break is quoted, quotes doubled; an absent
 * value is empty. Numbers are written as given: callers that want fewer digits round first.
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === undefined || value === null) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
