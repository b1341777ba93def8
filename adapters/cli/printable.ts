/**
 * Text from users (names, user ids, reasons, actors) as it may be shown on a terminal: control
 * characters (C0, DEL, C1), bidirectional overrides and isolates (U+202E can make "exe.txt"
 * read "txt.exe"), zero-width and line/paragraph separators are written as \uXXXX escapes,
 * and a backslash as \\, so what is printed is unambiguous and cannot move the cursor, clear
 * the screen or reorder the line. What is stored is unchanged: only its display is escaped.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\\]/g;

const escape = (c: string): string => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export const printable = (s: string): string => s.replace(UNPRINTABLE, escape);

/** True when `s` would be printed as it is. */
export const isPrintable = (s: string): boolean => printable(s) === s;
