// Time to first frame of a lesson, in headless Chromium: for each case, a fresh
// browser context opens the lesson page, plays the video as soon as the page is
// parsed (the teacher's tap, without the human), and reports when the first
// frame was presented (requestVideoFrameCallback; for sound only, when it
// started playing), counted from the start of the navigation, and the bytes
// that came over the wire by then (Chromium's encodedDataLength, headers included).
//
//   node lesson-ttff.mjs '<JSON list of {name, url, src?}>'
//
// `src` replaces the player's source (the original file, which has no lesson
// page of its own). Prints one JSON object per case. Environment as lesson.mjs:
// LOWBAND_NODE_MODULES, LOWBAND_CHROMIUM, LOWBAND_TIMEOUT_MS (default 180000).
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.LOWBAND_NODE_MODULES}/`);
const { chromium } = require('playwright-core');

const cases = JSON.parse(process.argv[2]);
const timeout = Number(process.env.LOWBAND_TIMEOUT_MS || 180000);
const browser = await chromium.launch({
  executablePath: process.env.LOWBAND_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required'],
  timeout,
});
for (const c of cases) {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  // Per request: when it was sent, answered and finished (s from the first), and its bytes.
  const requests = new Map();
  let t0;
  const at = (ts) => Math.round((ts - t0) * 1000);
  cdp.on('Network.requestWillBeSent', (e) => {
    t0 ??= e.timestamp;
    requests.set(e.requestId, { url: e.request.url.replace(/^.*\/\/[^/]+/, '').slice(0, 60), range: e.request.headers.Range, sentMs: at(e.timestamp), bytes: 0 });
  });
  cdp.on('Network.responseReceived', (e) => { const r = requests.get(e.requestId); if (r) r.responseMs = at(e.timestamp); });
  // Media bodies report no encodedDataLength per chunk: count the body bytes.
  cdp.on('Network.dataReceived', (e) => { const r = requests.get(e.requestId); if (r) r.bytes += Math.max(e.encodedDataLength, e.dataLength); });
  cdp.on('Network.loadingFinished', (e) => { const r = requests.get(e.requestId); if (r) r.doneMs = at(e.timestamp); });
  await page.addInitScript((src) => {
    window.__ttff = {};
    document.addEventListener('DOMContentLoaded', () => {
      const v = document.getElementById('lesson');
      if (src) v.src = src;
      v.addEventListener('playing', () => { window.__ttff.playing ??= performance.now(); });
      if (v.requestVideoFrameCallback) {
        v.requestVideoFrameCallback((now) => { window.__ttff.frame = now; });
      }
      v.play().catch((e) => { window.__ttff.error = String(e); });
    });
  }, c.src || null);
  const result = { name: c.name };
  try {
    await page.goto(c.url, { waitUntil: 'domcontentloaded', timeout });
    await page.waitForFunction(() => {
      const t = window.__ttff;
      const v = document.getElementById('lesson');
      const soundOnly = v.readyState >= 1 && v.videoWidth === 0;
      return t.error || t.frame !== undefined || (soundOnly && t.playing !== undefined);
    }, null, { timeout, polling: 50 });
    const t = await page.evaluate(() => ({ ...window.__ttff, w: document.getElementById('lesson').videoWidth, h: document.getElementById('lesson').videoHeight }));
    Object.assign(result, { ttffMs: Math.round(t.frame ?? t.playing), playingMs: Math.round(t.playing ?? -1), width: t.w, height: t.h, error: t.error });
  } catch (e) {
    result.error = String(e).split('\n')[0];
  }
  const list = [...requests.values()].filter((r) => !r.url.startsWith('data:'));
  result.bytes = list.reduce((n, r) => n + r.bytes, 0);
  if (process.env.LOWBAND_TTFF_REQUESTS) result.requests = list;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await context.close();
}
await browser.close();
