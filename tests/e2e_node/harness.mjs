// Process plumbing for the Node end-to-end suite: starts `a2o mock-upstream` and two
// `a2o serve` processes (one per upstream dialect) on free ports, reads their addresses from
// stdout, and stops them. Mirrors tests/e2e/harness.py.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STARTUP_MS = 30_000;

export function a2oBinary() {
  const binary = process.env.A2O_BIN || resolve(REPO, 'target', 'debug', 'a2o');
  if (!existsSync(binary)) throw new Error(`${binary} not found: run cargo build (or scripts/e2e.sh) first`);
  return binary;
}

// Everything here talks to 127.0.0.1: a2o must not send its upstream calls through a proxy
// configured in the environment.
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !['http_proxy', 'https_proxy', 'all_proxy'].includes(name.toLowerCase())),
);

/** Spawns `a2o <args>` and resolves once every pattern has matched a stdout line. */
async function start(args, patterns) {
  const child = spawn(a2oBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
  child.stderr.resume(); // logs: drained so the pipe never fills
  const found = await new Promise((resolvePromise, reject) => {
    const matches = new Array(patterns.length).fill(null);
    let buffered = '';
    const timer = setTimeout(() => fail(new Error(`a2o ${args[0]}: no address on stdout in time`)), STARTUP_MS);
    function fail(error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    }
    child.on('exit', (code) => fail(new Error(`a2o ${args[0]} exited with ${code} before printing its address`)));
    child.stdout.on('data', (data) => {
      buffered += data.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop();
      for (const line of lines) {
        patterns.forEach((pattern, i) => {
          const match = line.match(pattern);
          if (match && !matches[i]) matches[i] = match[1];
        });
      }
      if (matches.every(Boolean)) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolvePromise(matches);
      }
    });
  });
  return { child, found };
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startAll() {
  const mock = await start(['mock-upstream', '--host', '127.0.0.1', '--port', '0'], [/listening on (http:\/\/\S+)/]);
  const mockUrl = mock.found[0];
  const proxies = {};
  const children = [mock.child];
  try {
    for (const upstream of ['anthropic', 'openai']) {
      const proxy = await start(
        ['serve', '--no-dotenv', '--host', '127.0.0.1', '--anthropic-port', '0', '--openai-port', '0',
          '--upstream', mockUrl, '--upstream-protocol', upstream, '--http-timeout', '10', '--max-retry-wait', '2'],
        [/anthropic front:\s*(http:\/\/\S+)/, /openai front:\s*(http:\/\/\S+)/],
      );
      children.push(proxy.child);
      proxies[upstream] = { anthropicFront: proxy.found[0], openaiFront: proxy.found[1] };
    }
  } catch (error) {
    await Promise.all(children.map(stop));
    throw error;
  }
  return {
    mockUrl,
    proxies,
    async requests() {
      const response = await fetch(`${mockUrl}/_mock/requests`);
      return (await response.json()).filter((r) => r.method === 'POST');
    },
    async clear() {
      await fetch(`${mockUrl}/_mock/requests`, { method: 'DELETE' });
    },
    async stop() {
      await Promise.all(children.map(stop));
    },
  };
}
