import { createInterface } from 'node:readline/promises';

/** Asks a yes/no question on the terminal (the question goes to stderr, so stdout stays the command's output). */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
