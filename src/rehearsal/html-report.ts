/**
 * The rehearsal as one self-contained HTML page: an inline SVG chart of renewals, expiries and served-expired
 * minutes per simulated day (fault periods shaded), then the text report. No scripts, styles or fonts from
 * elsewhere.
 */
import type { RehearsalResult } from './rehearsal-ledger.ts';
import { formatReport, goalsOf } from './rehearsal-report.ts';

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const COLORS = { issued: '#2563eb', expiring: '#9ca3af', expired: '#dc2626' };
const FAULT_COLORS: Record<string, string> = {
  'ca-down': '#f59e0b',
  'rate-limit': '#a855f7',
  dns: '#10b981',
  'reload-fails': '#ef4444',
  'agent-offline': '#6b7280',
  'hub-restart': '#0ea5e9',
};

export function chartSvg(r: RehearsalResult, width = 960, height = 320): string {
  const pad = { l: 48, r: 56, t: 16, b: 36 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const { issued, expiring, servedExpiredMinutes } = r.daily;
  const days = Math.max(1, issued.length);
  const countMax = Math.max(1, ...issued, ...expiring);
  const expiredMax = Math.max(1, ...servedExpiredMinutes);
  const x = (d: number) => pad.l + (d / days) * w;
  const y = (v: number, max: number) => pad.t + h - (v / max) * h;
  const line = (values: number[], max: number, color: string, label: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${values
      .map((v, d) => `${x(d + 0.5).toFixed(1)},${y(v, max).toFixed(1)}`)
      .join(' ')}"><title>${esc(label)}</title></polyline>`;
  const start = Date.parse(r.options.start);
  const bands = r.faults
    .map((f) => {
      const a = (Date.parse(f.start) - start) / 86_400_000;
      const b = Math.max(a + 0.3, (Date.parse(f.end) - start) / 86_400_000);
      return `<rect x="${x(a).toFixed(1)}" y="${pad.t}" width="${(x(b) - x(a)).toFixed(1)}" height="${h}" fill="${FAULT_COLORS[f.kind] ?? '#999'}" opacity="0.18"><title>${esc(`${f.id}: ${f.start} → ${f.end}`)}</title></rect>`;
    })
    .join('');
  const ticks = [0, 0.5, 1]
    .map(
      (q) =>
        `<text x="${pad.l - 6}" y="${y(q * countMax, countMax) + 4}" text-anchor="end">${Math.round(q * countMax)}</text>` +
        `<text x="${width - pad.r + 6}" y="${y(q * expiredMax, expiredMax) + 4}" fill="${COLORS.expired}">${Math.round(q * expiredMax)}</text>`,
    )
    .join('');
  const step = Math.max(1, Math.ceil(days / 12));
  const dayTicks = Array.from({ length: Math.floor(days / step) + 1 }, (_, k) => k * step)
    .map((d) => `<text x="${x(d)}" y="${height - pad.b + 16}" text-anchor="middle">${d}</text>`)
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" role="img" aria-label="renewals, expiries and served-expired minutes per day">`,
    bands,
    `<rect x="${pad.l}" y="${pad.t}" width="${w}" height="${h}" fill="none" stroke="#ccc"/>`,
    line(expiring, countMax, COLORS.expiring, 'versions expiring per day'),
    line(issued, countMax, COLORS.issued, 'renewals per day'),
    line(servedExpiredMinutes, expiredMax, COLORS.expired, 'endpoint-minutes served expired per day'),
    ticks,
    dayTicks,
    `<text x="${pad.l + w / 2}" y="${height - 4}" text-anchor="middle">simulated day</text>`,
    '</svg>',
  ].join('\n');
}

export function htmlReport(r: RehearsalResult): string {
  const goals = goalsOf(r);
  const ok = goals.every((g) => g.ok);
  const legend = [
    [COLORS.issued, 'renewals per day (left axis)'],
    [COLORS.expiring, 'versions reaching notAfter per day (left axis)'],
    [COLORS.expired, 'endpoint-minutes served expired per day (right axis)'],
  ]
    .map(([c, t]) => `<span style="color:${c}">■</span> ${esc(t)}`)
    .join(' &nbsp; ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>certfleet rehearsal</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1000px}pre{background:#f6f6f6;padding:1em;overflow-x:auto;white-space:pre-wrap}.ok{color:#15803d}.fail{color:#b91c1c}</style>
</head><body>
<h1>certfleet rehearsal: <span class="${ok ? 'ok' : 'fail'}">${ok ? 'goals met' : 'goals failed'}</span></h1>
<p>${esc(`${r.options.days} days, ${r.options.endpoints} endpoints, lifetime ${r.options.lifetimeHours} h, faults: ${r.options.faults.join(', ') || 'none'}, seed ${r.options.seed}`)}</p>
${chartSvg(r)}
<p>${legend}<br>Shaded: fault periods.</p>
<pre>${esc(formatReport(r, goals))}</pre>
</body></html>
`;
}
