/**
 * Text for a terminal: what ms prints comes partly from others (titles in a movies file, records
 * in a shared bucket, tags on a tracking server), and a control character there could move the
 * cursor, clear the screen, set the window title or plant an OSC 8 link. Every control character
 * but newline and tab is shown as its `\u00XX` escape instead (JSON output escapes them already).
 */

// C0 controls but tab and newline, DEL, and the C1 controls (0x80-0x9f, which some terminals obey too).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this function's job.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` with every control character but newline and tab written as a visible `\u00XX`. */
export function terminalSafe(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
