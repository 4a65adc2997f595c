// What "Create Workflow" tells the user, built without the `vscode` import.
import type { InitWorkflowResult } from './protocol';

export function createdMessage(created: InitWorkflowResult): string {
  const name = fileName(created.uri);
  if (!created.created) {
    return `${name} already exists; opened it unchanged.`;
  }
  const count = `${created.steps.length} ${created.steps.length === 1 ? 'step' : 'steps'}`;
  const from = created.sources.length
    ? `from ${created.sources.join(', ')}`
    : 'with an example step (no lint, test or build commands were found)';
  return `wrote ${name}, ${count} ${from}. "Run workflow" above its first line runs it.`;
}

function fileName(uri: string): string {
  const path = uri.split(/[?#]/)[0] ?? uri;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}
