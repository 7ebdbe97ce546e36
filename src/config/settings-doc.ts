import { SETTINGS } from './settings.js';

export const SETTINGS_BEGIN = '<!-- settings:begin -->';
export const SETTINGS_END = '<!-- settings:end -->';

/** The README's configuration table, one row per setting of the table, columns aligned. */
export function settingsMarkdownTable(): string {
  const rows = [
    ['variable', 'default', 'an edit applies', 'meaning'],
    ...SETTINGS.map((setting) => [
      `\`${setting.name}\``,
      setting.default === '' ? 'unset' : `\`${setting.default}\``,
      setting.applies === 'live' ? 'live' : 'at restart',
      setting.doc,
    ]),
  ];
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => [...(row[column] ?? '')].length))) ?? [];
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, column) => cell + ' '.repeat((widths[column] ?? 0) - [...cell].length)).join(' | ')} |`;
  const [header = [], ...body] = rows;
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n');
}

/** `text` with the part between the markers replaced by the generated table, or null when a marker is missing. */
export function withSettingsTable(text: string): string | null {
  const begin = text.indexOf(SETTINGS_BEGIN);
  const end = text.indexOf(SETTINGS_END);
  if (begin === -1 || end < begin) return null;
  return `${text.slice(0, begin + SETTINGS_BEGIN.length)}\n${settingsMarkdownTable()}\n${text.slice(end)}`;
}
