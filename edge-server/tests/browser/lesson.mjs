// Opens a lesson page in headless Chromium the way a teacher would, plays the
// video and reports what happened as one JSON object on stdout; the Rust test
// (edge-server/tests/it/browser.rs) makes the assertions.
//
//   node lesson.mjs <lesson page URL> [--no-js-pick <q>] [--screenshot <png>]
//
// Environment: LOWBAND_NODE_MODULES (where playwright-core is installed),
// LOWBAND_CHROMIUM (default /usr/bin/chromium), LOWBAND_PLAY_SECONDS (how far
// the video must play, default 3), LOWBAND_TIMEOUT_MS (each wait, default 120000).
//
// Bytes are counted from Chromium's own network events (encodedDataLength:
// what came over the wire, headers included), for every request the page made.
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.LOWBAND_NODE_MODULES}/`);
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const url = args[0];
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const timeout = Number(process.env.LOWBAND_TIMEOUT_MS || 120000);
const playSeconds = Number(process.env.LOWBAND_PLAY_SECONDS || 3);

const browser = await chromium.launch({
  executablePath: process.env.LOWBAND_CHROMIUM || '/usr/bin/chromium',
  // Root in a container: no sandbox. Autoplay: play() stands in for the teacher's tap.
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required'],
  timeout,
});
const report = { url };
try {
  // A phone-sized window.
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2 });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);

  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const requests = new Map();
  cdp.on('Network.requestWillBeSent', (e) => {
    // A redirect reuses the request id: keep the redirect as its own entry.
    if (e.redirectResponse && requests.has(e.requestId)) {
      const r = requests.get(e.requestId);
      requests.set(`${e.requestId}:${r.url}`, { ...r, status: e.redirectResponse.status, headers: e.redirectResponse.headers });
    }
    requests.set(e.requestId, { url: e.request.url, method: e.request.method, range: e.request.headers.Range || e.request.headers.range || null, bytes: 0, finished: false });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r) Object.assign(r, { status: e.response.status, headers: e.response.headers, fromCache: e.response.fromDiskCache || false });
  });
  cdp.on('Network.dataReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r && !r.finished) r.bytes += e.encodedDataLength;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = requests.get(e.requestId);
    if (r) Object.assign(r, { bytes: Math.max(r.bytes, e.encodedDataLength), finished: true });
  });

  const started = Date.now();
  const response = await page.goto(url, { waitUntil: 'load', timeout });
  report.status = response.status();
  report.contentType = response.headers()['content-type'];
  report.loadMs = Date.now() - started;
  report.page = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    charset: document.characterSet,
    title: document.title,
    now: document.getElementById('now')?.textContent,
    costs: document.getElementById('costs')?.textContent,
    src: document.getElementById('lesson')?.getAttribute('src'),
    tracks: [...document.querySelectorAll('track')].map((t) => ({ srclang: t.srclang, label: t.label, default: t.default })),
    offers: [...document.querySelectorAll('label[data-bytes]')].map((l) => ({
      variant: l.dataset.variant,
      bytes: Number(l.dataset.bytes),
      src: l.dataset.src,
      text: l.textContent.trim(),
    })),
    downloads: [...document.querySelectorAll('a[download]')].map((a) => a.getAttribute('href')),
    // Khmer text must be drawn with a font that has Khmer glyphs, not boxes:
    // a Khmer string and the same number of missing-glyph boxes differ in width.
    khmerWidth: (() => {
      const c = document.createElement('canvas').getContext('2d');
      c.font = `16px ${getComputedStyle(document.body).fontFamily}`;
      return { khmer: c.measureText('ការសួរសំណួរល្អ').width, tofu: c.measureText('\u{10FFFD}'.repeat(14)).width };
    })(),
  }));
  if (option('--screenshot')) await page.screenshot({ path: option('--screenshot'), fullPage: true });

  // The teacher taps play.
  const playStarted = Date.now();
  await page.evaluate(() => { document.getElementById('lesson').play(); });
  await page.waitForFunction((s) => document.getElementById('lesson').currentTime >= s, playSeconds, { timeout, polling: 250 });
  report.playMs = Date.now() - playStarted;
  report.video = await page.evaluate(() => {
    const v = document.getElementById('lesson');
    return { currentSrc: v.currentSrc, currentTime: v.currentTime, videoWidth: v.videoWidth, videoHeight: v.videoHeight, error: v.error && v.error.message };
  });
  await page.evaluate(() => document.getElementById('lesson').pause());
  report.requests = [...requests.values()];

  // Without JavaScript: pick a quality with the form; the choice must stick.
  const pick = option('--no-js-pick');
  if (pick) {
    const nojs = await browser.newContext({ javaScriptEnabled: false });
    const p = await nojs.newPage();
    p.setDefaultTimeout(timeout);
    await p.goto(url, { waitUntil: 'load', timeout });
    await p.check(`input[name=q][value="${pick}"]`);
    await Promise.all([p.waitForNavigation({ timeout }), p.click('form button')]);
    const after = async () => p.evaluate(() => ({
      url: location.href,
      src: document.getElementById('lesson').getAttribute('src'),
      checked: document.querySelector('input[name=q]:checked')?.value,
      now: document.getElementById('now')?.textContent,
    }));
    report.noJsPick = await after();
    await p.goto(url, { waitUntil: 'load', timeout });
    report.noJsReload = await after();
    report.noJsCookies = (await nojs.cookies()).map((c) => `${c.name}=${c.value}`);
    await nojs.close();
  }
  await context.close();
} catch (e) {
  report.error = String(e && e.stack || e);
}
await browser.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
