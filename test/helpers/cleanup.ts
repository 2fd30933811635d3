import { after, type TestContext } from 'node:test';

/** Stops, closes or removes something a test started or made. */
export type Cleanup = () => unknown;

const stacks = new WeakMap<TestContext, Cleanup[]>();

/**
 * Runs `fn` when test `t` ends. Cleanups run last-registered first, so what was started in a directory stops
 * before the directory is removed (node:test runs `t.after` hooks in registration order, and skips the rest once
 * one throws). Every cleanup runs; the first error is rethrown after the last one ran.
 */
export function onCleanup(t: TestContext, fn: Cleanup): void {
  let stack = stacks.get(t);
  if (!stack) {
    const fresh: Cleanup[] = [];
    stacks.set(t, fresh);
    t.after(() => runLastFirst(fresh));
    stack = fresh;
  }
  stack.push(fn);
}

/**
 * The same for a whole describe block or file: call it once in the block (or at the top level of the file) and
 * register with the function it returns, typically from `before`.
 */
export function suiteCleanup(): (fn: Cleanup) => void {
  const stack: Cleanup[] = [];
  after(() => runLastFirst(stack));
  return (fn) => void stack.push(fn);
}

/** Runs and empties `stack` from its end; every cleanup runs, then the first error thrown is rethrown. */
export async function runLastFirst(stack: Cleanup[]): Promise<void> {
  let failed: { error: unknown } | undefined;
  for (let fn = stack.pop(); fn; fn = stack.pop()) {
    try {
      await fn();
    } catch (error) {
      failed ??= { error };
    }
  }
  if (failed) throw failed.error;
}
