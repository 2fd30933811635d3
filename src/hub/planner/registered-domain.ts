/**
 * The "registered domain" a CA counts rate limits against: the public suffix plus one label (Let's Encrypt uses the
 * Public Suffix List). This is a small built-in APPROXIMATION, not the PSL: the last two labels, or three when the
 * last two are one of the common multi-label suffixes below.
 *
 * It errs on the safe side: for an unlisted multi-label suffix (say `example.co.ke`) it returns a shorter name
 * (`co.ke`), which lumps more names into one budget, so we may defer earlier than the CA would, never later.
 * The only unsafe error would be listing something that is not a public suffix, so the list stays short and
 * well known. IP addresses follow Let's Encrypt: an IPv4 address is its own "registered domain", IPv6 a /64.
 */
import { isIP } from 'node:net';
import { ipv6Groups } from '../../core/names.ts';

// ICANN second-level suffixes that registrants commonly buy under, plus a few widely used private-section entries
// (hosting platforms where every customer subdomain is its own registered domain).
// prettier-ignore
const MULTI_LABEL_SUFFIXES = new Set([
  // United Kingdom
  'co.uk', 'org.uk', 'me.uk', 'ltd.uk', 'plc.uk', 'net.uk', 'sch.uk', 'ac.uk', 'gov.uk', 'nhs.uk', 'police.uk',
  // Australia, New Zealand
  'com.au', 'net.au', 'org.au', 'edu.au', 'gov.au', 'asn.au', 'id.au',
  'co.nz', 'net.nz', 'org.nz', 'govt.nz', 'ac.nz', 'school.nz', 'geek.nz', 'kiwi.nz',
  // Asia
  'co.jp', 'ne.jp', 'or.jp', 'ac.jp', 'go.jp', 'gr.jp', 'ed.jp', 'ad.jp', 'lg.jp',
  'co.kr', 'or.kr', 'ne.kr', 'go.kr', 'ac.kr', 're.kr',
  'com.cn', 'net.cn', 'org.cn', 'gov.cn', 'edu.cn', 'ac.cn',
  'com.hk', 'net.hk', 'org.hk', 'edu.hk', 'gov.hk', 'com.tw', 'net.tw', 'org.tw', 'edu.tw', 'gov.tw',
  'com.sg', 'net.sg', 'org.sg', 'edu.sg', 'gov.sg', 'com.my', 'net.my', 'org.my', 'gov.my', 'edu.my',
  'co.in', 'net.in', 'org.in', 'firm.in', 'gen.in', 'ind.in', 'ac.in', 'edu.in', 'gov.in', 'res.in',
  'co.id', 'or.id', 'ac.id', 'go.id', 'web.id', 'com.ph', 'net.ph', 'org.ph', 'com.vn', 'net.vn',
  'co.th', 'in.th', 'ac.th', 'go.th', 'or.th', 'com.pk', 'com.bd', 'com.np', 'com.lk',
  'co.il', 'org.il', 'ac.il', 'gov.il', 'net.il', 'com.tr', 'net.tr', 'org.tr', 'gen.tr', 'gov.tr', 'edu.tr',
  'com.sa', 'com.eg', 'com.qa', 'com.kw', 'com.om', 'com.lb', 'co.ae',
  // Africa
  'co.za', 'org.za', 'net.za', 'gov.za', 'ac.za', 'web.za', 'co.ke', 'or.ke', 'co.tz', 'co.ug', 'com.ng',
  'com.gh',
  // Americas
  'com.br', 'net.br', 'org.br', 'gov.br', 'edu.br', 'art.br', 'blog.br', 'eco.br', 'app.br', 'dev.br',
  'com.mx', 'org.mx', 'gob.mx', 'edu.mx', 'net.mx', 'com.ar', 'org.ar', 'gob.ar', 'net.ar', 'com.co', 'org.co',
  'com.pe', 'com.ve', 'com.uy', 'com.ec', 'com.bo', 'com.py', 'co.cr', 'com.gt', 'com.do', 'com.pr',
  // Europe (outside .uk)
  'com.pl', 'net.pl', 'org.pl', 'com.es', 'org.es', 'nom.es', 'co.at', 'or.at', 'ac.at', 'gv.at',
  'com.ua', 'org.ua', 'net.ua', 'com.ru', 'net.ru', 'org.ru', 'com.gr', 'com.cy', 'com.mt', 'co.hu', 'com.pt',
  'com.ro', 'co.rs', 'com.hr', 'co.me', 'co.it', 'com.de', 'com.fr',
  // Private section: hosting platforms
  'github.io', 'gitlab.io', 'herokuapp.com', 'netlify.app', 'vercel.app', 'pages.dev', 'workers.dev',
  'web.app', 'firebaseapp.com', 'appspot.com', 'blogspot.com', 'azurewebsites.net', 'cloudfront.net',
  'fly.dev', 'onrender.com', 'glitch.me', 'ngrok.io', 'duckdns.org', 'dyndns.org', 'no-ip.org',
]);

/** The lower-case name with any wildcard label and trailing dot removed. */
function cleanName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '').replace(/^\*\./, '');
}

/**
 * `www.example.com` → `example.com`; `new.blog.example.co.uk` → `example.co.uk`; `*.example.org` → `example.org`;
 * `192.0.2.7` → `192.0.2.7`; `2001:db8:1:2::5` → `2001:db8:1:2::/64`. A bare suffix (`co.uk`) returns itself.
 */
export function registeredDomain(name: string): string {
  const n = cleanName(name);
  const ipVersion = isIP(n.replace(/^\[|\]$/g, ''));
  if (ipVersion === 4) return n;
  if (ipVersion === 6) {
    const g = ipv6Groups(n).slice(0, 4);
    return `${g.map((x) => x.toString(16)).join(':')}::/64`;
  }
  const labels = n.split('.').filter(Boolean);
  if (labels.length <= 2) return labels.join('.');
  const lastTwo = labels.slice(-2).join('.');
  return MULTI_LABEL_SUFFIXES.has(lastTwo) ? labels.slice(-3).join('.') : lastTwo;
}

/** The distinct registered domains of a set of SANs, sorted. */
export function registeredDomainsOf(sans: string[]): string[] {
  return [...new Set(sans.map(registeredDomain))].sort();
}
