/**
 * Channel URLs often carry the credential in their path (a Slack incoming-webhook URL is the token) or query,
 * so anything a person sees names only the scheme, host and port.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const hidden = (u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '';
    return `${u.origin}${hidden ? '/…' : ''}`;
  } catch {
    return '(invalid url)';
  }
}

/** Replaces every occurrence of each secret (and of a URL's path/query) in text before it is shown. */
export function scrub(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (!s || s.length < 4) continue;
    out = out.split(s).join('[redacted]');
  }
  return out;
}

/** The parts of a URL that must never be shown: the full URL, its path+query and its userinfo. */
export function urlSecrets(url: string): string[] {
  try {
    const u = new URL(url);
    const pathAndQuery = `${u.pathname}${u.search}`;
    return [url, pathAndQuery.length > 1 ? pathAndQuery : '', u.password, u.username].filter((s) => s !== '');
  } catch {
    return [url];
  }
}
