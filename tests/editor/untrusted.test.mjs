// In Restricted Mode the extension starts no Python and runs no workflow, and says why.
import { after, before, test } from 'node:test';
import { launch } from './editor.mjs';

let editor;

before(async () => {
  editor = await launch('untrusted', { trusted: false });
});

after(async () => {
  await editor?.close();
});

test('an untrusted workspace runs no workflow and says why', { timeout: 90000 }, () =>
  editor.step('untrusted', async () => {
    await editor.runFromPalette('Treeflow: Run Workflow');
    await editor.toast(/only in a trusted workspace/).waitFor();
    await editor.page.waitForTimeout(1000); // the toast fades in; let it show in the picture
    await editor.shot('14-untrusted-run-refused');
    // Resuming a run executes its commands just the same.
    await editor.runFromPalette('Treeflow: Resume Run');
    await editor.toast(/resumes runs only in a trusted workspace/).waitFor();

    await editor.runFromPalette('Treeflow: Show Runs');
    await editor.page.locator('.part.sidebar').getByText(/only in a trusted workspace/).waitFor();
    await editor.runFromPalette('Treeflow: Show Output');
    await editor.page
      .locator('.panel .view-lines', { hasText: 'Not starting the language server: this workspace is not trusted' })
      .first()
      .waitFor();
    await editor.shot('15-untrusted-runs-view');
  })(),
);
