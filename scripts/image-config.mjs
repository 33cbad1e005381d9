#!/usr/bin/env node
/**
 * What the Dockerfile's final stage runs with, resolved without Docker: `node scripts/image-config.mjs [Dockerfile]`
 * prints { workdir, env, user, cmd, healthcheck, volumes } as JSON. ENV values are taken literally (no ${} expansion:
 * the Dockerfile uses none). Used by test/deploy/image.test.ts; handy to check a change without a Docker engine.
 */
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'Dockerfile';
// Instructions, with line continuations joined and comments dropped.
const lines = readFileSync(file, 'utf8').replace(/\\\r?\n/g, ' ').split(/\r?\n/).filter((line) => line.trim() && !line.trim().startsWith('#'));
const stages = [];
for (const line of lines) {
  const [, instruction, rest] = /^\s*(\w+)\s+(.*)$/.exec(line) ?? [];
  if (!instruction) continue;
  if (instruction.toUpperCase() === 'FROM') stages.push({ from: rest.trim(), instructions: [] });
  else stages.at(-1)?.instructions.push([instruction.toUpperCase(), rest.trim()]);
}
const final = stages.at(-1);
const config = { from: final.from, workdir: '/', env: {}, user: 'root', cmd: undefined, healthcheck: undefined, volumes: [] };
const json = (text) => (text.startsWith('[') ? JSON.parse(text) : ['/bin/sh', '-c', text]);
for (const [instruction, rest] of final.instructions) {
  if (instruction === 'WORKDIR') config.workdir = rest;
  if (instruction === 'USER') config.user = rest;
  if (instruction === 'CMD') config.cmd = json(rest);
  if (instruction === 'VOLUME') config.volumes.push(...json(rest));
  if (instruction === 'ENV') for (const [, key, value] of rest.matchAll(/(\w+)=("[^"]*"|\S+)/g)) config.env[key] = value.replace(/^"|"$/g, '');
  if (instruction === 'HEALTHCHECK') {
    const [, options, command] = /^((?:--\S+\s+)*)CMD\s+(.*)$/.exec(rest) ?? [];
    config.healthcheck = command === undefined ? rest : { options: options.trim().split(/\s+/).filter(Boolean), cmd: json(command) };
  }
}
console.log(JSON.stringify(config, null, 2));
