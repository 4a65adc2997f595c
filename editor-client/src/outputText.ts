// Step output made readable in the editor: terminal escape sequences dropped, carriage returns
// applied as a terminal would, one prefixed line per output line. Log files on disk keep the bytes.
import type { OutputStream } from './protocol';

// CSI (colours, cursor moves), OSC (titles, links) up to BEL or ST, and the two-byte escapes;
// their 8-bit forms too. The character-class ranges follow ECMA-48.
const ESCAPE_SEQUENCES =
  /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -/]*[0-~]/g;
// Control characters left after that (a bell, a backspace, a lone ESC), but not tab or CR.
const OTHER_CONTROLS = /[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]/g;

/** `text` without terminal escape sequences and control characters other than tab, CR and LF. */
export function stripEscapes(text: string): string {
  return text.replace(ESCAPE_SEQUENCES, '').replace(OTHER_CONTROLS, '');
}

/**
 * One line (no LF) as a terminal would leave it: each CR returns to the start and what follows
 * overwrites, so a progress bar's last state wins and a CRLF ending is just the line.
 */
export function applyCarriageReturns(line: string): string {
  if (!line.includes('\r')) {
    return line;
  }
  const cells: string[] = [];
  for (const part of line.split('\r')) {
    Array.from(part).forEach((char, column) => {
      cells[column] = char;
    });
  }
  return cells.join('');
}

/** A line of output as shown: escapes dropped, carriage returns applied. */
export function displayLine(line: string): string {
  return applyCarriageReturns(stripEscapes(line));
}

/** The lines of `text` (whole lines, the last LF optional), each as shown. */
export function displayLines(text: string): string[] {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  return body.split('\n').map(displayLine);
}

/**
 * Lines of the output channel for output of step `stepId`: `[lint] text`, and `[lint stderr] text`
 * for what the step wrote to stderr.
 */
export function channelLines(stepId: string, text: string, stream: OutputStream = 'stdout'): string[] {
  const prefix = stream === 'stderr' ? `[${stepId} stderr]` : `[${stepId}]`;
  return displayLines(text).map((line) => `${prefix} ${line}`);
}

/** A whole log file as shown in an editor: each line as shown, the final LF kept. */
export function displayLog(text: string): string {
  if (text === '') {
    return '';
  }
  const shown = displayLines(text).join('\n');
  return text.endsWith('\n') ? `${shown}\n` : shown;
}
