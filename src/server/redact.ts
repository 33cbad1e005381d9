/**
 * No server path in any response (issue #12, finding 5): error messages of the services may name directories (the
 * model registry, a bundle's files); what reaches a client has them replaced. The directories the settings name
 * become labels (`<registry>`, `<data>`, `<bundle>`); any other absolute path of two or more segments becomes `<path>`.
 */
import path from 'node:path';

export interface PathLabels {
  modelRegistryDir: string;
  dataDir: string;
  bundleDir: string;
}

export function pathRedactor(settings: PathLabels): (text: string) => string {
  const known: [string, string][] = [
    [settings.bundleDir, '<bundle>'],
    [settings.modelRegistryDir, '<registry>'],
    [settings.dataDir, '<data>'],
    [process.cwd(), '<app>'],
  ]
    .filter(([dir]) => path.isAbsolute(dir) && dir !== path.sep)
    .sort((a, b) => b[0].length - a[0].length) as [string, string][];
  // An absolute path: a slash after a boundary, then at least two segments.
  const anyPath = /(^|[\s"'`(=:,[])(\/[^\s"'`/)\],:]+){2,}\/?/g;
  return (text) => {
    let redacted = text;
    for (const [dir, label] of known) redacted = redacted.split(dir).join(label);
    return redacted.replace(anyPath, (_match, boundary: string) => `${boundary}<path>`);
  };
}
