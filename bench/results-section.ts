import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Replaces (or appends) one `## name` section of bench/RESULTS.md, leaving the others alone. `section` starts with
 * its `## name` heading line. Returns the file's path.
 */
export async function writeResultsSection(section: string): Promise<string> {
  const path = join(import.meta.dirname, 'RESULTS.md');
  const heading = section.trimStart().split('\n')[0].trim();
  let doc = await readFile(path, 'utf8').catch(() => '# Benchmark results\n');
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start >= 0) {
    const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    const before = lines.slice(0, start).join('\n').trimEnd();
    const after = end >= 0 ? lines.slice(end).join('\n') : '';
    doc = `${before}\n\n${section.trim()}\n${after ? `\n${after}` : ''}`;
  } else {
    doc = `${doc.trimEnd()}\n\n${section.trim()}\n`;
  }
  await writeFile(path, doc);
  return path;
}
