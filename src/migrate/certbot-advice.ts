import type { CertbotRenewalParams, UnmappedItem } from './certbot-types.ts';

/**
 * What certbot did for a lineage that certfleet does differently, each with the certfleet way to do it.
 * Pure: reads the renewal parameters only. Solver settings live on the ACME issuer in the hub config, so the
 * authenticator is always reported with the solver entry to add.
 */
export function adviceFor(
  lineage: string,
  p: CertbotRenewalParams | undefined,
  sans: string[],
): UnmappedItem[] {
  if (!p) {
    return [
      {
        lineage,
        item: `renewal/${lineage}.conf is missing`,
        why: 'certbot has no renewal settings for this lineage, so its authenticator and hooks are unknown',
        fix: 'the certificate was imported; configure a solver for its names on the ACME issuer that will renew it',
      },
    ];
  }
  const out: UnmappedItem[] = [];
  const add = (item: string, why: string, fix: string) => out.push({ lineage, item, why, fix });
  const domains = `domains: [${sans.join(', ')}]`;
  switch (p.authenticator) {
    case 'webroot': {
      const byPath = new Map<string, string[]>();
      for (const [domain, path] of Object.entries(p.webrootMap))
        byPath.set(path, [...(byPath.get(path) ?? []), domain]);
      if (!byPath.size && p.webrootPath.length) byPath.set(p.webrootPath[0], sans);
      const entries = [...byPath].map(
        ([path, ds]) => `{ kind: webroot, webroot: ${path}, domains: [${ds.join(', ')}] }`,
      );
      add(
        `authenticator webroot (${[...byPath.keys()].join(', ') || 'no path'})`,
        'solvers are configured per ACME issuer in the hub config, not per certificate',
        `add to the issuer's solvers: ${entries.join('; ')} (the hub must be able to write there), or proxy /.well-known/acme-challenge/ to the hub's http-01 listener`,
      );
      break;
    }
    case 'standalone':
      add(
        'authenticator standalone',
        'certbot answered http-01 with its own temporary server on port 80',
        `use the hub's http-01 listener (http01.listen: 0.0.0.0:80 in the hub config, solver { kind: http-01, ${domains} }) or proxy /.well-known/acme-challenge/ from the web server to the hub`,
      );
      break;
    case 'manual': {
      const challenge = /http/.test(p.preferredChallenges ?? '') ? 'http-01' : 'dns-01';
      add(
        'authenticator manual',
        p.manualAuthHook
          ? 'certbot ran manual hook scripts to publish the challenge'
          : 'certbot asked a person to publish the challenge',
        p.manualAuthHook
          ? `use the exec solver with these scripts: { kind: exec, challengeType: ${challenge}, authCommand: ${JSON.stringify(p.manualAuthHook)}${p.manualCleanupHook ? `, cleanupCommand: ${JSON.stringify(p.manualCleanupHook)}` : ''}, ${domains} } (certfleet's exec solver sets the same CERTBOT_DOMAIN / CERTBOT_VALIDATION / CERTBOT_TOKEN variables); add propagation.resolvers for dns-01`
          : 'automate it: configure a dns-01 solver (cloudflare, rfc2136 or exec) for these names on the ACME issuer',
      );
      break;
    }
    case 'nginx':
    case 'apache':
      add(
        `authenticator ${p.authenticator}`,
        `certbot edited the ${p.authenticator} configuration to answer http-01; certfleet never edits web server configs`,
        `proxy /.well-known/acme-challenge/ to the hub (see docs/migration-from-certbot.md) or use a webroot solver, with ${domains}`,
      );
      break;
    case undefined:
      break;
    default:
      add(
        `authenticator ${p.authenticator}`,
        /^dns/.test(p.authenticator)
          ? 'certfleet has no certbot DNS plugins'
          : 'certfleet has no such certbot plugin',
        /^dns/.test(p.authenticator)
          ? `configure a dns-01 solver (cloudflare, rfc2136, or exec with your own script) with ${domains}`
          : `configure an http-01, webroot or dns-01 solver with ${domains}`,
      );
  }
  if (p.installer && p.installer !== 'None') {
    add(
      `installer ${p.installer}`,
      'certbot installed the certificate into the web server config itself',
      'subscribe the endpoint to this certificate with outputs (fullchain, key) at the paths the server reads and reload command (e.g. `nginx -s reload`)',
    );
  }
  if (p.preHook) {
    add(
      `pre_hook ${JSON.stringify(p.preHook)}`,
      /\bstop\b/.test(p.preHook)
        ? 'certfleet does not stop services for http-01; certbot needed that to free port 80 for standalone'
        : 'certfleet runs no hooks around issuance on the hub',
      "use the hub's http-01 listener or webroot, so nothing needs stopping; drop this hook",
    );
  }
  if (p.postHook) {
    add(
      `post_hook ${JSON.stringify(p.postHook)}`,
      'certfleet runs no hooks after issuance on the hub',
      /\b(start|restart|reload)\b/.test(p.postHook)
        ? "if it restarts the service stopped by pre_hook, drop it; if it reloads one, make it the subscription's reload command"
        : "make it the subscription's reload command on the endpoint that needs it",
    );
  }
  if (p.deployHook) {
    add(
      `deploy_hook ${JSON.stringify(p.deployHook)}`,
      'deploy hooks run where the certificate is installed, which in certfleet is the agent of each endpoint',
      "put this in the subscription's reload command (RENEWED_LINEAGE / RENEWED_DOMAINS are provided)",
    );
  }
  return out;
}
