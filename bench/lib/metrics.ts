/** Reading a server's Prometheus text (/metrics) in the benchmarks. */

/** One metric's series in a /metrics text: its first label's value ('' for a series without labels) -> value. */
export function metricSeries(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const label = /="([^"]*)"/.exec(line)?.[1] ?? '';
    out[label] = Number(line.split(' ').at(-1));
  }
  return out;
}
