/** Bad usage or bad input: the command line prints the message on one line and exits with code 2. */
export class InputError extends Error {
  override name = 'InputError';
}

/** Characters a terminal does not show as themselves: controls (C0, DEL, C1: the escape
 *  sequences of a terminal start with them), format characters (bidirectional overrides,
 *  zero-width ones), line and paragraph separators, surrogates, private-use and unassigned. */
const HIDDEN = /[\p{C}\p{Zl}\p{Zp}]/u;
/** Whether `text` holds only characters a terminal shows as themselves (see quote()). */
export function isPrintable(text: string): boolean {
  return !HIDDEN.test(text);
}

const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text read from a file, fit to go into a message: in double quotes, with quotes, backslashes
 * and every character a terminal would not show as itself escaped as JSON escapes them
 * (`\n`, `\u001b`), and cut after about `max` characters, the cut marked by an ellipsis and
 * followed by the whole length. A value that is not a string is shown as JSON (no quotes around
 * it), escaped and cut the same way. Whatever a crafted file holds, the message stays one short
 * line that cannot drive the terminal.
 */
export function quote(value: unknown, max = 100): string {
  const isString = typeof value === 'string';
  const text = isString ? value : (json(value) ?? String(value));
  let out = '';
  let i = 0;
  for (const ch of text) {
    const escaped = isString && ch in SHORT ? SHORT[ch] : HIDDEN.test(ch) ? escapeUnits(ch) : ch;
    if (out.length + escaped.length > max) break;
    out += escaped;
    i += ch.length;
  }
  const cut = i < text.length ? `…${isString ? '"' : ''} (${text.length} characters)` : isString ? '"' : '';
  return `${isString ? '"' : ''}${out}${cut}`;
}

/** JSON.stringify, which runs out of stack on a value nested some thousands deep: such a value is
 *  shown as its outer brackets. */
function json(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return Array.isArray(value) ? '[…]' : '{…}';
  }
}

/** \uXXXX for each UTF-16 unit (a lone surrogate is one unit; an unassigned astral character two). */
function escapeUnits(ch: string): string {
  let s = '';
  for (let k = 0; k < ch.length; k++) s += `\\u${ch.charCodeAt(k).toString(16).padStart(4, '0')}`;
  return s;
}
