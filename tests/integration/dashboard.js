// dashboard.js - drives a real headless Chromium (Debian's, through
// playwright-core) for tests/integration/test_dashboard.py. It reads one
// JSON command per line on stdin and answers one JSON line on stdout:
//   {"op": "goto", "url": U}                 load U
//   {"op": "wait", "selector": S, "timeout_ms": T}   until S is in the page
//   {"op": "count", "selector": S}           how many elements match S
//   {"op": "text", "selector": S}            the first one's text
//   {"op": "click", "selector": S}
//   {"op": "screenshot", "path": P}          a full-page PNG at P
//   {"op": "errors"}                          the console's errors so far
// Answers: {"ok": true, ...} or {"ok": false, "error": "..."}.
// Usage: node dashboard.js PLAYWRIGHT_CORE_DIR CHROMIUM
'use strict';
const readline = require('readline');

async function main() {
  const [pwDir, chromium] = process.argv.slice(2);
  const {chromium: launcher} = require(pwDir);
  const browser = await launcher.launch({executablePath: chromium, args: ['--no-sandbox', '--headless']});
  const page = await browser.newPage({viewport: {width: 1280, height: 900}});
  const errors = [];
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', e => errors.push(String(e)));
  const say = o => process.stdout.write(JSON.stringify(o) + '\n');
  say({ok: true, ready: true});
  const rl = readline.createInterface({input: process.stdin});
  for await (const line of rl) {
    let c;
    try { c = JSON.parse(line); } catch (e) { say({ok: false, error: 'not JSON: ' + line}); continue; }
    try {
      if (c.op === 'goto') {
        await page.goto(c.url);
        say({ok: true});
      } else if (c.op === 'wait') {
        await page.waitForSelector(c.selector, {timeout: c.timeout_ms || 20000, state: 'attached'});
        say({ok: true});
      } else if (c.op === 'count') {
        say({ok: true, count: await page.locator(c.selector).count()});
      } else if (c.op === 'text') {
        say({ok: true, text: await page.locator(c.selector).first().textContent()});
      } else if (c.op === 'click') {
        await page.locator(c.selector).first().click();
        say({ok: true});
      } else if (c.op === 'screenshot') {
        await page.screenshot({path: c.path, fullPage: true});
        say({ok: true});
      } else if (c.op === 'errors') {
        say({ok: true, errors: errors});
      } else if (c.op === 'quit') {
        break;
      } else {
        say({ok: false, error: 'no such op: ' + c.op});
      }
    } catch (e) {
      say({ok: false, error: String(e && e.message || e).split('\n')[0]});
    }
  }
  await browser.close();
}

main().catch(e => { process.stdout.write(JSON.stringify({ok: false, error: String(e)}) + '\n'); process.exit(1); });
