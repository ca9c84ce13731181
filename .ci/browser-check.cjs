// Drives headless Chromium through GraphiQL and Swagger UI; see .ci/browser-check.sh.
// Usage: node browser-check.cjs PUBLIC_BASE ADMIN_BASE CHROMIUM OUT_DIR PROFILE_DIR
//   PUBLIC_BASE  a server with GRAPHQL_INTROSPECTION=public (development's default)
//   ADMIN_BASE   a server with GRAPHQL_INTROSPECTION=admin (production's default)
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [base, adminBase, executablePath, outDir, profileDir] = process.argv.slice(2);
const ADMIN = { email: 'admin@dispensario.local', password: 'Admin12345!' };
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const TIMEOUT_MS = 30000;

const requests = [];
const foreign = [];
const failures = [];

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

// data: and blob: URLs never leave the page; anything else must be this machine.
function record(url) {
  requests.push(url);
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    foreign.push(url);
    return;
  }
  if (parsed.protocol === 'data:' || parsed.protocol === 'blob:') return;
  if (!LOCAL_HOSTS.has(parsed.hostname)) foreign.push(url);
}

function introspectionResponse(page) {
  return page.waitForResponse(
    (r) => r.url().endsWith('/graphql') && r.request().method() === 'POST' &&
      (r.request().postData() || '').includes('__schema'),
    { timeout: TIMEOUT_MS },
  );
}

function describe(response, body) {
  return `HTTP ${response.status()}${body.errors ? `, errors: ${JSON.stringify(body.errors)}` : ''}`;
}

async function graphiql(page) {
  const introspection = introspectionResponse(page);
  await page.goto(`${base}/graphql`, { waitUntil: 'load' });
  const response = await introspection;
  const body = await response.json();
  check(response.status() === 200 && !body.errors && body.data && body.data.__schema,
    `GraphiQL's introspection request answers with the schema (${describe(response, body)})`);
  await docsExplorer(page, 'graphiql.png');
}

// GRAPHQL_INTROSPECTION=admin: an anonymous GraphiQL is refused the schema; the admin pastes a
// bearer token into the Headers tab and re-fetches it, as the README says.
async function graphiqlAsAdmin(page) {
  const login = await fetch(`${adminBase}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  const token = (await login.json()).accessToken;
  check(login.status === 200 && typeof token === 'string', `the admin logs in (HTTP ${login.status})`);
  const first = introspectionResponse(page);
  await page.goto(`${adminBase}/graphql`, { waitUntil: 'load' });
  const refused = await first;
  const refusedBody = await refused.json();
  const code = refusedBody.errors && refusedBody.errors[0].extensions.code;
  check(code === 'unauthorized' && !refusedBody.data,
    `GRAPHQL_INTROSPECTION=admin: anonymous GraphiQL is refused the schema (${code})`);

  await page.locator('button[data-name="headers"]').click();
  await page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden)').first().click();
  await page.keyboard.type(JSON.stringify({ Authorization: `Bearer ${token}` }));
  // GraphiQL takes the headers editor's text after its debounce; re-fetch until it has.
  let answered = null;
  for (let attempt = 0; attempt < 5 && !answered; attempt++) {
    await page.waitForTimeout(600);
    const next = introspectionResponse(page);
    await page.locator('button[aria-label="Re-fetch GraphQL schema"]').click();
    const response = await next;
    const body = await response.json();
    if (body.data && body.data.__schema) answered = { response, body };
  }
  check(answered !== null,
    'with an admin bearer token in the Headers tab, re-fetching the schema succeeds');
  await docsExplorer(page, 'graphiql-admin.png');
}

async function docsExplorer(page, screenshot) {
  await page.locator('.graphiql-container').waitFor({ timeout: TIMEOUT_MS });
  const docsButton = page.locator('button[aria-label="Show Documentation Explorer"]');
  if (await docsButton.count()) await docsButton.click();
  const explorer = page.locator('.graphiql-doc-explorer');
  await explorer.waitFor({ timeout: TIMEOUT_MS });
  const queryType = explorer.locator('a.graphiql-doc-explorer-type-name', { hasText: /^Query$/ });
  await queryType.first().waitFor({ timeout: TIMEOUT_MS });
  await queryType.first().click();
  await explorer.locator('.graphiql-doc-explorer-title', { hasText: /^Query$/ })
    .waitFor({ timeout: TIMEOUT_MS });
  const fields = await explorer.locator('a.graphiql-doc-explorer-field-name').allInnerTexts();
  check(fields.includes('products') && fields.includes('me') && fields.includes('adminOrders'),
    `the documentation explorer lists Query's fields (${fields.length}: ${fields.slice(0, 6).join(', ')}, ...)`);
  await page.screenshot({ path: path.join(outDir, screenshot) });
}

async function swagger(page) {
  await page.goto(`${base}/docs/`, { waitUntil: 'load' });
  const operations = page.locator('.opblock-summary-path');
  await operations.first().waitFor({ timeout: TIMEOUT_MS });
  const paths = (await operations.allInnerTexts()).map((p) => p.replace(/\u200b/g, '').trim());
  check(paths.includes('/api/products') && paths.includes('/api/admin/orders'),
    `Swagger UI lists the operations (${paths.length}, e.g. ${paths.slice(0, 3).join(', ')})`);
  const title = await page.locator('.info .title').first().innerText();
  check(/dispensary/i.test(title), `Swagger UI shows the document's title (${title.split('\n')[0]})`);
  await page.screenshot({ path: path.join(outDir, 'swagger.png') });
}

(async () => {
  fs.mkdirSync(profileDir, { recursive: true });
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  context.on('request', (r) => record(r.url()));
  const httpErrors = [];
  context.on('response', (r) => { if (r.status() >= 400) httpErrors.push(`${r.status()} ${r.url()}`); });
  const consoleErrors = [];
  try {
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await graphiql(page);
    await swagger(page);
    await graphiqlAsAdmin(await context.newPage());
  } catch (e) {
    check(false, `the pages load and behave (${e.message.split('\n')[0]})`);
  } finally {
    await context.close();
  }
  fs.writeFileSync(path.join(outDir, 'requests.txt'), requests.join('\n') + '\n');
  check(foreign.length === 0,
    `all ${requests.length} requests stayed on this machine` +
    (foreign.length ? ` (left it: ${foreign.join(', ')})` : ''));
  if (consoleErrors.length) console.log(`browser console errors:\n  ${consoleErrors.join('\n  ')}`);
  if (httpErrors.length) console.log(`HTTP errors seen (not failures by themselves):\n  ${httpErrors.join('\n  ')}`);
  console.log(`screenshots: ${['graphiql.png', 'swagger.png', 'graphiql-admin.png']
    .map((f) => path.join(outDir, f)).join(', ')}`);
  process.exit(failures.length ? 1 : 0);
})().catch((e) => {
  console.error(`browser check crashed: ${e.stack || e}`);
  process.exit(1);
});
