/**
 * Plain-text tables with padEnd: the output is a few columns of short values, which does not
 * justify a table dependency (cli-table3 draws borders scripts would have to strip).
 */

/** One column: header and alignment (numbers right). */
export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

/** Rows under their headers, columns two spaces apart, trailing spaces trimmed. */
export function formatTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        return c.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n') + '\n';
}

/** `42s`, `3m12s`, `5h04m`, `2d03h`: a message's age at a glance. */
export function formatAge(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** A number or `-` when the broker does not tell. */
export const cell = (value: number | string | undefined): string => (value === undefined ? '-' : String(value));
